// DICOMweb WADO-RS retrieve (PS3.18): the study's instances streamed part by part into
// the store, each filed (checked, flushed, committed) off the download's thread.

#include <fcntl.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "DicomWeb.h"
#include "WebSession.h"
#include "lumen/core/DurableFile.h"
#include "lumen/imaging/DicomFile.h"
#include "lumen/imaging/StudyDatabase.h"

namespace lumen::web {

namespace fs = std::filesystem;
using namespace detail;

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
  Session s(node, o);
  if (auto p = s.prepare(); !p) return p.error();
  // The QIDO listing goes out alongside the download, not a round trip before it: it still
  // turns an empty or 404 answer into "no such study", and its count drives the progress.
  net::QueryFilter f;
  f.level = seriesUid.empty() ? net::QueryLevel::Study : net::QueryLevel::Series;
  f.studyUid = studyUid;
  auto qido = sendQuery(s, f);
  if (!qido) return qido.error();
  QString path = "/studies/" + QString::fromStdString(studyUid);
  if (!seriesUid.empty()) path += "/series/" + QString::fromStdString(seriesUid);
  // transfer-syntax=*: as stored, so nothing is transcoded (least of all lossily) on the way.
  QNetworkReply* reply =
      s.nam.get(s.request(s.url(path), R"(multipart/related; type="application/dicom"; transfer-syntax=*)"));
  std::optional<Result<std::vector<net::QueryMatch>>> listing;
  int expected = -1;
  bool present = false;
  // Waits for the listing only if it has not come yet (it normally comes first).
  const auto readListing = [&] {
    if (listing) return;
    listing = readMatches(s, s.wait(*qido, {}, cancel, "query"), f, node);
    if (!*listing) return;
    for (const auto& m : **listing) {
      if (m.studyUid != studyUid || (!seriesUid.empty() && m.seriesUid != seriesUid)) continue;
      present = true;
      expected = m.instanceCount;
    }
  };
  const auto noSuch = [&] {
    return Error(ErrorCode::NotFound, seriesUid.empty() ? "no such study on the node" : "no such series on the node",
                 label(node));
  };

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
    if (!listing && (*qido)->isFinished()) readListing();
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
            protocolError = "the node's answer is not multipart/related with a boundary of 1 to 70 characters";
            return false;
          }
          splitter = std::make_unique<MultipartSplitter>(boundary, handler);
        }
        for (;;) {
          const qint64 available = rep.bytesAvailable();
          if (available <= 0) return true;
          bool fed;
          if (available <= static_cast<qint64>(buffer.size())) {
            // Asked for all it holds, Qt hands over the block it received without copying
            // it when it holds just one (as it does when each arrival is read at once).
            const QByteArray block = rep.read(available);
            if (block.isEmpty()) return true;
            fed = splitter->feed(std::string_view(block.constData(), static_cast<std::size_t>(block.size())));
          } else {
            // Through one reused buffer: a fresh block of megabytes would be mapped and
            // faulted in for every read.
            const qint64 n = rep.read(buffer.data(), static_cast<qint64>(buffer.size()));
            if (n <= 0) return true;
            fed = splitter->feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
          }
          if (!fed) break;
        }
        protocolError = partError.empty() ? splitter->error() : partError;
        return false;
      },
      cancel, "retrieve");
  if (out) closeOut(false);
  filing.finish();
  // What is stored stays (durable, indexed): a stop says how much of it there is.
  const auto stopped = [&](Error e) {
    if (report.stored)
      e.message += " (" + std::to_string(report.stored) + " instance(s) stored; retrieving again completes the rest)";
    return e;
  };
  if (!r && r.error().code == ErrorCode::Cancelled) return stopped(r.error());
  // Nothing came: the listing says whether the node has it at all, whatever form its
  // answer took (404, 204, an empty, cut-off or not multipart body).
  if (parts == 0) {
    readListing();
    if (*listing && !present) return noSuch();
  }
  if (!r) {
    if (!protocolError.empty()) return stopped(Error(ErrorCode::Io, "retrieve failed: " + protocolError, label(node)));
    return stopped(r.error());
  }
  if (r->status >= 300) return s.httpError(*r, "retrieve");
  if (!splitter || !splitter->complete())
    return Error(ErrorCode::Corrupt,
                 "retrieve failed: the answer ended before its closing boundary (" + std::to_string(report.stored) +
                     " instance(s) stored; retrieving again completes the rest)",
                 label(node));
  readListing();
  if (!*listing) {
    if (listing->error().code == ErrorCode::Cancelled) return stopped(listing->error());
    report.problems.push_back("the instance count was not checked: " + listing->error().message);
  }
  if (expected >= 0 && parts < static_cast<std::size_t>(expected))
    report.problems.push_back("the node listed " + std::to_string(expected) + " instance(s) but sent " +
                              std::to_string(parts));
  if (report.stored == 0 && report.failed == 0)
    return Error(ErrorCode::NotFound, "the node sent nothing", label(node));
  progress.report(1.0, "Retrieved");
  return report;
}

}  // namespace lumen::web
