#include "RemoteNode.h"

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

}  // namespace lumen::web
