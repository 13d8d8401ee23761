#include "PixelDecoder.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "DcmtkSupport.h"
#include "Codecs.h"
#include <dcmtk/dcmdata/dcfcache.h>

namespace lumen::dicom {

namespace {

template <class Out>
constexpr double outMin() {
  return std::is_floating_point_v<Out> ? -std::numeric_limits<double>::infinity()
                                       : static_cast<double>(std::numeric_limits<Out>::lowest());
}
template <class Out>
constexpr double outMax() {
  return std::is_floating_point_v<Out> ? std::numeric_limits<double>::infinity()
                                       : static_cast<double>(std::numeric_limits<Out>::max());
}

// Stored samples -> output values. Raw is read as unsigned; the stored bits are extracted
// (shift + mask) and sign-extended for two's complement data. `src` may alias `dst` when
// both have the same size: each element is read before it is written.
template <class Raw, class Out>
bool convertMono(const Raw* src, Out* dst, std::size_t n, int shift, int bitsStored, bool isSigned,
                 const MonoTransform& tx) {
  using U = std::make_unsigned_t<Raw>;
  const std::uint32_t mask = bitsStored >= 32 ? 0xFFFFFFFFu : ((1u << bitsStored) - 1u);
  const std::uint32_t signBit = bitsStored >= 32 ? 0x80000000u : (1u << (bitsStored - 1));
  const bool integral = tx.slope == std::round(tx.slope) && tx.intercept == std::round(tx.intercept) &&
                        tx.invertSum == std::round(tx.invertSum);
  if constexpr (!std::is_floating_point_v<Out>) {
    // Integer path (CT in HU, most MR): int32 arithmetic vectorises and is exact.
    if (integral && bitsStored <= 16 && std::fabs(tx.slope) <= 32768 && std::fabs(tx.intercept) < 1e9 &&
        std::fabs(tx.invertSum) < 1e9) {
      const std::int32_t a = static_cast<std::int32_t>(tx.slope), b = static_cast<std::int32_t>(tx.intercept);
      const std::int32_t s = static_cast<std::int32_t>(tx.invertSum);
      const std::int32_t sign = isSigned ? static_cast<std::int32_t>(signBit) : 0;
      std::int32_t lo = std::numeric_limits<std::int32_t>::max(), hi = std::numeric_limits<std::int32_t>::min();
      for (std::size_t i = 0; i < n; ++i) {
        std::int32_t v = static_cast<std::int32_t>((static_cast<std::uint32_t>(static_cast<U>(src[i])) >> shift) & mask);
        v = (v ^ sign) - sign;  // sign extension (no-op for unsigned)
        std::int32_t r = a * v + b;
        if (tx.invert) r = s - r;
        lo = std::min(lo, r);
        hi = std::max(hi, r);
        dst[i] = static_cast<Out>(r);
      }
      return n > 0 && (lo < outMin<Out>() || hi > outMax<Out>());
    }
  }
  bool overflow = false;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t u = (static_cast<std::uint32_t>(static_cast<U>(src[i])) >> shift) & mask;
    std::int64_t v = isSigned && (u & signBit) ? static_cast<std::int64_t>(u) - (std::int64_t(signBit) << 1)
                                                : static_cast<std::int64_t>(u);
    double r = tx.slope * static_cast<double>(v) + tx.intercept;
    if (tx.invert) r = tx.invertSum - r;
    if constexpr (std::is_floating_point_v<Out>) {
      dst[i] = static_cast<Out>(r);
    } else {
      r = std::round(r);
      if (r < outMin<Out>() || r > outMax<Out>()) overflow = true;
      dst[i] = static_cast<Out>(std::clamp(r, outMin<Out>(), outMax<Out>()));
    }
  }
  return overflow;
}

template <class Out>
bool convertFloat(const float* src, Out* dst, std::size_t n, const MonoTransform& tx) {
  bool overflow = false;
  for (std::size_t i = 0; i < n; ++i) {
    double r = tx.slope * static_cast<double>(src[i]) + tx.intercept;
    if (tx.invert) r = tx.invertSum - r;
    if constexpr (std::is_floating_point_v<Out>) {
      dst[i] = static_cast<Out>(r);
    } else {
      if (!(r >= outMin<Out>() && r <= outMax<Out>())) overflow = true;
      dst[i] = static_cast<Out>(std::clamp(std::round(std::isfinite(r) ? r : 0.0), outMin<Out>(), outMax<Out>()));
    }
  }
  return overflow;
}

std::uint8_t clamp8(double v) { return static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

Rgb8 ybrToRgb(double y, double cb, double cr) {
  // PS3.3 C.7.6.3.1.2, YBR_FULL (ITU-R BT.601 full range).
  return {clamp8(y + 1.402 * (cr - 128.0)), clamp8(y - 0.344136 * (cb - 128.0) - 0.714136 * (cr - 128.0)),
          clamp8(y + 1.772 * (cb - 128.0))};
}

// Reads one sample of `bytesPerSample` bytes, reduced to 8 bits.
inline std::uint8_t sample8(const std::uint8_t* p, int bytesPerSample, int shift) {
  switch (bytesPerSample) {
    case 1: return p[0];
    case 2: {
      std::uint16_t v;
      std::memcpy(&v, p, 2);
      return static_cast<std::uint8_t>(std::min<unsigned>(v >> shift, 255u));
    }
    default: {
      std::uint32_t v;
      std::memcpy(&v, p, 4);
      return static_cast<std::uint8_t>(std::min<std::uint32_t>(v >> shift, 255u));
    }
  }
}

Status toRgb(const FileInfo& f, const std::uint8_t* raw, Rgb8* dst, const std::string& model, int planar) {
  const std::size_t n = static_cast<std::size_t>(f.rows) * f.columns;
  const int bps = f.bitsAllocated / 8;
  const int shift = std::max(0, f.bitsStored - 8);
  if (model == "YBR_FULL_422") {
    // Uncompressed 4:2:2: Y1 Y2 Cb Cr for each pair of pixels along a row.
    if (bps != 1) return Error(ErrorCode::Unsupported, "YBR_FULL_422 with more than 8 bits per sample", f.path);
    const std::size_t cols = f.columns;
    for (std::size_t r = 0; r < f.rows; ++r) {
      const std::uint8_t* row = raw + r * cols * 2;
      for (std::size_t c = 0; c < cols; c += 2) {
        const std::uint8_t* g = row + c * 2;
        dst[r * cols + c] = ybrToRgb(g[0], g[2], g[3]);
        if (c + 1 < cols) dst[r * cols + c + 1] = ybrToRgb(g[1], g[2], g[3]);
      }
    }
    return {};
  }
  const bool ybr = model == "YBR_FULL";
  if (!(ybr || model == "RGB" || model == "YBR_RCT" || model == "YBR_ICT"))
    return Error(ErrorCode::Unsupported, "colour model " + model + " after decompression is not supported", f.path);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint8_t c[3];
    for (int s = 0; s < 3; ++s) {
      const std::size_t idx = planar ? (static_cast<std::size_t>(s) * n + i) : (i * 3 + static_cast<std::size_t>(s));
      c[s] = sample8(raw + idx * static_cast<std::size_t>(bps), bps, shift);
    }
    dst[i] = ybr ? ybrToRgb(c[0], c[1], c[2]) : Rgb8{c[0], c[1], c[2]};
  }
  return {};
}

}  // namespace

FrameDecoder::FrameDecoder() = default;
FrameDecoder::~FrameDecoder() = default;

Status FrameDecoder::openFile(const FileInfo& file) {
  if (ff_ && path_ == file.path) return {};
  ff_ = std::make_unique<DcmFileFormat>();
  cache_ = std::make_unique<DcmFileCache>();
  path_.clear();
  if (auto err = loadDicomHeader(*ff_, file.path); !err.empty()) {
    ff_.reset();
    return Error(ErrorCode::Corrupt, err, file.path);
  }
  path_ = file.path;
  return {};
}

std::size_t FrameDecoder::decodedFrameBytes(const FileInfo& f) const {
  if (!f.encapsulated) return f.frameBytes();
  return static_cast<std::size_t>(f.rows) * f.columns * f.samplesPerPixel * (f.bitsAllocated / 8u);
}

Status FrameDecoder::fetchRaw(const FileInfo& f, std::uint32_t frame, std::uint8_t* dst, std::size_t bytes,
                              RawLayout& layout) {
  layout.colorModel = f.photometric;
  layout.planar = f.planarConfiguration;
  layout.bitsStored = f.bitsStored;
  layout.highBit = f.highBit;
  layout.pixelRepresentation = f.pixelRepresentation;
  if (!f.encapsulated && f.pixelDataOffset > 0)
    return readAt(f, f.pixelDataOffset + std::uint64_t(frame) * bytes, dst, bytes);
  if (auto s = openFile(f); !s) return s;
  DcmDataset* ds = ff_->getDataset();
  DcmElement* px = nullptr;
  if (ds->findAndGetElement(f.floatPixelData ? DCM_FloatPixelData : DCM_PixelData, px).bad() || !px)
    return Error(ErrorCode::Corrupt, "pixel data element disappeared on second read", f.path);

  try {
    if (!f.encapsulated) {
      const std::uint64_t offset = static_cast<std::uint64_t>(frame) * bytes;
      if (offset + bytes > px->getLength()) {
        std::ostringstream s;
        s << "pixel data ends before frame " << (frame + 1) << " (" << px->getLength() << " bytes stored)";
        return Error(ErrorCode::Corrupt, s.str(), f.path);
      }
      const OFCondition c = px->getPartialValue(dst, static_cast<Uint32>(offset), static_cast<Uint32>(bytes),
                                                cache_.get(), gLocalByteOrder);
      if (c.bad()) return Error(ErrorCode::Corrupt, std::string("cannot read pixel data (") + c.text() + ")", f.path);
      return {};
    }
    auto* pd = dynamic_cast<DcmPixelData*>(px);
    if (!pd) return Error(ErrorCode::Corrupt, "encapsulated pixel data is malformed", f.path);
    const E_TransferSyntax xs = DcmXfer(f.transferSyntaxUid.c_str()).getXfer();
    if (xs == EXS_JPEG2000LosslessOnly || xs == EXS_JPEG2000 || xs == EXS_JPEG2000MulticomponentLosslessOnly ||
        xs == EXS_JPEG2000Multicomponent) {
      auto stream = encapsulatedFrame(*ds, *pd, f, frame);
      if (!stream) return stream.error();
      auto j2k = decodeJpeg2000(*stream, f, dst, bytes);
      if (!j2k) return j2k.error();
      // The decoder undoes the component transform of YBR_ICT / YBR_RCT: samples are RGB.
      if (f.samplesPerPixel == 3 && (f.photometric == "YBR_ICT" || f.photometric == "YBR_RCT"))
        layout.colorModel = "RGB";
      layout.planar = 0;
      // Lossy streams may carry more bits than BitsStored: extract what the stream holds.
      layout.bitsStored = std::clamp(j2k->precision, 1, static_cast<int>(f.bitsAllocated));
      layout.highBit = layout.bitsStored - 1;
      layout.pixelRepresentation = j2k->isSigned ? 1 : 0;
      return {};
    }
    if (xs == EXS_RLELossless) {
      auto rle = encapsulatedFrame(*ds, *pd, f, frame);
      if (!rle) return rle.error();
      if (auto st = decodeRle(*rle, f, dst, bytes); !st) return st;
      layout.planar = 0;  // decodeRle interleaves colour
      return {};
    }
    Uint32 startFragment = 0;
    OFString model;
    const OFCondition c = pd->getUncompressedFrame(ds, frame, startFragment, dst, static_cast<Uint32>(bytes), model,
                                                   cache_.get());
    if (c.good()) {
      if (!model.empty()) layout.colorModel = model.c_str();
      layout.planar = 0;  // DCMTK's JPEG decoders return colour pixel by pixel
      return {};
    }
    // Syntaxes with a registered DCMTK decoder failed on their data; others have none.
    const bool hasDecoder = xs == EXS_JPEGProcess1 || xs == EXS_JPEGProcess2_4 || xs == EXS_JPEGProcess14 ||
                            xs == EXS_JPEGProcess14SV1 || xs == EXS_JPEGLSLossless || xs == EXS_JPEGLSLossy;
    if (!hasDecoder)
      return Error(ErrorCode::Unsupported, "no decoder for " + transferSyntaxName(f.transferSyntaxUid) + " pixel data",
                   f.path);
    return Error(ErrorCode::Corrupt,
                 "cannot decode " + transferSyntaxName(f.transferSyntaxUid) + " pixel data (" + c.text() + ")", f.path);
  } catch (const std::bad_alloc&) {
    return Error(ErrorCode::OutOfMemory, "out of memory while decoding pixel data", f.path);
  }
}

Status FrameDecoder::readAt(const FileInfo& f, std::uint64_t offset, std::uint8_t* dst, std::size_t bytes) {
  const int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error(ErrorCode::Io, std::string("cannot open: ") + std::strerror(errno), f.path);
  std::size_t got = 0;
  while (got < bytes) {
    const ssize_t r = ::pread(fd, dst + got, bytes - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      ::close(fd);
      return Error(ErrorCode::Corrupt, r < 0 ? std::string("read failed: ") + std::strerror(errno)
                                             : std::string("file ends inside the pixel data (truncated)"),
                   f.path);
    }
    got += static_cast<std::size_t>(r);
  }
  ::close(fd);
  return {};
}

Status FrameDecoder::applyPalette(const FileInfo& f, const std::uint8_t* raw, Rgb8* dst) {
  if (auto s = openFile(f); !s) return s;
  DcmDataset* ds = ff_->getDataset();
  const DcmTagKey descTags[3] = {DCM_RedPaletteColorLookupTableDescriptor, DCM_GreenPaletteColorLookupTableDescriptor,
                                 DCM_BluePaletteColorLookupTableDescriptor};
  const DcmTagKey dataTags[3] = {DCM_RedPaletteColorLookupTableData, DCM_GreenPaletteColorLookupTableData,
                                 DCM_BluePaletteColorLookupTableData};
  std::vector<std::uint8_t> lut[3];
  long first[3] = {0, 0, 0};
  for (int c = 0; c < 3; ++c) {
    Uint16 d[3] = {0, 0, 0};
    for (unsigned long i = 0; i < 3; ++i) {
      if (ds->findAndGetUint16(descTags[c], d[i], i).bad()) {
        Sint16 sd = 0;
        if (ds->findAndGetSint16(descTags[c], sd, i).bad())
          return Error(ErrorCode::Corrupt, "palette colour lookup table descriptor is missing", f.path);
        d[i] = static_cast<Uint16>(sd);
      }
    }
    const std::size_t entries = d[0] == 0 ? 65536 : d[0];
    first[c] = d[1];
    const int bits = d[2];
    const Uint16* words = nullptr;
    unsigned long count = 0;
    if (ds->findAndGetUint16Array(dataTags[c], words, &count).bad() || !words)
      return Error(ErrorCode::Unsupported, "palette colour lookup table data is missing (segmented palettes are not supported)", f.path);
    lut[c].resize(entries);
    if (count >= entries) {
      // Some writers declare 16 bits but store 8-bit values: scale only when needed.
      const bool wide = bits == 16 && std::any_of(words, words + entries, [](Uint16 w) { return w > 255; });
      for (std::size_t i = 0; i < entries; ++i) lut[c][i] = static_cast<std::uint8_t>(wide ? (words[i] >> 8) : std::min<Uint16>(words[i], 255));
    } else if (bits == 8 && count * 2 >= entries) {
      const auto* bytes = reinterpret_cast<const std::uint8_t*>(words);  // two 8-bit entries per word
      for (std::size_t i = 0; i < entries; ++i) lut[c][i] = bytes[i];
    } else {
      return Error(ErrorCode::Corrupt, "palette colour lookup table is shorter than its descriptor says", f.path);
    }
  }
  const std::size_t n = static_cast<std::size_t>(f.rows) * f.columns;
  const bool wide = f.bitsAllocated == 16;
  for (std::size_t i = 0; i < n; ++i) {
    long v;
    if (wide) {
      std::uint16_t w;
      std::memcpy(&w, raw + 2 * i, 2);
      v = w;
    } else {
      v = raw[i];
    }
    std::uint8_t rgb[3];
    for (int c = 0; c < 3; ++c) {
      const long idx = std::clamp(v - first[c], 0L, static_cast<long>(lut[c].size()) - 1);
      rgb[c] = lut[c][static_cast<std::size_t>(idx)];
    }
    dst[i] = {rgb[0], rgb[1], rgb[2]};
  }
  return {};
}

Status FrameDecoder::decode(const FileInfo& f, std::uint32_t frame, const MonoTransform& tx, PixelType out, void* dst,
                            bool& overflow) {
  overflow = false;
  const std::size_t n = static_cast<std::size_t>(f.rows) * f.columns;
  const std::size_t bytes = decodedFrameBytes(f);
  RawLayout layout;

  if (out == PixelType::RGB8) {
    scratch_.resize(bytes);
    if (auto s = fetchRaw(f, frame, scratch_.data(), bytes, layout); !s) return s;
    if (f.photometric == "PALETTE COLOR") return applyPalette(f, scratch_.data(), static_cast<Rgb8*>(dst));
    if (f.samplesPerPixel != 3) return Error(ErrorCode::Inconsistent, "monochrome frame in a colour volume", f.path);
    return toRgb(f, scratch_.data(), static_cast<Rgb8*>(dst), layout.colorModel, layout.planar);
  }
  if (f.samplesPerPixel != 1 || f.photometric == "PALETTE COLOR")
    return Error(ErrorCode::Inconsistent, "colour frame in a monochrome volume", f.path);

  // Decode straight into the destination when the stored sample has the output's size:
  // the conversion then runs in place and no second copy of the frame exists.
  const bool inPlace = bytesPerVoxel(out) == f.bitsAllocated / 8u;
  std::uint8_t* raw = static_cast<std::uint8_t*>(dst);
  if (!inPlace) {
    scratch_.resize(bytes);
    raw = scratch_.data();
  }
  if (auto s = fetchRaw(f, frame, raw, bytes, layout); !s) return s;

  const int bitsStored = layout.bitsStored;
  const int shift = layout.highBit + 1 - bitsStored;
  const bool isSigned = layout.pixelRepresentation == 1;
  return visitScalarType(out, [&](auto tag) -> Status {
    using Out = typename decltype(tag)::type;
    Out* o = static_cast<Out*>(dst);
    if (f.floatPixelData) {
      overflow = convertFloat(reinterpret_cast<const float*>(raw), o, n, tx);
    } else if (f.bitsAllocated == 8) {
      overflow = convertMono(raw, o, n, shift, bitsStored, isSigned, tx);
    } else if (f.bitsAllocated == 16) {
      overflow = convertMono(reinterpret_cast<const std::uint16_t*>(raw), o, n, shift, bitsStored, isSigned, tx);
    } else {
      overflow = convertMono(reinterpret_cast<const std::uint32_t*>(raw), o, n, shift, bitsStored, isSigned, tx);
    }
    return {};
  });
}

}  // namespace lumen::dicom
