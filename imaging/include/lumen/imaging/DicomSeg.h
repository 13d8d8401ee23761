#pragma once
// DICOM Segmentation (SEG) objects: a label map written as a binary SEG of the series it
// was drawn on, and any SEG read back onto a reference grid as a label map.
//
// Writing goes through DCMTK's dcmseg (the IOD's modules and functional groups) and then
// replaces the pixel data with frames packed as the standard says: bits run on from one
// frame into the next. Debian's DCMTK 3.6.7 pads every frame to a whole byte, which
// corrupts every frame after the first when rows x columns is not a multiple of 8 (fixed
// upstream in 3.6.9, DCMTK issue #1132). Reading parses the data set directly, so SEGs
// from other writers (binary or fractional, any frame order, per-frame or shared
// geometry) are read the same way.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "lumen/core/Geometry.h"
#include "lumen/core/LabelEditor.h"
#include "lumen/core/Result.h"
#include "lumen/core/Volume.h"
#include "lumen/imaging/DicomScanner.h"
#include "lumen/imaging/VolumePlanner.h"

namespace lumen::dicom {

/// The image series a label map was drawn on: for each of its slices, the source frames
/// the slice was made from (one, or two where the loader interpolated a missing or
/// tilted slice).
struct SegReference {
  struct Frame {
    std::string sopClassUid, sopInstanceUid;
    std::uint32_t frameNumber = 0;  // 1-based within a multi-frame instance; 0 for single-frame
  };
  std::string firstFile;  // patient, study and frame of reference are taken from it
  std::string seriesInstanceUid;
  std::string frameOfReferenceUid;
  int seriesNumber = 0;
  ImageGeometry geometry;                 // the loaded volume's grid
  std::vector<std::vector<Frame>> slices;  // one entry per slice of `geometry`
  /// Per slice: true when it is its source frame as acquired (no interpolation, no shift),
  /// so the grid's pixel coordinates are that image's.
  std::vector<char> direct;
};

/// The reference for the volume `plan` of a scan.
SegReference segReferenceOf(const ScanResult& scan, const VolumePlan& plan);

/// Scans `input` (a DICOM file or folder) and takes the volume chooseVolume() picks
/// (`seriesUid`, `volume` as there). Errors name the input: nothing found, a folder that
/// could not be listed completely, no such series.
Result<SegReference> loadSegReference(const std::filesystem::path& input, const std::string& seriesUid = {},
                                      int volume = 0);

/// Who or what made the segments (DICOM Segment Algorithm Type and identification).
struct SegAlgorithm {
  enum class Type { Manual, SemiAutomatic, Automatic };
  Type type = Type::Manual;
  std::string name;     // required unless Manual: e.g. the model's name
  std::string version;  // e.g. the model's version
  std::string sha256;   // the model file's SHA-256 (written as the algorithm's parameters)
};
const char* toString(SegAlgorithm::Type type);

struct SegWriteOptions {
  SegAlgorithm algorithm;
  std::string seriesDescription = "Segmentation";
  int seriesNumber = 0;  // 0: the source series number + 1000 (or 1000 when it has none)
  std::string contentLabel = "SEGMENTATION";  // CS: upper case, <= 16 characters
  std::string contentCreator;                 // PN of the person, empty for none
  std::string softwareVersion = "0";
  // Deterministic identity (e.g. a batch that must not send a result twice); generated
  // when empty.
  std::string seriesInstanceUid, sopInstanceUid;
};

struct SegWriteReport {
  std::string sopInstanceUid, seriesInstanceUid;
  std::size_t segments = 0, frames = 0;
  /// Label value of each segment number (segment n is segmentLabels[n - 1]).
  std::vector<int> segmentLabels;
  std::vector<std::string> notes;  // what the user should know (codes filled in, renumbering)
};

/// Writes `labels` (uint8, on `ref.geometry`) as a binary SEG: one segment per label value
/// present, one frame per segment and slice that holds any of it (empty frames are left
/// out), each referencing its source frames. The file appears complete or not at all.
Result<SegWriteReport> writeSegmentation(const Volume& labels, const std::vector<LabelInfo>& infos,
                                         const SegReference& ref, const SegWriteOptions& options,
                                         const std::filesystem::path& path);

struct SegReadResult {
  std::shared_ptr<Volume> labels;  // uint8 on the reference grid; segment n -> value n
  std::vector<LabelInfo> infos;    // one per segment, with name, colour and codes
  std::string referencedSeriesUid;  // from the SEG's references; empty when it names none
  std::string frameOfReferenceUid;
  std::string algorithmType;       // of the first segment: MANUAL, SEMIAUTOMATIC, AUTOMATIC
  std::size_t overlappingVoxels = 0;  // voxels more than one segment claims (the map keeps one)
  std::vector<std::string> notes;  // resampling, overlaps, frames outside the grid
};

/// Reads a SEG (binary or fractional; fractional values >= half the maximum count as
/// inside) onto `reference`. Frames whose plane matches a slice of the grid are copied
/// exactly; others are resampled by nearest neighbour (and the notes say so). Errors name
/// the file: not a SEG, more than 255 segments, a frame without position, no overlap
/// with the grid, a different frame of reference (when `frameOfReferenceUid` is given).
Result<SegReadResult> readSegmentation(const std::filesystem::path& path, const ImageGeometry& reference,
                                       const std::string& frameOfReferenceUid = {});

/// An RT Structure Set's closed planar contours rasterised onto `reference`: ROI n (in
/// Structure Set ROI order) becomes label n with the ROI's name and display colour. A voxel
/// is inside when its centre is inside an odd number of the ROI's contours on its slice
/// (holes are contours inside contours). Contours must lie on slices of the grid (within
/// a tenth of the spacing); others are reported. Errors name the file.
Result<SegReadResult> readRtStruct(const std::filesystem::path& path, const ImageGeometry& reference,
                                   const std::string& frameOfReferenceUid = {});
bool isRtStructFile(const std::filesystem::path& path);
/// A SEG or an RT Structure Set (what readLabelObject reads), from one header read.
bool isLabelObjectFile(const std::filesystem::path& path);

/// A SEG or an RT Structure Set, by its SOP class.
Result<SegReadResult> readLabelObject(const std::filesystem::path& path, const ImageGeometry& reference,
                                      const std::string& frameOfReferenceUid = {});

/// True when the file is a DICOM Segmentation (SOP class), read from its header only.
bool isSegmentationFile(const std::filesystem::path& path);
/// The Series Instance UID a SEG's Referenced Series Sequence (or an RT Structure Set's
/// RT Referenced Series) names ("" when none).
std::string referencedSeriesOf(const std::filesystem::path& segFile);

// ---- Colour: DICOM's Recommended Display CIELab Value (PCS, D50), scaled to 0..65535 ----
std::array<std::uint16_t, 3> rgbToDicomLab(Rgb8 rgb);
Rgb8 dicomLabToRgb(const std::array<std::uint16_t, 3>& lab);

}  // namespace lumen::dicom
