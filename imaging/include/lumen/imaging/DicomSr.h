#pragma once
// DICOM Structured Report, TID 1500 Measurement Report (DCMTK dcmsr/cmr): the reader's
// measurements, per-segment volumes that reference a SEG, and AI classification results
// with the model's identity, in one Enhanced SR of the study.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lumen/core/LabelEditor.h"
#include "lumen/core/Measurement.h"
#include "lumen/core/Result.h"
#include "lumen/imaging/DicomSeg.h"

namespace lumen::dicom {

/// A measurement with its values (ROIs: statistics over the image, in `units`).
struct SrMeasurement {
  Measurement shape;
  std::optional<RoiStatistics> stats;
};

/// Per-segment measurements of a SEG (volume, intensity), referencing it.
struct SrSegment {
  int segmentNumber = 1;
  std::string label;
  CodedConcept type;  // the segment's property type (the finding)
  double volumeMl = 0.0;
  double mean = 0.0, sd = 0.0;  // of the image inside, in `units`
};
struct SrSegmentation {
  std::string sopInstanceUid, seriesInstanceUid;  // the SEG
  std::vector<SrSegment> segments;
};

/// An AI classification: the model's identity and its answer.
struct SrClassification {
  std::string model, version, sha256, device;
  std::vector<std::pair<std::string, double>> probabilities;  // class -> probability
  std::string predicted;  // empty: the model gave no class (`detail` says why)
  std::string detail;     // what else it said: its estimate ("noise SD 13.9 HU"), or why there is no class
};

struct SrInput {
  SegReference images;  // the measured series: patient, study, source instances
  std::string units;    // of the image values ("HU" for CT)
  std::vector<SrMeasurement> measurements;
  std::vector<SrSegmentation> segmentations;
  std::vector<SrClassification> classifications;
  std::string observerName;  // the reader (DICOM PN); empty: Lumen is the observer (a device)
  std::string seriesDescription = "Measurement report";
  int seriesNumber = 0;  // 0: the source series number + 2000
  std::string softwareVersion = "0";
  // Deterministic identity (a batch that must not send a result twice); generated when empty.
  std::string seriesInstanceUid, sopInstanceUid;
};

struct SrWriteReport {
  std::string sopInstanceUid, seriesInstanceUid;
  std::size_t groups = 0;          // measurement groups written
  std::vector<std::string> notes;  // e.g. measurements without an image region
};

/// Writes the report (complete or not at all). Measurements that lie in a slice of the
/// grid carry their outline as image coordinates (SCOORD) on that slice's source image;
/// others (drawn on a reformatted plane) carry only their values, and the notes say so.
Result<SrWriteReport> writeMeasurementReport(const SrInput& input, const std::filesystem::path& path);

/// Any structured report (Lumen's or another system's) as HTML for a person to read: the
/// patient and study, then the content tree with its codes, values and references
/// (DCMTK's rendering). Errors name the file: not DICOM, not a structured report.
Result<std::string> renderStructuredReport(const std::filesystem::path& file);

}  // namespace lumen::dicom
