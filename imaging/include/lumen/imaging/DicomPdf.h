#pragma once
// A PDF stored in a study as an Encapsulated PDF instance (its own series).

#include <filesystem>
#include <string>

#include "lumen/core/Result.h"

namespace lumen::dicom {

struct EncapsulatedPdfOptions {
  std::string title = "Imaging report";  // Document Title
  int seriesNumber = 0;                   // 0: 3000 + the source series number
  int sourceSeriesNumber = 0;
  std::string softwareVersion = "0";
};

/// Writes `pdf` as Encapsulated PDF with the patient and study of `sourceFile` (an image
/// of the study). The file appears complete or not at all. Returns its SOP Instance UID.
Result<std::string> writeEncapsulatedPdf(const std::string& pdf, const std::filesystem::path& sourceFile,
                                         const EncapsulatedPdfOptions& options, const std::filesystem::path& path);

/// The PDF an Encapsulated PDF instance holds (without the padding byte DICOM may add).
/// Errors name the file: not DICOM, another SOP class, no document, not a PDF.
Result<std::string> readEncapsulatedPdf(const std::filesystem::path& file);

}  // namespace lumen::dicom
