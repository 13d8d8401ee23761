// DICOMweb client (PS3.18) with Qt Network: multipart/related, QIDO-RS and STOW-RS here;
// WADO-RS in WadoRetrieve.cpp, the HTTP session in WebSession.cpp.

#include "DicomWeb.h"

#include <QFile>
#include <QHttpMultiPart>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QUrl>
#include <QUrlQuery>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "WebSession.h"
#include "lumen/imaging/DicomFile.h"

namespace lumen::web {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace detail;

// ---------------------------------------------------------------------------------------
// multipart/related

std::string boundaryOf(std::string_view contentType) {
  std::string lower(contentType);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto at = lower.find("boundary=");
  if (at == std::string::npos) return {};
  std::string_view v = contentType.substr(at + 9);
  std::string b;
  if (!v.empty() && v.front() == '"') {
    const auto close = v.find('"', 1);
    if (close != std::string_view::npos) b = v.substr(1, close - 1);
  } else {
    b = v.substr(0, v.find_first_of("; \t"));
  }
  // RFC 2046's limit; the splitter carries a boundary's length from read to read.
  return b.size() <= 70 ? b : std::string();
}

MultipartSplitter::MultipartSplitter(std::string boundary, Handler handler)
    : delimiter_("\r\n--" + std::move(boundary)), handler_(std::move(handler)), buffer_("\r\n") {}

bool MultipartSplitter::fail(std::string why) {
  state_ = State::Failed;
  error_ = std::move(why);
  return false;
}

bool MultipartSplitter::feed(std::string_view bytes) {
  if (state_ == State::Failed) return false;
  if (state_ == State::Done) return true;  // an epilogue is ignored
  // The network's bytes are parsed where they lie; only what a read leaves unresolved (a
  // possible start of a delimiter, unfinished part headers) is carried to the next one.
  // Copying every byte into a buffer first cost a WADO-RS retrieve a second copy of the
  // whole study.
  if (!buffer_.empty()) {
    const std::size_t carried = buffer_.size();
    // A delimiter that starts in the carried bytes ends within a delimiter's length of
    // them; part headers and the line after a delimiter, within kJoin.
    const bool inPart = state_ == State::Body || state_ == State::Preamble;
    const std::size_t joined = std::min(bytes.size(), inPart ? delimiter_.size() : kJoin);
    buffer_.append(bytes.substr(0, joined));
    const std::size_t used = parse(buffer_);
    if (used == kFailed) return false;
    // That much always resolves what was carried (part headers fail past 64 KiB, the
    // boundary is at most 70 characters), so the parser stops inside it only when all of
    // `bytes` was joined.
    if (used < carried) {
      buffer_.erase(0, used);
      return true;
    }
    bytes.remove_prefix(used - carried);
    buffer_.clear();
  }
  const std::size_t used = parse(bytes);
  if (used == kFailed) return false;
  buffer_.assign(bytes.substr(used));  // nothing once Done: parse took the epilogue
  return true;
}

std::size_t MultipartSplitter::parse(std::string_view data) {
  std::size_t pos = 0;
  const auto consume = [&](bool ok) { return ok ? pos : kFailed; };
  const std::size_t keep = delimiter_.size() - 1;  // a delimiter may straddle two reads
  for (;;) {
    const std::string_view rest = data.substr(pos);
    switch (state_) {
      case State::Preamble: {
        const auto at = rest.find(delimiter_);
        if (at == std::string_view::npos) {
          if (rest.size() > keep) pos += rest.size() - keep;
          return consume(true);
        }
        pos += at + delimiter_.size();
        state_ = State::AfterDelimiter;
        break;
      }
      case State::AfterDelimiter: {
        if (rest.size() < 2) return consume(true);
        if (rest.substr(0, 2) == "--") {
          state_ = State::Done;
          return data.size();  // an epilogue is ignored
        }
        const auto eol = rest.find("\r\n");
        if (eol == std::string_view::npos) {
          if (rest.size() > 1024) return fail("malformed multipart body: no line end after a boundary"), kFailed;
          return consume(true);
        }
        if (rest.find_first_not_of(" \t") < eol) return fail("malformed multipart body: text after a boundary"), kFailed;
        pos += eol + 2;
        state_ = State::Headers;
        break;
      }
      case State::Headers: {
        std::size_t end = 0, skip = 0;
        if (rest.substr(0, 2) == "\r\n") {
          skip = 2;  // a part without headers
        } else {
          end = rest.find("\r\n\r\n");
          if (end == std::string_view::npos) {
            if (rest.size() > 65536) return fail("malformed multipart body: part headers over 64 KiB"), kFailed;
            return consume(true);
          }
          skip = end + 4;
        }
        const std::string_view headers = rest.substr(0, end);
        pos += skip;
        if (!handler_.begin(headers)) return fail("a part was refused"), kFailed;
        state_ = State::Body;
        break;
      }
      case State::Body: {
        const auto at = rest.find(delimiter_);
        if (at == std::string_view::npos) {
          if (rest.size() > keep) {
            const std::size_t n = rest.size() - keep;
            if (!handler_.data(rest.substr(0, n))) return fail("a part could not be kept"), kFailed;
            pos += n;
          }
          return consume(true);
        }
        if (!handler_.data(rest.substr(0, at)) || !handler_.end()) return fail("a part could not be kept"), kFailed;
        pos += at + delimiter_.size();
        state_ = State::AfterDelimiter;
        break;
      }
      case State::Done:
        return data.size();
      case State::Failed:
        return kFailed;
    }
  }
}

// ---------------------------------------------------------------------------------------
// QIDO-RS

namespace detail {

Result<QNetworkReply*> sendQuery(Session& s, const net::QueryFilter& f) {
  const bool series = f.level == net::QueryLevel::Series;
  QUrlQuery q;
  const auto add = [&](const char* key, const std::string& v) {
    if (!v.empty()) q.addQueryItem(key, QString::fromStdString(v));
  };
  add("PatientName", f.patientName);
  add("PatientID", f.patientId);
  add("StudyDate", f.studyDate);
  add("AccessionNumber", f.accession);
  add(series ? "Modality" : "ModalitiesInStudy", f.modality);
  for (const char* tag : {"00081030", "00100030", "00201206", "00201208", "0020000D"}) q.addQueryItem("includefield", tag);
  QString path = "/studies";
  if (series) {
    // The study's attributes too, as the DIMSE query gives them for each series.
    for (const char* tag : {"0008103E", "00200011", "00201209", "00100010", "00100020", "00080020", "00080030", "00080050"})
      q.addQueryItem("includefield", tag);
    if (!f.studyUid.empty()) {
      if (!validUid(f.studyUid)) return Error(ErrorCode::InvalidArgument, "not a UID: " + f.studyUid);
      path = "/studies/" + QString::fromStdString(f.studyUid) + "/series";
    } else {
      path = "/series";
    }
  } else if (!f.studyUid.empty()) {
    add("StudyInstanceUID", f.studyUid);
  }
  return s.nam.get(s.request(s.url(path, q), "application/dicom+json"));
}

Result<std::vector<net::QueryMatch>> readMatches(const Session& s, const Result<Response>& r,
                                                 const net::QueryFilter& f, const net::WebNode& node) {
  const bool series = f.level == net::QueryLevel::Series;
  if (!r) return r.error();
  if (r->status == 204) return std::vector<net::QueryMatch>{};
  if (r->status >= 400) {
    if (r->status == 404 && series && !f.studyUid.empty()) return std::vector<net::QueryMatch>{};
    return s.httpError(*r, "query");
  }
  auto j = parseJson(r->body, node);
  if (!j) return j.error();
  if (!j->is_array()) return Error(ErrorCode::Corrupt, "the node's answer is not a list of matches", label(node));
  std::vector<net::QueryMatch> out;
  for (const auto& m : *j) {
    if (!m.is_object()) continue;
    net::QueryMatch x;
    x.studyUid = value(m, "0020000D");
    x.patientName = value(m, "00100010");
    x.patientId = value(m, "00100020");
    x.patientBirthDate = value(m, "00100030");
    x.studyDate = value(m, "00080020");
    x.studyTime = value(m, "00080030");
    x.studyDescription = value(m, "00081030");
    x.accession = value(m, "00080050");
    if (series) {
      x.seriesUid = value(m, "0020000E");
      x.modalities = value(m, "00080060");
      x.seriesDescription = value(m, "0008103E");
      x.seriesNumber = number(m, "00200011", 0);
      x.instanceCount = number(m, "00201209", -1);
      if (x.studyUid.empty()) x.studyUid = f.studyUid;
    } else {
      x.modalities = value(m, "00080061");
      x.seriesCount = number(m, "00201206", -1);
      x.instanceCount = number(m, "00201208", -1);
    }
    out.push_back(std::move(x));
  }
  return out;
}

}  // namespace detail

Result<std::vector<net::QueryMatch>> query(const net::WebNode& node, const net::QueryFilter& f, const WebOptions& o,
                                           const CancelToken& cancel) {
  Session s(node, o);
  if (auto p = s.prepare(); !p) return p.error();
  auto reply = sendQuery(s, f);
  if (!reply) return reply.error();
  return readMatches(s, s.wait(*reply, {}, cancel, "query"), f, node);
}

Status ping(const net::WebNode& node, const WebOptions& o) {
  net::QueryFilter f;
  f.studyUid = "1.2.3";  // any: the answer (even an empty one) is what counts
  auto r = query(node, f, o);
  if (!r) return r.error();
  return {};
}

// ---------------------------------------------------------------------------------------
// STOW-RS

namespace {

bool isPart10(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  char head[132];
  return in.read(head, sizeof head) && std::string_view(head + 128, 4) == "DICM";
}

struct Pending {
  fs::path path;
  std::string sop;
};

// The SOP Instance UIDs in one of the STOW-RS response's sequences, with the reason each
// item gives (Failure Reason or Warning Reason; 0 when none).
std::vector<std::pair<std::string, int>> referenced(const json& response, const char* sequence, const char* reasonTag) {
  std::vector<std::pair<std::string, int>> out;
  const auto it = response.find(sequence);
  if (it == response.end() || !it->is_object() || !it->contains("Value") || !(*it)["Value"].is_array()) return out;
  for (const auto& item : (*it)["Value"])
    if (item.is_object()) out.emplace_back(value(item, "00081155"), number(item, reasonTag, 0));
  return out;
}

}  // namespace

Result<net::TransferReport> store(const net::WebNode& node, const std::vector<fs::path>& files, const WebOptions& o,
                                  const Progress& progress, const CancelToken& cancel) {
  Session s(node, o);
  if (auto p = s.prepare(); !p) return p.error();
  net::TransferReport report;
  std::vector<Pending> sendable;
  for (const auto& f : files) {
    if (!isPart10(f)) {
      ++report.failed;
      report.problems.push_back(f.string() + ": not sent: STOW-RS carries DICOM Part 10 files only (no \"DICM\" header); "
                                             "send it to a DIMSE node");
      continue;
    }
    auto id = dicom::readFileIdentity(f);
    if (!id) {
      ++report.failed;
      report.problems.push_back(f.string() + ": not sent: " + id.error().message);
      continue;
    }
    sendable.push_back({f, id->sopInstanceUid});
  }
  if (sendable.empty()) return Error(ErrorCode::InvalidArgument, "nothing to send (no readable DICOM file)", label(node));

  // Batches bound each request's size and what one failed request costs.
  constexpr std::size_t kBatchFiles = 64;
  constexpr std::uintmax_t kBatchBytes = 128ull << 20;
  std::size_t done = 0;
  progress.report(0.0, "Sending");
  for (std::size_t first = 0; first < sendable.size();) {
    std::size_t last = first;
    std::uintmax_t bytes = 0;
    auto* multipart = new QHttpMultiPart(QHttpMultiPart::RelatedType);
    while (last < sendable.size() && last - first < kBatchFiles && (last == first || bytes < kBatchBytes)) {
      std::error_code ec;
      bytes += fs::file_size(sendable[last].path, ec);
      auto* file = new QFile(QString::fromStdString(sendable[last].path.string()), multipart);
      if (!file->open(QIODevice::ReadOnly)) {
        delete multipart;
        return Error(ErrorCode::Io, "cannot read the file", sendable[last].path.string());
      }
      QHttpPart part;
      part.setHeader(QNetworkRequest::ContentTypeHeader, "application/dicom");
      part.setBodyDevice(file);
      multipart->append(part);
      ++last;
    }
    QNetworkRequest req = s.request(s.url("/studies"), "application/dicom+json");
    req.setHeader(QNetworkRequest::ContentTypeHeader,
                  QByteArray(R"(multipart/related; type="application/dicom"; boundary=)") + multipart->boundary());
    QNetworkReply* reply = s.nam.post(req, multipart);
    multipart->setParent(reply);
    auto r = s.wait(reply, {}, cancel, "send");
    if (!r) {
      if (report.stored) report.problems.push_back(std::to_string(report.stored) + " instance(s) were stored before the failure");
      return r.error();
    }
    if (r->status == 401 || r->status == 403) return s.httpError(*r, "send");
    json answer = json::object();
    if (auto j = parseJson(r->body, node); j && j->is_object()) answer = *j;
    std::map<std::string, int> failed, stored;
    for (auto& [sop, why] : referenced(answer, "00081198", "00081197")) failed[sop] = why;
    for (auto& [sop, why] : referenced(answer, "00081199", "00081196")) stored[sop] = why;
    for (std::size_t i = first; i < last; ++i) {
      const Pending& p = sendable[i];
      char hex[8];
      if (auto f = failed.find(p.sop); f != failed.end()) {
        ++report.failed;
        std::snprintf(hex, sizeof hex, "%04X", static_cast<unsigned>(f->second) & 0xFFFFu);
        report.problems.push_back(p.path.string() + ": refused by the node, failure reason 0x" + hex);
      } else if (auto w = stored.find(p.sop); w != stored.end() || (r->status == 200 && stored.empty())) {
        ++report.stored;
        if (w != stored.end() && w->second) ++report.warnings;
      } else {
        ++report.failed;
        report.problems.push_back(p.path.string() + ": not stored: the node answered HTTP " + std::to_string(r->status) +
                                  " without listing it as stored");
      }
    }
    done += last - first;
    progress.report(static_cast<double>(done) / static_cast<double>(sendable.size()), "Sending");
    first = last;
  }
  return report;
}

}  // namespace lumen::web
