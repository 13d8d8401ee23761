#pragma once
// Decides what the scanned frames are before any pixel is read (OHIF's "display sets"):
// groups frames into volumes, splits series whose geometry or content differs, orders
// slices along the slice normal, measures spacing from positions, and plans a resampling
// when slices are missing, unevenly spaced or tilted, so that every voxel of the loaded
// volume sits where its geometry says.

#include <cstdint>
#include <vector>

#include "lumen/core/Geometry.h"
#include "lumen/core/Result.h"
#include "lumen/core/Metadata.h"
#include "lumen/core/Volume.h"
#include "lumen/imaging/DicomScanner.h"

namespace lumen::dicom {

struct FrameRef {
  std::uint32_t file = 0;   // index into ScanResult::files
  std::uint32_t frame = 0;  // frame within that file
  bool operator==(const FrameRef& o) const { return file == o.file && frame == o.frame; }
};

/// How output slice k is made: (1 - weightB) * A + weightB * B, each source frame shifted
/// in-plane by (shiftI, shiftJ) pixels (source index = output index - shift).
struct SliceSource {
  FrameRef a;
  FrameRef b;
  double weightB = 0.0;
  double shiftIa = 0.0, shiftJa = 0.0;
  double shiftIb = 0.0, shiftJb = 0.0;
  bool direct() const { return weightB == 0.0 && shiftIa == 0.0 && shiftJa == 0.0; }
};

struct VolumePlan {
  VolumeInfo info;
  ImageGeometry geometry;
  PixelType pixelType = PixelType::Int16;
  std::vector<SliceSource> slices;  // one per output slice
  std::size_t sourceFrames = 0;     // distinct source frames used
  /// Size of the source frames; the output's in-plane size differs when a sheared stack
  /// (gantry tilt) is resampled onto a grid that holds all of it.
  std::size_t frameColumns = 0, frameRows = 0;
  bool resampled = false;           // some slice is not a plain copy of one frame
  double paddingValue = 0.0;        // where resampling reads outside the source
  // MONOCHROME1 is inverted after rescale so that high values are bright everywhere:
  // out = invertSum - value.
  bool invertMonochrome = false;
  double invertSum = 0.0;
};

/// Plans every volume found in the scan, ordered by study, series number, series UID,
/// then split label. Files that end up in no volume are reported in `unused` (reason).
std::vector<VolumePlan> planVolumes(const ScanResult& scan, std::vector<SkippedFile>* unused = nullptr);

/// A plan for output slice `k` alone (a one-slice volume at that slice's position):
/// thumbnails and previews without decoding the whole series.
VolumePlan slicePlan(const VolumePlan& plan, std::size_t k);

/// Which of the planned volumes of an input to use, the same way everywhere (lumen-cli
/// convert / infer, the viewer): volume `number` (1-based, as `lumen-cli info` lists them)
/// when > 0, else the one with the most slices (ties: the first) among those of series
/// `seriesUid` (any series when empty). `others` are the other candidates, to be named.
struct VolumeChoice {
  std::size_t index = 0;
  std::vector<std::size_t> others;
};
/// Errors name `input`: nothing found, no such series, a number out of range or not in
/// the series asked for.
Result<VolumeChoice> chooseVolume(const std::vector<VolumePlan>& plans, const std::string& seriesUid, int number,
                                  const std::string& input);

}  // namespace lumen::dicom
