#pragma once
// Lossless re-encoding of DICOM files for export and storage: JPEG-LS (DCMTK's dcmjpls,
// CharLS), JPEG 2000 reversible (OpenJPEG: DCMTK has no JPEG 2000 codec) and deflate.
// The pixel values come back bit for bit; every other attribute is kept.

#include <cstdint>
#include <filesystem>
#include <string>

#include "lumen/core/Result.h"

namespace lumen::dicom {

enum class LosslessSyntax { JpegLs, Jpeg2000, Deflate };
/// "jpeg-ls", "jpeg2000", "deflate" and back.
const char* toString(LosslessSyntax s);
bool parseLosslessSyntax(const std::string& text, LosslessSyntax& out);

struct CompressReport {
  std::uint64_t pixelBytes = 0;       // native pixel data
  std::uint64_t compressedBytes = 0;  // the same pixels encoded (deflate: the whole data set)
  std::uint64_t fileBytesIn = 0, fileBytesOut = 0;
};

/// Re-encodes one file (decoding it first when it is compressed) into `out`, which appears
/// complete or not at all. Refuses, naming the file: not DICOM, no pixel data (deflate
/// takes any data set), a pixel layout the codec cannot hold losslessly (JPEG-LS and
/// JPEG 2000: 8 or 16 bits allocated), a lossy source (its pixels are not the acquired
/// ones; say so rather than store them as lossless).
Result<CompressReport> compressFile(const std::filesystem::path& in, LosslessSyntax syntax, const std::filesystem::path& out);

}  // namespace lumen::dicom
