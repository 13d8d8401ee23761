#pragma once
// A configured node of either protocol, and the four things Lumen does with any node:
// check that it answers, query, retrieve into the study database, send. DIMSE nodes go
// through imaging/Dimse.h, DICOMweb nodes through DicomWeb.h; the CLI and the GUI both
// call these, so neither chooses the protocol on its own.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "DicomWeb.h"
#include "lumen/imaging/Compress.h"
#include "lumen/imaging/Dimse.h"
#include "lumen/imaging/Nodes.h"

namespace lumen::web {

struct RemoteNode {
  std::optional<net::DimseNode> dimse;  // exactly one of these is set
  std::optional<net::WebNode> web;
  net::DimseOptions dimseOptions;  // calling AE title, timeout, free-space reserve
  WebOptions webOptions;

  /// Both protocols' options from the configuration's own node (calling AE title, free-space
  /// reserve) and `timeoutSeconds`.
  static RemoteNode of(net::DimseNode node, const net::LocalNode& local, int timeoutSeconds);
  static RemoteNode of(net::WebNode node, const net::LocalNode& local, int timeoutSeconds);
  const std::string& name() const { return web ? web->name : dimse->name; }
};

/// Every node of the nodes file (~/.config/lumen/nodes.json), DIMSE ones first, with the
/// configuration's own options and `timeoutSeconds`.
Result<std::vector<RemoteNode>> configuredNodes(int timeoutSeconds);
/// "name  (AE@host)" or "name  (DICOMweb)": how a person tells the nodes apart.
std::string describe(const RemoteNode& node);

/// C-ECHO, or a QIDO-RS request.
Status check(const RemoteNode& node);
Result<std::vector<net::QueryMatch>> query(const RemoteNode& node, const net::QueryFilter& filter,
                                           const CancelToken& cancel = {});
/// C-GET or WADO-RS.
Result<net::TransferReport> retrieve(const RemoteNode& node, const std::string& studyUid, const std::string& seriesUid,
                                     db::StudyDatabase& db, const Progress& progress = {},
                                     const CancelToken& cancel = {});
/// C-STORE or STOW-RS.
Result<net::TransferReport> send(const RemoteNode& node, const std::vector<std::filesystem::path>& files,
                                 const Progress& progress = {}, const CancelToken& cancel = {});
/// The same, each file re-encoded first in `syntax` (on `threads` threads, into a private
/// temporary folder removed afterwards). A file that cannot be encoded losslessly (a lossy
/// source, samples outside Bits Stored...) is not sent: it counts as failed, with the
/// reason among the problems, never sent as something else. The first half of the
/// progress is the encoding, the second the transfer.
Result<net::TransferReport> sendCompressed(const RemoteNode& node, const std::vector<std::filesystem::path>& files,
                                           dicom::LosslessSyntax syntax, int threads, const Progress& progress = {},
                                           const CancelToken& cancel = {});

}  // namespace lumen::web
