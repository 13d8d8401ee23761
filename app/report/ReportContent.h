#pragma once
// What a PDF report holds, in plain C++: lumen-cli fills it without Qt (the PDF itself is
// made by the report plug-in, which links Qt Gui), the workstation fills it from its views.

#include <cstdint>
#include <string>
#include <vector>

#include "lumen/core/LabelEditor.h"
#include "lumen/core/Math.h"
#include "lumen/core/Metadata.h"
#include "lumen/core/Volume.h"

namespace lumen::report {

struct RgbImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;  // row-major, 3 bytes per pixel
  std::string caption;
};

struct Row {
  std::string name, kind, value;
};

struct AiEntry {
  std::string model, version, sha256, device, result, disclaimer;
};

/// How a report states a classification: "1/4 (p = 0.84); noise SD 13.9 HU", or the
/// detail alone when the model gave no class ("not graded: outside the range ...").
std::string classificationResult(const std::string& predicted, const std::vector<std::pair<std::string, double>>& probabilities,
                                 const std::string& detail);

struct ReportContent {
  std::string title = "Imaging report";
  std::string institution, logoPath;  // logo: a PNG or JPEG file
  std::string patientName, patientId, birthDate, sex;
  std::string studyDate, studyDescription, accession, seriesDescription, modality;
  std::string reader, date;
  std::string findings, impression;  // typed by the reader
  std::vector<Row> measurements;
  std::vector<Row> segments;
  std::vector<AiEntry> ai;
  std::vector<RgbImage> keyImages;
};

/// Slice k of `image` as the viewer shows it: windowed grey, square pixels (nearest
/// neighbour, longest side `maxSide`), labels blended over it in their colours, and
/// `outlines` (continuous voxel indices (i, j) on that slice) drawn in yellow.
RgbImage renderSlice(const Volume& image, std::size_t k, double center, double width, const Volume* labels,
                     const std::vector<LabelInfo>& infos, const std::vector<std::vector<Vec3>>& outlines,
                     int maxSide = 512);

/// Patient, study and series of the report, from the series reported on.
void describeSeries(ReportContent& content, const VolumeInfo& info);

/// "Doe^Jane^^Dr" -> "Doe, Jane"; "20240102" -> "2024-01-02".
std::string personName(const std::string& pn);
std::string isoDate(const std::string& da);

}  // namespace lumen::report
