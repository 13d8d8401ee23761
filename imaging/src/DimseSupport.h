#pragma once
// Helpers shared by the DIMSE client and the storage listener (DCMTK types: private to
// the imaging library).

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmnet/dimse.h>
#include <dcmtk/dcmnet/dcmlayer.h>
#include <dcmtk/ofstd/oflist.h>
#include <dcmtk/ofstd/ofstring.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "lumen/core/Result.h"
#include "lumen/imaging/Nodes.h"

class DcmSCU;
class DcmTLSTransportLayer;

namespace lumen::net::detail {

/// The uncompressed transfer syntaxes, explicit little endian first.
OFList<OFString> uncompressedSyntaxes();

/// Compressed and deflated syntaxes Lumen can store and read, each proposed on a context
/// of its own so a peer can send a compressed file without transcoding it.
const std::vector<const char*>& compressedSyntaxes();

/// Every syntax the listener accepts, in its order of preference.
OFList<OFString> allAcceptedSyntaxes();

/// Storage SOP classes proposed for C-GET when the node does not say which its study holds.
const std::vector<const char*>& commonStorageClasses();

/// Free bytes on the file system holding `path` (max when it cannot be read).
std::uint64_t freeBytes(const std::filesystem::path& path);

/// A one-line, user-facing reason for a failed network step with `node` (no patient data).
std::string describe(const OFCondition& cond, int timeoutSeconds);

/// A DICOM TLS layer (BCP 195 profile) from PEM files: for a connection to a node (its
/// certificate verified against files.caFile) or for the listener (its own certificate;
/// callers' certificates required and verified when files.caFile is set). The error names
/// the file that could not be used. `make`, when given, builds the layer (a subclass of
/// DCMTK's, for the role it is given) in place of DCMTK's own.
Result<std::unique_ptr<DcmTransportLayer>> makeTlsLayer(
    const TlsFiles& files, bool listener, std::unique_ptr<DcmTLSTransportLayer> (*make)(T_ASC_NetworkRole) = nullptr);

/// Puts `scu` on `layer` (DcmSCU keeps this protected): after initNetwork(), before the
/// association is negotiated; the layer must outlive the SCU. Nothing to do when null.
OFCondition useTlsLayer(DcmSCU& scu, DcmTransportLayer* layer);

/// DICOM status classes (PS3.7 Annex C).
inline bool isSuccess(std::uint16_t s) { return s == 0x0000; }
inline bool isWarning(std::uint16_t s) { return s == 0x0001 || (s & 0xF000) == 0xB000 || s == 0x0107 || s == 0x0116; }
inline bool isPending(std::uint16_t s) { return s == 0xFF00 || s == 0xFF01; }

}  // namespace lumen::net::detail
