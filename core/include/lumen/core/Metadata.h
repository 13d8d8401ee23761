#pragma once
// What the application needs to know about where a volume came from. Patient fields are
// protected health information: they are shown to the reader, stored in the study
// database, never logged (see Log.h).

#include <cstdint>
#include <string>
#include <vector>

namespace lumen {

struct PatientInfo {
  std::string patientId;
  std::string name;       // DICOM PN, '^'-separated components
  std::string birthDate;  // YYYYMMDD
  std::string sex;        // M, F, O or empty
};

struct StudyInfo {
  std::string studyInstanceUid;
  std::string date;  // YYYYMMDD
  std::string time;  // HHMMSS(.frac)
  std::string description;
  std::string accessionNumber;
  std::string studyId;
};

struct SeriesInfo {
  std::string seriesInstanceUid;
  std::string modality;  // CT, MR, CR, ...
  int seriesNumber = 0;
  std::string description;
  std::string bodyPart;
  std::string frameOfReferenceUid;
  std::string date;
  std::string time;
};

struct WindowPreset {
  double center = 0.0;
  double width = 1.0;
  std::string name;
};

/// What the k axis of a volume means.
enum class StackKind {
  Spatial,       // a 3D volume: k is a spatial axis
  Single2D,      // one 2D image (CR, DX, MG, a single slice)
  TimeSeries2D,  // 2D+t (cine XA/US, or frames of one position): k is time
};
const char* toString(StackKind kind);

/// Description of one volume found in the input (before or after its pixels are loaded).
struct VolumeInfo {
  PatientInfo patient;
  StudyInfo study;
  SeriesInfo series;

  StackKind stackKind = StackKind::Spatial;
  /// False when the frames carry no patient position/orientation (projection X-ray,
  /// secondary capture): the volume is in image coordinates, without anatomical directions.
  bool hasPatientGeometry = true;
  /// Why this volume is separate from others of the same series ("echo 2", "time 3",
  /// "localizer", "orientation 2"...); empty when the series is one volume.
  std::string splitLabel;
  std::string sopClassUid;
  std::string photometric;  // as stored (MONOCHROME1/2, RGB, PALETTE COLOR, YBR_FULL...)
  std::string units;        // "HU" for CT after rescale, otherwise empty or from RescaleType
  std::vector<WindowPreset> windows;  // from the header (already in output units)
  double frameTimeMs = 0.0;           // cine: time between frames
  int echoNumber = 0;
  std::vector<std::string> transferSyntaxes;  // names, distinct, in file order
  std::vector<std::string> warnings;          // user-readable; no patient data
  std::vector<std::string> files;             // source files in slice order (distinct)
};

}  // namespace lumen
