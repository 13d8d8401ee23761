// DICOMweb client: QIDO-RS, WADO-RS, STOW-RS (PS3.18) with Qt Network.

#include "DicomWeb.h"

#include <QCoreApplication>
#include <QEventLoop>
#include <QFile>
#include <QHostAddress>
#include <QHttpMultiPart>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QSslCertificate>
#include <QSslConfiguration>
#include <QSslError>
#include <QTimer>
#include <QUrl>
#include <QUrlQuery>
#include <fcntl.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "lumen/core/DurableFile.h"
#include "lumen/imaging/DicomFile.h"
#include "lumen/imaging/StudyDatabase.h"

namespace lumen::web {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ---------------------------------------------------------------------------------------
// multipart/related

std::string boundaryOf(std::string_view contentType) {
  std::string lower(contentType);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto at = lower.find("boundary=");
  if (at == std::string::npos) return {};
  std::string_view v = contentType.substr(at + 9);
  if (!v.empty() && v.front() == '"') {
    const auto close = v.find('"', 1);
    return close == std::string_view::npos ? std::string() : std::string(v.substr(1, close - 1));
  }
  const auto stop = v.find_first_of("; \t");
  return std::string(v.substr(0, stop));
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
  buffer_.append(bytes);
  // Consumed bytes are skipped by offset and dropped once per feed: erasing at every part
  // boundary would move the rest of a large read again and again.
  std::size_t pos = 0;
  const auto consume = [&](bool ok) {
    buffer_.erase(0, pos);
    return ok;
  };
  const std::size_t keep = delimiter_.size() - 1;  // a delimiter may straddle two reads
  for (;;) {
    const std::string_view rest = std::string_view(buffer_).substr(pos);
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
          buffer_.clear();
          return true;
        }
        const auto eol = rest.find("\r\n");
        if (eol == std::string_view::npos) {
          if (rest.size() > 1024) return fail("malformed multipart body: no line end after a boundary");
          return consume(true);
        }
        if (rest.find_first_not_of(" \t") < eol) return fail("malformed multipart body: text after a boundary");
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
            if (rest.size() > 65536) return fail("malformed multipart body: part headers over 64 KiB");
            return consume(true);
          }
          skip = end + 4;
        }
        const std::string_view headers = rest.substr(0, end);
        pos += skip;
        if (!handler_.begin(headers)) return fail("a part was refused");
        state_ = State::Body;
        break;
      }
      case State::Body: {
        const auto at = rest.find(delimiter_);
        if (at == std::string_view::npos) {
          if (rest.size() > keep) {
            const std::size_t n = rest.size() - keep;
            if (!handler_.data(rest.substr(0, n))) return fail("a part could not be kept");
            pos += n;
          }
          return consume(true);
        }
        if (!handler_.data(rest.substr(0, at)) || !handler_.end()) return fail("a part could not be kept");
        pos += at + delimiter_.size();
        state_ = State::AfterDelimiter;
        break;
      }
      case State::Done:
        return true;
      case State::Failed:
        return false;
    }
  }
}

namespace {

// ---------------------------------------------------------------------------------------
// HTTP

std::string label(const net::WebNode& n) { return n.name + " (" + n.baseUrl + ")"; }

bool isLoopback(const QString& host) {
  if (host.compare("localhost", Qt::CaseInsensitive) == 0) return true;
  const QHostAddress a(host);  // "127.evil.example" is a name, not an address: not loopback
  return !a.isNull() && a.isLoopback();
}

bool validUid(const std::string& uid) {
  return !uid.empty() && uid.size() <= 64 && uid.find_first_not_of("0123456789.") == std::string::npos;
}

struct Response {
  int status = 0;
  QByteArray body;
  std::string contentType;
};

class Session {
 public:
  Session(const net::WebNode& node, const WebOptions& options) : node_(node), options_(options) {
    base_ = QString::fromStdString(node.baseUrl);
    while (base_.endsWith('/')) base_.chop(1);
  }

  // The node's settings checked once more where they are used: credentials never travel
  // in clear text to another machine, and a CA file that does not load is an error.
  Status prepare() {
    const QUrl url(base_);
    if (!url.isValid() || url.host().isEmpty()) return Error(ErrorCode::InvalidArgument, "not a valid URL", label(node_));
    if (!node_.auth.empty() && url.scheme() == "http" && !isLoopback(url.host()))
      return Error(ErrorCode::InvalidArgument,
                   "credentials would go unencrypted over http:// to another machine; use https://", label(node_));
    if (!node_.caFile.empty()) {
      const auto certs = QSslCertificate::fromPath(QString::fromStdString(node_.caFile), QSsl::Pem);
      if (certs.isEmpty())
        return Error(ErrorCode::InvalidArgument, "ca_file " + node_.caFile + ": no PEM certificate could be read",
                     label(node_));
      ssl_ = QSslConfiguration::defaultConfiguration();
      ssl_.addCaCertificates(certs);
      ssl_.setPeerVerifyMode(QSslSocket::VerifyPeer);
      customSsl_ = true;
    }
    return {};
  }

  QUrl url(const QString& path, const QUrlQuery& query = {}) const {
    QUrl u(base_ + path);
    if (!query.isEmpty()) u.setQuery(query);
    return u;
  }

  QNetworkRequest request(const QUrl& url, const QByteArray& accept) const {
    QNetworkRequest r(url);
    r.setRawHeader("Accept", accept);
    // Pixel data gains little from gzip and the decoding costs more than the transfer saves
    // on a LAN; Qt would otherwise ask for it.
    r.setRawHeader("Accept-Encoding", "identity");
    r.setTransferTimeout(options_.timeoutSeconds * 1000);
    // Redirects stay on the node's own origin: the Authorization header must not follow
    // them to another host.
    r.setAttribute(QNetworkRequest::RedirectPolicyAttribute, QNetworkRequest::SameOriginRedirectPolicy);
    if (node_.auth == "basic")
      r.setRawHeader("Authorization",
                     "Basic " + QByteArray::fromStdString(node_.username + ":" + node_.password).toBase64());
    else if (node_.auth == "bearer")
      r.setRawHeader("Authorization", "Bearer " + QByteArray::fromStdString(node_.token));
    if (customSsl_) r.setSslConfiguration(ssl_);
    return r;
  }

  // Waits for `reply` to finish. `onData` (when set) takes the body as it arrives and may
  // stop the transfer by returning false; otherwise the body is kept in the response.
  Result<Response> wait(QNetworkReply* reply, const std::function<bool(QNetworkReply&)>& onData,
                        const CancelToken& cancel, const char* what) {
    std::unique_ptr<QNetworkReply> owner(reply);
    QEventLoop loop;
    bool cancelled = false, stopped = false;
    QStringList sslErrors;
    QObject::connect(reply, &QNetworkReply::finished, &loop, &QEventLoop::quit);
    QObject::connect(reply, &QNetworkReply::sslErrors, [&](const QList<QSslError>& errors) {
      for (const auto& e : errors) sslErrors << e.errorString();  // never ignored: the handshake fails
    });
    if (onData)
      QObject::connect(reply, &QNetworkReply::readyRead, [&] {
        if (!stopped && !onData(*reply)) {
          stopped = true;
          reply->abort();
        }
      });
    QTimer poll;
    QObject::connect(&poll, &QTimer::timeout, [&] {
      if (cancel.isCancelled() && !cancelled) {
        cancelled = true;
        reply->abort();
      }
    });
    poll.start(100);
    if (!reply->isFinished()) loop.exec();
    if (onData && !stopped && reply->bytesAvailable() > 0 && !onData(*reply)) stopped = true;

    if (cancelled) return Error(ErrorCode::Cancelled, std::string(what) + " cancelled", label(node_));
    if (stopped) return Error(ErrorCode::Io, std::string(what) + " stopped", label(node_));
    Response r;
    r.status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    r.contentType = reply->header(QNetworkRequest::ContentTypeHeader).toString().toStdString();
    if (!onData) r.body = reply->readAll();
    const auto err = reply->error();
    if (err == QNetworkReply::NoError || r.status >= 400) return r;  // HTTP errors: the caller's to word
    std::string why;
    switch (err) {
      case QNetworkReply::ConnectionRefusedError: why = "connection refused (is the service running on that port?)"; break;
      case QNetworkReply::HostNotFoundError: why = "host not found"; break;
      case QNetworkReply::OperationCanceledError:  // Qt's transfer timeout aborts this way
      case QNetworkReply::TimeoutError:
        why = "no answer within " + std::to_string(options_.timeoutSeconds) + " s";
        break;
      case QNetworkReply::SslHandshakeFailedError:
        why = "TLS: the server's certificate is not trusted";
        if (!sslErrors.isEmpty()) why += " (" + sslErrors.join("; ").toStdString() + ")";
        if (node_.caFile.empty()) why += "; for a private CA, give the node a ca_file";
        break;
      default: why = reply->errorString().toStdString();
    }
    return Error(ErrorCode::Io, std::string(what) + " failed: " + why, label(node_));
  }

  Error httpError(const Response& r, const char* what) const {
    std::string why = "HTTP " + std::to_string(r.status);
    if (r.status == 401 || r.status == 403) why += ": the node refused the credentials (check its auth settings)";
    else if (r.status == 404) why += ": not found on the node";
    else if (r.status == 406) why += ": the node cannot answer in a form Lumen asked for";
    return Error(r.status == 404 ? ErrorCode::NotFound : ErrorCode::Io, std::string(what) + " failed: " + why, label(node_));
  }

  QNetworkAccessManager nam;

 private:
  const net::WebNode& node_;
  WebOptions options_;
  QString base_;
  QSslConfiguration ssl_;
  bool customSsl_ = false;
};

// The DICOM JSON model (PS3.18 F.2): a tag's values joined with a backslash, as DIMSE shows them.
std::string value(const json& obj, const char* tag) {
  const auto it = obj.find(tag);
  if (it == obj.end() || !it->is_object()) return {};
  const auto v = it->find("Value");
  if (v == it->end() || !v->is_array()) return {};
  std::string out;
  for (const auto& e : *v) {
    if (!out.empty()) out += '\\';
    if (e.is_string()) out += e.get<std::string>();
    else if (e.is_number_integer()) out += std::to_string(e.get<long long>());
    else if (e.is_number()) out += e.dump();
    else if (e.is_object() && e.contains("Alphabetic") && e["Alphabetic"].is_string()) out += e["Alphabetic"].get<std::string>();
  }
  return out;
}

int number(const json& obj, const char* tag, int fallback) {
  const std::string v = value(obj, tag);
  try {
    return v.empty() ? fallback : std::stoi(v);
  } catch (const std::exception&) {
    return fallback;
  }
}

Result<json> parseJson(const QByteArray& body, const net::WebNode& node) {
  if (body.trimmed().isEmpty()) return json::array();
  try {
    return json::parse(body.constData(), body.constData() + body.size());
  } catch (const json::exception&) {
    return Error(ErrorCode::Corrupt, "the node's answer is not valid DICOM JSON", label(node));
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// QIDO-RS

Result<std::vector<net::QueryMatch>> query(const net::WebNode& node, const net::QueryFilter& f, const WebOptions& o,
                                           const CancelToken& cancel) {
  Session s(node, o);
  if (auto p = s.prepare(); !p) return p.error();
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
  auto r = s.wait(s.nam.get(s.request(s.url(path, q), "application/dicom+json")), {}, cancel, "query");
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

Status ping(const net::WebNode& node, const WebOptions& o) {
  net::QueryFilter f;
  f.studyUid = "1.2.3";  // any: the answer (even an empty one) is what counts
  auto r = query(node, f, o);
  if (!r) return r.error();
  return {};
}

// ---------------------------------------------------------------------------------------
// WADO-RS

namespace {

// Files received instances on a few threads (each file checked and flushed there), so the
// download never waits for a disk flush; the filer commits them in batches.
class FilingQueue {
 public:
  FilingQueue(net::InstanceFiler& filer, net::TransferReport& report, int threads) : filer_(filer), report_(report) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { run(); });
  }
  ~FilingQueue() { finish(); }

  void push(fs::path tmp) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(tmp));
    }
    wake_.notify_one();
  }
  void finish() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_)
      if (t.joinable()) t.join();
    filer_.flush();
  }
  std::size_t filed() {
    std::lock_guard<std::mutex> lock(mutex_);
    return done_;
  }

 private:
  void run() {
    for (;;) {
      fs::path tmp;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return closing_ || !queue_.empty(); });
        if (queue_.empty()) return;
        tmp = std::move(queue_.front());
        queue_.pop_front();
      }
      // Checked and flushed here, committed in batches by the filer; counted once committed.
      filer_.fileLater(tmp, [this](Result<dicom::FileInfo> r) { count(r); });
    }
  }
  void count(const Result<dicom::FileInfo>& r) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++done_;
    if (r) {
      ++report_.stored;
    } else {
      ++report_.failed;
      const std::string p = r.error().message;
      if (std::find(report_.problems.begin(), report_.problems.end(), p) == report_.problems.end())
        report_.problems.push_back(p);
    }
  }
  net::InstanceFiler& filer_;
  net::TransferReport& report_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<fs::path> queue_;
  bool closing_ = false;
  std::size_t done_ = 0;
  std::vector<std::thread> workers_;
};

}  // namespace

Result<net::TransferReport> retrieve(const net::WebNode& node, const std::string& studyUid, const std::string& seriesUid,
                                     db::StudyDatabase& db, const WebOptions& o, const Progress& progress,
                                     const CancelToken& cancel) {
  if (!validUid(studyUid)) return Error(ErrorCode::InvalidArgument, "not a Study Instance UID: " + studyUid);
  if (!seriesUid.empty() && !validUid(seriesUid))
    return Error(ErrorCode::InvalidArgument, "not a Series Instance UID: " + seriesUid);
  progress.unknown("Connecting");
  // QIDO first: "no such study" is then a clear answer, and the count drives the progress.
  net::QueryFilter f;
  f.level = seriesUid.empty() ? net::QueryLevel::Study : net::QueryLevel::Series;
  f.studyUid = studyUid;
  auto found = query(node, f, o, cancel);
  if (!found) return found.error();
  int expected = -1;
  bool present = false;
  for (const auto& m : *found) {
    if (m.studyUid != studyUid || (!seriesUid.empty() && m.seriesUid != seriesUid)) continue;
    present = true;
    expected = m.instanceCount;
  }
  if (!present)
    return Error(ErrorCode::NotFound, seriesUid.empty() ? "no such study on the node" : "no such series on the node",
                 label(node));

  Session s(node, o);
  if (auto p = s.prepare(); !p) return p.error();
  QString path = "/studies/" + QString::fromStdString(studyUid);
  if (!seriesUid.empty()) path += "/series/" + QString::fromStdString(seriesUid);
  // transfer-syntax=*: as stored, so nothing is transcoded (least of all lossily) on the way.
  QNetworkReply* reply =
      s.nam.get(s.request(s.url(path), R"(multipart/related; type="application/dicom"; transfer-syntax=*)"));

  net::InstanceFiler filer(db);
  net::TransferReport report;
  FilingQueue filing(filer, report, 3);
  std::unique_ptr<MultipartSplitter> splitter;
  std::string partError;
  std::FILE* out = nullptr;
  fs::path tmp;
  std::size_t parts = 0;
  const auto closeOut = [&](bool keep) {
    bool ok = out && std::fflush(out) == 0 && !std::ferror(out);
    // Start the part's writeback now, while the next parts download: the filing thread's
    // fsync then mostly waits for writes already under way instead of starting them.
    if (ok && keep) ::sync_file_range(::fileno(out), 0, 0, SYNC_FILE_RANGE_WRITE);
    if (out) ok = std::fclose(out) == 0 && ok;
    out = nullptr;
    if (keep && ok) {
      filing.push(tmp);
      return true;
    }
    std::error_code ec;
    fs::remove(tmp, ec);
    return false;
  };
  MultipartSplitter::Handler handler;
  handler.begin = [&](std::string_view headers) {
    std::string h(headers);
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const auto ct = h.find("content-type:");
    if (ct != std::string::npos && h.find("application/dicom", ct) == std::string::npos) {
      partError = "the node sent a part that is not application/dicom";
      return false;
    }
    tmp = temporaryPathFor(filer.incomingDir() / "wado.dcm");
    out = std::fopen(tmp.c_str(), "wbx");
    if (!out) partError = "cannot write in the store: " + std::string(std::strerror(errno));
    return out != nullptr;
  };
  handler.data = [&](std::string_view bytes) {
    if (bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), out) == bytes.size()) return true;
    partError = "cannot write in the store: " + std::string(std::strerror(errno));
    closeOut(false);
    return false;
  };
  handler.end = [&] {
    if (!closeOut(true)) {
      partError = "cannot write in the store (disk full?)";
      return false;
    }
    ++parts;
    if (expected > 0) progress.report(std::min(1.0, static_cast<double>(parts) / expected), "Retrieving");
    return true;
  };
  std::string protocolError;
  std::vector<char> buffer(256 * 1024);
  auto r = s.wait(
      reply,
      [&](QNetworkReply& rep) {
        if (!splitter) {
          const int status = rep.attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
          if (status >= 300) {
            rep.readAll();  // an error body: worded from the status below
            return true;
          }
          const std::string boundary = boundaryOf(rep.header(QNetworkRequest::ContentTypeHeader).toString().toStdString());
          if (boundary.empty()) {
            protocolError = "the node's answer is not multipart/related";
            return false;
          }
          splitter = std::make_unique<MultipartSplitter>(boundary, handler);
        }
        // Through one reused buffer: readAll() would allocate (and the kernel map and fault
        // in) a fresh block of up to megabytes for every network read.
        for (;;) {
          const qint64 n = rep.read(buffer.data(), static_cast<qint64>(buffer.size()));
          if (n <= 0) return true;
          if (!splitter->feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)))) break;
        }
        protocolError = partError.empty() ? splitter->error() : partError;
        return false;
      },
      cancel, "retrieve");
  if (out) closeOut(false);
  filing.finish();
  if (!r) {
    if (!protocolError.empty()) return Error(ErrorCode::Io, "retrieve failed: " + protocolError, label(node));
    if (report.stored) report.problems.push_back(std::to_string(report.stored) + " instance(s) were stored before the failure");
    return r.error();
  }
  if (r->status >= 300) return s.httpError(*r, "retrieve");
  if (!splitter || !splitter->complete())
    return Error(ErrorCode::Corrupt,
                 "retrieve failed: the answer ended before its closing boundary (" + std::to_string(report.stored) +
                     " instance(s) stored; retrieving again completes the rest)",
                 label(node));
  if (expected >= 0 && parts < static_cast<std::size_t>(expected))
    report.problems.push_back("the node listed " + std::to_string(expected) + " instance(s) but sent " +
                              std::to_string(parts));
  if (report.stored == 0 && report.failed == 0)
    return Error(ErrorCode::NotFound, "the node sent nothing", label(node));
  progress.report(1.0, "Retrieved");
  return report;
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
