#pragma once
// Finds DICOM files under the given paths and parses their headers in parallel.

#include <filesystem>
#include <string>
#include <vector>

#include "lumen/core/Progress.h"
#include "lumen/core/Result.h"
#include "lumen/imaging/DicomFile.h"

namespace lumen::dicom {

struct SkippedFile {
  std::string path;
  std::string reason;  // one line, no patient data
  /// A folder that could not be listed (completely): files under it may be missing from
  /// the scan, so a series found there may be incomplete.
  bool listingError = false;
};

/// The first listing error in `skipped`, if any.
const SkippedFile* firstListingError(const std::vector<SkippedFile>& skipped);

struct ScanOptions {
  int threads = 0;  // 0 = all cores
};

struct ScanResult {
  std::vector<FileInfo> files;       // images, sorted by path
  std::vector<SkippedFile> skipped;  // everything that is not a usable image, with why
  std::vector<std::string> notes;    // e.g. "DICOMDIR: 12 referenced files"
};

/// Lists candidate files: plain files as given, folders recursively (files without
/// extension included), DICOMDIRs by their referenced files. Missing inputs and
/// unreadable folders are recorded in `skipped`. Paths are unique and sorted.
std::vector<std::filesystem::path> enumerateInputs(const std::vector<std::filesystem::path>& inputs,
                                                   std::vector<SkippedFile>& skipped,
                                                   std::vector<std::string>& notes);

/// Enumerates and parses. Fails only when cancelled; bad files are listed in `skipped`.
Result<ScanResult> scanInputs(const std::vector<std::filesystem::path>& inputs, const ScanOptions& options,
                              const Progress& progress = {}, const CancelToken& cancel = {});

}  // namespace lumen::dicom
