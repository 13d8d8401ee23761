#include "lumen/imaging/VolumeLoader.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <numeric>
#include <optional>
#include <sstream>

#include "PixelDecoder.h"
#include "lumen/core/Log.h"
#include "lumen/core/Parallel.h"

namespace lumen::dicom {

std::size_t physicalMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && pageSize > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(pageSize) : 0;
}

namespace {

template <class T>
double channel(const T& v, int) {
  return static_cast<double>(v);
}
double channel(const Rgb8& v, int c) { return c == 0 ? v.r : (c == 1 ? v.g : v.b); }

template <class T>
T fromDouble(double v, const T*) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    return static_cast<T>(std::clamp(std::round(v), double(std::numeric_limits<T>::lowest()),
                                     double(std::numeric_limits<T>::max())));
  }
}

// Bilinear sample of a frame at continuous index (x, y); false when outside.
template <class T>
bool sample(const T* f, std::size_t cols, std::size_t rows, double x, double y, int c, double& out) {
  // Only between sample centres: extrapolating would invent values at the border.
  constexpr double eps = 1e-6;
  if (x < -eps || y < -eps || x > static_cast<double>(cols - 1) + eps || y > static_cast<double>(rows - 1) + eps)
    return false;
  x = std::clamp(x, 0.0, static_cast<double>(cols - 1));
  y = std::clamp(y, 0.0, static_cast<double>(rows - 1));
  const std::size_t x0 = static_cast<std::size_t>(x), y0 = static_cast<std::size_t>(y);
  const std::size_t x1 = std::min(x0 + 1, cols - 1), y1 = std::min(y0 + 1, rows - 1);
  const double fx = x - static_cast<double>(x0), fy = y - static_cast<double>(y0);
  const double v00 = channel(f[y0 * cols + x0], c), v10 = channel(f[y0 * cols + x1], c);
  const double v01 = channel(f[y1 * cols + x0], c), v11 = channel(f[y1 * cols + x1], c);
  out = (v00 * (1 - fx) + v10 * fx) * (1 - fy) + (v01 * (1 - fx) + v11 * fx) * fy;
  return true;
}

// Output slice (cols x rows) from one or two decoded source frames (frameCols x frameRows),
// each shifted in-plane.
template <class T>
void resampleSlice(const T* a, const T* b, const SliceSource& s, std::size_t frameCols, std::size_t frameRows,
                   std::size_t cols, std::size_t rows, double padding, T* out) {
  constexpr int channels = std::is_same_v<T, Rgb8> ? 3 : 1;
  for (std::size_t j = 0; j < rows; ++j) {
    for (std::size_t i = 0; i < cols; ++i) {
      double v[3] = {padding, padding, padding};
      for (int c = 0; c < channels; ++c) {
        double va = 0, vb = 0;
        const bool inA = sample(a, frameCols, frameRows, double(i) - s.shiftIa, double(j) - s.shiftJa, c, va);
        if (b && s.weightB > 0) {
          const bool inB = sample(b, frameCols, frameRows, double(i) - s.shiftIb, double(j) - s.shiftJb, c, vb);
          if (inA && inB) v[c] = va * (1 - s.weightB) + vb * s.weightB;
          else if (inA || inB) v[c] = inA ? va : vb;
        } else if (inA) {
          v[c] = va;
        }
      }
      if constexpr (channels == 3) {
        out[j * cols + i] = Rgb8{static_cast<std::uint8_t>(std::clamp(std::lround(v[0]), 0L, 255L)),
                                 static_cast<std::uint8_t>(std::clamp(std::lround(v[1]), 0L, 255L)),
                                 static_cast<std::uint8_t>(std::clamp(std::lround(v[2]), 0L, 255L))};
      } else {
        out[j * cols + i] = fromDouble(v[0], out);
      }
    }
  }
}

MonoTransform transformFor(const VolumePlan& plan, const FrameInfo& fr) {
  MonoTransform tx;
  tx.slope = fr.rescaleSlope;
  tx.intercept = fr.rescaleIntercept;
  tx.invert = plan.invertMonochrome;
  tx.invertSum = plan.invertSum;
  return tx;
}

struct Attempt {
  std::optional<Volume> volume;
  std::optional<Error> error;
  bool overflow = false;
};

Attempt loadAs(const ScanResult& scan, const VolumePlan& plan, PixelType type, const LoadOptions& options,
               const Progress& progress, const CancelToken& outerCancel) {
  Attempt result;
  auto alloc = options.zeroFill ? Volume::zeros(type, plan.geometry) : Volume::allocate(type, plan.geometry);
  if (!alloc) {
    Error e = alloc.error();
    e.resource = plan.info.files.empty() ? std::string() : plan.info.files.front();
    result.error = e;
    return result;
  }
  Volume vol = std::move(alloc.value());
  if (options.onAllocated) options.onAllocated(vol);
  const std::size_t nz = plan.geometry.size[2], cols = plan.geometry.size[0], rows = plan.geometry.size[1];
  const int threads = std::min<int>(resolveThreadCount(options.threads), static_cast<int>(std::max<std::size_t>(1, nz)));

  // Middle slice first (a viewer shows it while the rest loads), then in order.
  std::vector<std::size_t> order(nz);
  std::iota(order.begin(), order.end(), 0);
  if (nz > 2) std::rotate(order.begin(), order.begin() + static_cast<long>(nz / 2), order.begin() + static_cast<long>(nz / 2 + 1));

  std::vector<FrameDecoder> decoders(static_cast<std::size_t>(threads));
  std::vector<std::vector<std::byte>> scratchA(static_cast<std::size_t>(threads)), scratchB(static_cast<std::size_t>(threads));
  CancelToken stop;  // set on the first error, or when the caller cancels
  std::mutex errorMutex;
  std::atomic<bool> overflow{false};
  std::atomic<std::size_t> done{0};
  const std::size_t sliceBytes = vol.sliceByteSize();
  const std::size_t frameCols = plan.frameColumns ? plan.frameColumns : cols;
  const std::size_t frameRows = plan.frameRows ? plan.frameRows : rows;
  const std::size_t frameBytes = frameCols * frameRows * bytesPerVoxel(type);
  const bool sameSize = frameCols == cols && frameRows == rows;

  auto fail = [&](Error e) {
    std::lock_guard<std::mutex> lock(errorMutex);
    if (!result.error) result.error = std::move(e);
    stop.cancel();
  };

  parallelFor(nz, threads, stop, [&](std::size_t idx, int w) {
    if (outerCancel.isCancelled()) {
      stop.cancel();
      return;
    }
    const std::size_t k = order[idx];
    const SliceSource& src = plan.slices[k];
    FrameDecoder& dec = decoders[static_cast<std::size_t>(w)];
    std::byte* dst = vol.bytes() + k * sliceBytes;
    auto decodeInto = [&](const FrameRef& ref, void* out) -> bool {
      const FileInfo& f = scan.files[ref.file];
      bool of = false;
      auto st = dec.decode(f, ref.frame, transformFor(plan, f.frames[ref.frame]), type, out, of);
      if (!st) {
        fail(st.error());
        return false;
      }
      if (of) overflow = true;
      return true;
    };
    if (src.direct() && sameSize) {
      if (!decodeInto(src.a, dst)) return;
    } else {
      auto& a = scratchA[static_cast<std::size_t>(w)];
      auto& b = scratchB[static_cast<std::size_t>(w)];
      a.resize(frameBytes);
      if (!decodeInto(src.a, a.data())) return;
      const bool two = src.weightB > 0;
      if (two) {
        b.resize(frameBytes);
        if (!decodeInto(src.b, b.data())) return;
      }
      visitPixelType(type, [&](auto tag) {
        using T = typename decltype(tag)::type;
        resampleSlice(reinterpret_cast<const T*>(a.data()), two ? reinterpret_cast<const T*>(b.data()) : nullptr, src,
                      frameCols, frameRows, cols, rows, plan.paddingValue, reinterpret_cast<T*>(dst));
      });
    }
    if (options.onSliceReady) options.onSliceReady(k);
    const std::size_t d = done.fetch_add(1) + 1;
    progress.report(static_cast<double>(d) / static_cast<double>(nz), "Reading pixels");
  });

  if (result.error) return result;
  if (outerCancel.isCancelled()) {
    result.error = Error(ErrorCode::Cancelled, "loading cancelled");
    return result;
  }
  result.overflow = overflow.load();
  result.volume = std::move(vol);
  return result;
}

}  // namespace

Result<Volume> loadVolume(const ScanResult& scan, const VolumePlan& plan, const LoadOptions& options,
                          const Progress& progress, const CancelToken& cancel) {
  if (plan.slices.empty() || plan.geometry.voxelCount() == 0)
    return Error(ErrorCode::InvalidArgument, "the volume has no slices");
  const std::size_t limit = options.memoryLimitBytes ? options.memoryLimitBytes : physicalMemoryBytes() / 4 * 3;
  const std::size_t bpv = bytesPerVoxel(plan.pixelType);
  const double bytes = static_cast<double>(plan.geometry.voxelCount()) * static_cast<double>(bpv);
  if (limit > 0 && bytes > static_cast<double>(limit)) {
    std::ostringstream s;
    const auto& sz = plan.geometry.size;
    s << "volume of " << sz[0] << "x" << sz[1] << "x" << sz[2] << " voxels needs " << (bytes / (1 << 20))
      << " MiB, more than the " << (limit >> 20) << " MiB allowed";
    return Error(ErrorCode::TooLarge, s.str(), plan.info.files.empty() ? std::string() : plan.info.files.front());
  }
  Attempt a = loadAs(scan, plan, plan.pixelType, options, progress, cancel);
  if (a.error) return *a.error;
  if (a.overflow && plan.pixelType != PixelType::Float32 && plan.pixelType != PixelType::RGB8) {
    // The optimistic integer type did not hold the rescaled values: keep them exact.
    LUMEN_INFO("values exceed " << toString(plan.pixelType) << "; reloading as float32");
    a.volume.reset();
    a = loadAs(scan, plan, PixelType::Float32, options, progress, cancel);
    if (a.error) return *a.error;
  }
  return std::move(*a.volume);
}

}  // namespace lumen::dicom
