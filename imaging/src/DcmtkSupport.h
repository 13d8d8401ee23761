#pragma once
// DCMTK glue shared by the imaging sources (private to imaging/).

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>

#include <filesystem>
#include <string>

#include "lumen/core/Result.h"

namespace lumen::dicom {

/// Attributes larger than this stay in the file until asked for: the header pass never
/// reads pixel data (keeps parsing fast and memory bounded).
inline constexpr Uint32 kMaxHeaderValueLength = 4096;

/// Value `pos` of a string attribute, trailing/leading spaces removed; "" when absent.
std::string getString(DcmItem* item, const DcmTagKey& tag, unsigned long pos = 0);

/// Value multiplicity of an attribute (0 when absent or empty).
unsigned long valueCount(DcmItem* item, const DcmTagKey& tag);

/// Loads a file's header (large values stay on disk). Returns "" on success, otherwise a
/// reason a user can read. Catches everything DCMTK may throw.
std::string loadDicomHeader(DcmFileFormat& ff, const std::string& path);

/// Loads a whole file (pixel data included) after the structure guard
/// (DicomStructureCheck.h): "" on success, otherwise a reason a user can read.
std::string loadDicomFile(DcmFileFormat& ff, const std::string& path);

/// Loads a whole non-image object and checks its SOP class. Errors name the file: a
/// hostile or unreadable file (Corrupt), another SOP class (Unsupported, naming `what`).
Result<DcmDataset*> loadDicomObject(DcmFileFormat& ff, const std::string& path, const char* sopClassUid,
                                    const std::string& what);

/// Saves under a temporary name beside `path`, flushes and renames (DurableFile.h): the
/// file appears complete or not at all.
Status saveDicomDurably(DcmFileFormat& ff, const std::filesystem::path& path,
                        E_TransferSyntax xfer = EXS_LittleEndianExplicit);

/// Converts string values to UTF-8 when the data set declares another character set.
void convertToUtf8IfNeeded(DcmDataset* ds);

/// "CT Image Storage" for a SOP class UID; "" when unknown.
std::string sopClassName(const std::string& uid);

}  // namespace lumen::dicom
