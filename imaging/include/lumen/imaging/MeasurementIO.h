#pragma once
// Measurements as files: the document the study database keeps (geometry only, read
// strictly), and the JSON and CSV exports a researcher takes away (with lengths, angles,
// areas and ROI statistics computed on the image).

#include <string>
#include <vector>

#include "lumen/core/Measurement.h"
#include "lumen/core/Result.h"
#include "lumen/core/Volume.h"

namespace lumen {

/// {"format": "lumen-measurements", "version": 1, "measurements": [...]}; "" for an empty list.
std::string measurementsToDocument(const std::vector<Measurement>& list);
/// Reads a document: unknown keys, wrong types, an unknown kind or an invalid measurement
/// are errors naming `resource` and the measurement.
Result<std::vector<Measurement>> measurementsFromDocument(const std::string& text, const std::string& resource);

/// What an export says about where the measurements were made (no patient data).
struct MeasurementSource {
  std::string seriesInstanceUid;
  std::string studyInstanceUid;
  std::string frameOfReferenceUid;
  std::string volume;  // split label, "" when the series is one volume
  std::string units;   // of ROI statistics: "HU" for CT
};

/// Each measurement with its values: length (mm), angle (degrees), area (mm^2) and, for
/// ROIs on `image` (may be null), mean / SD / min / max / samples.
std::string exportMeasurementsJson(const std::vector<Measurement>& list, const Volume* image,
                                   const MeasurementSource& source);
/// One row per measurement: id,kind,text,length_mm,angle_deg,area_mm2,mean,sd,min,max,
/// samples,units,points_lps (points "x y z" separated by ';'). RFC 4180 quoting.
std::string exportMeasurementsCsv(const std::vector<Measurement>& list, const Volume* image,
                                  const MeasurementSource& source);

}  // namespace lumen
