#pragma once
// Decodes one frame of a DICOM file into the output voxel type (private to imaging/).
// One decoder per worker thread: it keeps the current file open between frames.

#include <memory>
#include <string>
#include <vector>

#include "lumen/core/Result.h"
#include "lumen/core/Volume.h"
#include "lumen/imaging/DicomFile.h"

class DcmFileFormat;
class DcmFileCache;

namespace lumen::dicom {

/// Stored value -> output value for monochrome data.
struct MonoTransform {
  double slope = 1.0;
  double intercept = 0.0;
  bool invert = false;  // MONOCHROME1: out = invertSum - value
  double invertSum = 0.0;
};

class FrameDecoder {
 public:
  FrameDecoder();
  ~FrameDecoder();
  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  /// Decodes frame `frame` of `file` into `dst` (columns x rows voxels of `out`).
  /// Monochrome: stored bits extracted, sign applied, rescaled, inverted for MONOCHROME1.
  /// Colour (RGB, YBR, palette): 8-bit RGB. `overflow` is set when a value did not fit
  /// the output type (the caller then retries with float32).
  Status decode(const FileInfo& file, std::uint32_t frame, const MonoTransform& tx, PixelType out, void* dst,
                bool& overflow);

 private:
  // How decoded samples are laid out; decoders may differ from the header (JPEG YBR
  // comes back as RGB, lossy JPEG 2000 may carry more bits than BitsStored).
  struct RawLayout {
    std::string colorModel;
    int planar = 0;
    int bitsStored = 0;
    int highBit = 0;
    int pixelRepresentation = 0;
  };
  // Raw decoded samples of a frame in native layout (little endian).
  Status fetchRaw(const FileInfo& file, std::uint32_t frame, std::uint8_t* dst, std::size_t bytes, RawLayout& layout);
  Status openFile(const FileInfo& file);
  Status readAt(const FileInfo& file, std::uint64_t offset, std::uint8_t* dst, std::size_t bytes);
  Status applyPalette(const FileInfo& file, const std::uint8_t* raw, Rgb8* dst);
  std::size_t decodedFrameBytes(const FileInfo& file) const;

  std::string path_;
  std::unique_ptr<DcmFileFormat> ff_;
  std::unique_ptr<DcmFileCache> cache_;
  std::vector<std::uint8_t> scratch_;
};

}  // namespace lumen::dicom
