#pragma once
// One DICOM file's header, reduced to what ingest needs: identity, the image pixel module
// and per-frame geometry (single-frame files have one frame; enhanced multi-frame files
// get their per-frame functional groups expanded here).

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "lumen/core/Math.h"
#include "lumen/core/Metadata.h"
#include "lumen/core/Result.h"

namespace lumen::dicom {

/// One 2D frame: the unit that ingest groups, splits and sorts.
struct FrameInfo {
  std::uint32_t frameIndex = 0;  // within its file

  bool hasPosition = false;
  Vec3 positionLps;  // ImagePositionPatient: centre of the first transmitted pixel
  bool hasOrientation = false;
  Vec3 rowCosine{1, 0, 0};     // direction of increasing column index (i)
  Vec3 columnCosine{0, 1, 0};  // direction of increasing row index (j)
  bool hasPixelSpacing = false;
  double spacingI = 1.0;  // mm between adjacent columns (PixelSpacing[1])
  double spacingJ = 1.0;  // mm between adjacent rows (PixelSpacing[0])
  double sliceThicknessMm = 0.0;

  double rescaleSlope = 1.0;
  double rescaleIntercept = 0.0;

  // What distinguishes frames at the same position (used to split stacks).
  int temporalPosition = -1;
  double triggerTimeMs = -1.0;
  int echoNumber = 0;
  double echoTimeMs = -1.0;
  double diffusionBValue = -1.0;
  int acquisitionNumber = -1;
  int instanceNumber = 0;
  std::string stackId;
};

struct FileInfo {
  std::string path;
  std::uint64_t fileSize = 0;
  std::string sopClassUid;
  std::string sopInstanceUid;
  std::string transferSyntaxUid;

  PatientInfo patient;
  StudyInfo study;
  SeriesInfo series;
  std::vector<std::string> imageType;  // ImageType values, upper case
  bool isLocalizer = false;

  // Image pixel module
  std::uint16_t rows = 0;
  std::uint16_t columns = 0;
  std::uint16_t samplesPerPixel = 1;
  std::uint16_t bitsAllocated = 0;
  std::uint16_t bitsStored = 0;
  std::uint16_t highBit = 0;
  std::uint16_t pixelRepresentation = 0;  // 0 unsigned, 1 two's complement
  std::uint16_t planarConfiguration = 0;
  std::string photometric;
  std::uint32_t numberOfFrames = 1;

  bool hasPixelData = false;
  bool encapsulated = false;
  bool floatPixelData = false;      // FloatPixelData (7FE0,0008)
  std::uint64_t pixelDataLength = 0;  // bytes, native pixel data only
  /// File offset of native little-endian pixel data (0 = unknown): the pixel pass then
  /// reads frames with one pread each instead of parsing the header again.
  std::uint64_t pixelDataOffset = 0;

  bool enhanced = false;        // per-frame functional groups
  bool isCine = false;          // frames are time points (FrameTime / FrameIncrementPointer)
  double frameTimeMs = 0.0;
  std::string rescaleType;
  std::vector<WindowPreset> windows;  // as stored (before rescale / inversion)

  std::vector<FrameInfo> frames;
  /// Set when frame positions had to be assumed (legacy multi-frame stacked by
  /// SpacingBetweenSlices): says how, for the volume's warnings.
  std::string stackingNote;

  bool isColor() const { return samplesPerPixel == 3 || photometric == "PALETTE COLOR"; }
  std::uint64_t frameBytes() const;  // native (uncompressed) bytes of one frame
};

/// Cheap check of the first bytes: DICM magic, or a plausible raw dataset (ACR-NEMA).
enum class Sniff { Dicom, RawDataset, NotDicom, Empty, Unreadable };
Sniff sniffFile(const std::filesystem::path& path, std::string* why = nullptr);

/// Parses a file's header (pixel data stays on disk). Never throws; a file that cannot
/// be used as an image gives an Error naming it and the reason.
Result<FileInfo> readFileInfo(const std::filesystem::path& path);

/// Only what identifies the object (patient, study, series, SOP class and instance,
/// transfer syntax): for any storage SOP class, images or not (SR, SEG, PR...).
Result<FileInfo> readFileIdentity(const std::filesystem::path& path);

/// True for the storage SOP classes a study holds beside its images and that are not
/// image volumes themselves: segmentations, structured reports (and key object
/// selections), encapsulated PDF, RT structure sets, presentation states.
bool isResultObjectClass(const std::string& sopClassUid);

/// Registers DCMTK's decoders and silences its logger. Idempotent and thread-safe; every
/// entry point of this library calls it.
void initializeDicomLibrary();

/// Human-readable name of a transfer syntax UID ("JPEG Lossless, SV1", ...).
std::string transferSyntaxName(const std::string& uid);

}  // namespace lumen::dicom
