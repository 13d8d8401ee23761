#include "RemoteNode.h"

#include <stdlib.h>

#include <mutex>

#include "lumen/core/Parallel.h"

namespace lumen::web {

namespace {
RemoteNode options(const net::LocalNode& local, int timeoutSeconds) {
  RemoteNode r;
  r.dimseOptions.callingAe = local.aeTitle;
  r.dimseOptions.timeoutSeconds = timeoutSeconds;
  r.dimseOptions.minFreeBytes = static_cast<std::uint64_t>(local.minFreeMegabytes) << 20;
  r.webOptions.timeoutSeconds = timeoutSeconds;
  return r;
}
}  // namespace

RemoteNode RemoteNode::of(net::DimseNode node, const net::LocalNode& local, int timeoutSeconds) {
  RemoteNode r = options(local, timeoutSeconds);
  r.dimse = std::move(node);
  return r;
}

RemoteNode RemoteNode::of(net::WebNode node, const net::LocalNode& local, int timeoutSeconds) {
  RemoteNode r = options(local, timeoutSeconds);
  r.web = std::move(node);
  return r;
}

Result<std::vector<RemoteNode>> configuredNodes(int timeoutSeconds) {
  auto cfg = net::loadNodes(net::defaultNodesFile());
  if (!cfg) return cfg.error();
  std::vector<RemoteNode> out;
  for (const auto& d : cfg->dimse) out.push_back(RemoteNode::of(d, cfg->local, timeoutSeconds));
  for (const auto& w : cfg->web) out.push_back(RemoteNode::of(w, cfg->local, timeoutSeconds));
  return out;
}

std::string describe(const RemoteNode& n) {
  if (n.web) return n.web->name + "  (DICOMweb)";
  return n.dimse->name + "  (" + n.dimse->aeTitle + "@" + n.dimse->host + ")";
}

Status check(const RemoteNode& n) { return n.web ? ping(*n.web, n.webOptions) : net::echo(*n.dimse, n.dimseOptions); }

Result<std::vector<net::QueryMatch>> query(const RemoteNode& n, const net::QueryFilter& filter, const CancelToken& cancel) {
  return n.web ? query(*n.web, filter, n.webOptions, cancel) : net::find(*n.dimse, filter, n.dimseOptions, cancel);
}

Result<net::TransferReport> retrieve(const RemoteNode& n, const std::string& studyUid, const std::string& seriesUid,
                                     db::StudyDatabase& db, const Progress& progress, const CancelToken& cancel) {
  return n.web ? retrieve(*n.web, studyUid, seriesUid, db, n.webOptions, progress, cancel)
               : net::retrieveGet(*n.dimse, studyUid, seriesUid, db, n.dimseOptions, progress, cancel);
}

Result<net::TransferReport> send(const RemoteNode& n, const std::vector<std::filesystem::path>& files,
                                 const Progress& progress, const CancelToken& cancel) {
  return n.web ? store(*n.web, files, n.webOptions, progress, cancel)
               : net::send(*n.dimse, files, n.dimseOptions, progress, cancel);
}

Result<net::TransferReport> sendCompressed(const RemoteNode& n, const std::vector<std::filesystem::path>& files,
                                           dicom::LosslessSyntax syntax, int threads, const Progress& progress,
                                           const CancelToken& cancel) {
  namespace fs = std::filesystem;
  std::string pattern = (fs::temp_directory_path() / "lumen-send-XXXXXX").string();
  if (!mkdtemp(pattern.data())) return Error(ErrorCode::Io, "cannot create a temporary folder for the compressed files");
  struct TempDir {
    fs::path path;
    ~TempDir() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } temp{pattern};
  std::vector<fs::path> encoded(files.size());
  std::vector<std::string> errors(files.size());
  std::mutex progressMutex;  // fractions in order, though files finish on several threads
  std::size_t done = 0;
  const std::string what = std::string("Compressing (") + dicom::toString(syntax) + ")";
  parallelFor(files.size(), threads, cancel, [&](std::size_t i, int) {
    const fs::path out = temp.path / (std::to_string(i) + ".dcm");
    auto r = dicom::compressFile(files[i], syntax, out);
    if (r) encoded[i] = out;
    else errors[i] = r.error().toString();
    std::lock_guard<std::mutex> lock(progressMutex);
    progress.sub(0, 0.5).report(static_cast<double>(++done) / static_cast<double>(files.size()), what);
  });
  if (cancel.isCancelled()) return Error(ErrorCode::Cancelled, "sending cancelled");
  std::vector<fs::path> ready;
  std::vector<std::string> problems;
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (errors[i].empty()) ready.push_back(encoded[i]);
    else problems.push_back("not sent: " + errors[i]);
  }
  net::TransferReport report;
  if (!ready.empty()) {
    auto r = send(n, ready, progress.sub(0.5, 1), cancel);
    if (!r) return r;
    report = std::move(*r);
  }
  report.failed += problems.size();
  report.problems.insert(report.problems.begin(), problems.begin(), problems.end());
  return report;
}

}  // namespace lumen::web
