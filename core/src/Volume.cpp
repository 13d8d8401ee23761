#include "lumen/core/Volume.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <sstream>
#include <stdexcept>
#include <type_traits>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace lumen {

const char* toString(PixelType t) {
  switch (t) {
    case PixelType::UInt8: return "uint8";
    case PixelType::Int16: return "int16";
    case PixelType::UInt16: return "uint16";
    case PixelType::Float32: return "float32";
    case PixelType::RGB8: return "rgb8";
  }
  return "?";
}

namespace {
constexpr std::size_t kAlignment = 64;  // cache line; lets SIMD loops and tensors share it
// Large volumes: 2 MiB alignment so the kernel can back them with huge pages (a 100 MB
// CT otherwise costs ~25000 page faults while it is filled).
constexpr std::size_t kHugeAlignment = 2u << 20;
constexpr std::size_t kHugeThreshold = 8u << 20;

std::size_t alignmentFor(std::size_t bytes) { return bytes >= kHugeThreshold ? kHugeAlignment : kAlignment; }

struct AlignedDelete {
  std::size_t alignment;
  void operator()(void* p) const { ::operator delete(p, std::align_val_t(alignment)); }
};
}  // namespace

Result<Volume> Volume::allocate(PixelType type, const ImageGeometry& geometry) {
  const auto& s = geometry.size;
  // Overflow-safe byte count: a header can claim 65535^3 voxels.
  const std::size_t maxBytes = std::numeric_limits<std::size_t>::max() / 4;
  std::size_t bytes = bytesPerVoxel(type);
  for (std::size_t n : s) {
    if (n == 0) return Error(ErrorCode::InvalidArgument, "cannot allocate a volume with a zero dimension");
    if (bytes > maxBytes / n) return Error(ErrorCode::TooLarge, "volume size overflows the address space");
    bytes *= n;
  }
  const std::size_t alignment = alignmentFor(bytes);
  void* p = ::operator new(bytes, std::align_val_t(alignment), std::nothrow);
  if (!p) {
    std::ostringstream msg;
    msg << "not enough memory for a " << s[0] << "x" << s[1] << "x" << s[2] << " " << toString(type)
        << " volume (" << (bytes >> 20) << " MiB)";
    return Error(ErrorCode::OutOfMemory, msg.str());
  }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (alignment == kHugeAlignment) (void)madvise(p, bytes & ~(kHugeAlignment - 1), MADV_HUGEPAGE);
#endif
  Volume v;
  v.type_ = type;
  v.geometry_ = geometry;
  v.owner_ = std::shared_ptr<void>(p, AlignedDelete{alignment});
  v.data_ = p;
  return v;
}

Result<Volume> Volume::zeros(PixelType type, const ImageGeometry& geometry) {
  auto v = allocate(type, geometry);
  if (v) std::memset(v->data_, 0, v->byteSize());
  return v;
}

Volume Volume::wrap(PixelType type, const ImageGeometry& geometry, void* data, std::shared_ptr<void> owner) {
  Volume v;
  v.type_ = type;
  v.geometry_ = geometry;
  v.owner_ = std::move(owner);
  v.data_ = data;
  return v;
}

Volume Volume::clone() const {
  if (empty()) return Volume{};
  auto v = allocate(type_, geometry_);
  if (!v) throw std::bad_alloc();
  std::memcpy(v->data_, data_, byteSize());
  return std::move(v.value());
}

Result<Volume> Volume::convertTo(PixelType type) const {
  if (type == PixelType::RGB8 || type_ == PixelType::RGB8)
    return Error(ErrorCode::Unsupported, "colour volumes cannot be converted to another scalar type");
  auto out = allocate(type, geometry_);
  if (!out) return out.error();
  visitScalarType(type_, [&](auto inTag) {
    using In = typename decltype(inTag)::type;
    visitScalarType(type, [&](auto outTag) {
      using Out = typename decltype(outTag)::type;
      const In* src = static_cast<const In*>(data_);
      Out* dst = out->template data<Out>();
      const std::size_t n = voxelCount();
      for (std::size_t i = 0; i < n; ++i) {
        if constexpr (std::is_floating_point_v<Out>) {
          dst[i] = static_cast<Out>(src[i]);
        } else {
          const double v = std::round(static_cast<double>(src[i]));
          dst[i] = static_cast<Out>(std::clamp(v, static_cast<double>(std::numeric_limits<Out>::lowest()),
                                               static_cast<double>(std::numeric_limits<Out>::max())));
        }
      }
    });
  });
  return out;
}

void Volume::setGeometry(const ImageGeometry& g) {
  if (g.size != geometry_.size) throw std::invalid_argument("Volume::setGeometry must keep the size");
  geometry_ = g;
}

double Volume::scalarAt(std::size_t i, std::size_t j, std::size_t k) const {
  const std::size_t idx = linearIndex(i, j, k);
  switch (type_) {
    case PixelType::UInt8: return static_cast<const std::uint8_t*>(data_)[idx];
    case PixelType::Int16: return static_cast<const std::int16_t*>(data_)[idx];
    case PixelType::UInt16: return static_cast<const std::uint16_t*>(data_)[idx];
    case PixelType::Float32: return static_cast<const float*>(data_)[idx];
    case PixelType::RGB8: {
      const Rgb8 c = static_cast<const Rgb8*>(data_)[idx];
      return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b;
    }
  }
  return 0.0;
}

void Volume::throwTypeMismatch() const {
  throw std::logic_error(std::string("Volume holds ") + toString(type_) + " voxels; accessed as another type");
}

}  // namespace lumen
