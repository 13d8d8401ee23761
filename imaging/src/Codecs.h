#pragma once
// Decoders Lumen runs itself on encapsulated frames taken out of the data set with DCMTK:
// - JPEG 2000 (DCMTK has none) through OpenJPEG, which is fuzzed upstream (GDCM, tried
//   first, crashed and asserted on hostile input);
// - RLE, written here with bounds checks (DCMTK 3.6.7's RLE decoder crashed on fuzzed
//   input; the format is small enough to own).

#include <cstdint>
#include <string>
#include <vector>

#include "lumen/core/Result.h"

class DcmPixelData;
class DcmDataset;

namespace lumen::dicom {

struct FileInfo;

/// Samples of one decoded frame as the code stream holds them.
struct J2kFrame {
  int precision = 0;  // bits per sample in the code stream
  bool isSigned = false;
  bool colorTransformed = false;  // the decoder undid an RCT/ICT: samples are RGB
};

/// Bytes of frame `frame`'s compressed data (its fragments concatenated), located by one
/// fragment per frame, the basic offset table, or (JPEG 2000) code stream markers.
Result<std::vector<std::uint8_t>> encapsulatedFrame(DcmDataset& ds, DcmPixelData& pixel, const FileInfo& file,
                                                    std::uint32_t frame);

/// Decodes a J2K/JP2 code stream into `dst`: rows x columns x samples of
/// file.bitsAllocated / 8 bytes each, colour interleaved (pixel by pixel).
Result<J2kFrame> decodeJpeg2000(const std::vector<std::uint8_t>& stream, const FileInfo& file, std::uint8_t* dst,
                                std::size_t bytes);

/// Decodes one RLE Lossless frame into `dst`: rows x columns x samples of
/// file.bitsAllocated / 8 bytes each, little endian, colour interleaved.
Status decodeRle(const std::vector<std::uint8_t>& frame, const FileInfo& file, std::uint8_t* dst, std::size_t bytes);

}  // namespace lumen::dicom
