#include "lumen/models/Inference.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <sstream>

#include "CpuKernels.h"
#include "CpuMemoryPool.h"
#include "lumen/core/Log.h"

namespace lumen::models {

namespace F = torch::nn::functional;
using Clock = std::chrono::steady_clock;

int InferenceResult::predictedClass() const {
  if (probabilities.empty()) return -1;
  return static_cast<int>(std::max_element(probabilities.begin(), probabilities.end()) - probabilities.begin());
}

namespace {

// ---- Geometry bookkeeping: every spatial step records how to undo it. ----------------

struct Oriented {
  std::array<int, 3> perm;   // new axis t = old axis perm[t]
  std::array<bool, 3> flip;  // along the new axis
};
struct Resampled {
  std::array<std::int64_t, 3> oldSize;
};
struct Cropped {
  std::array<std::int64_t, 3> oldSize, start;
};
using SpatialStep = std::variant<Oriented, Resampled, Cropped>;

// Intensity steps, undone for enhancement outputs so they keep the input's units.
struct Linear {
  double scale, offset;  // y = x * scale + offset
};

struct State {
  torch::Tensor x;  // [1, C, X, Y, Z]: X along index i, Y along j, Z along k
  ImageGeometry geometry;
  std::vector<SpatialStep> spatial;
  std::vector<Linear> intensity;
};

// lumen.json "slice_evidence": per slice of the input ([Z, Y, X] tensor `kji`), the area in
// mm^2 of tissue in (lo, hi), counted at the centres of whole neighbourhood squares inside
// that range. A box mean first: a low-dose slice's noise would otherwise break the squares
// up and grade fewer slices the noisier the scan. Sizes in mm, odd pixel counts.
torch::Tensor evidenceAreaMm2(const torch::Tensor& kji, const ImageGeometry& g, const LumenExtras::SliceEvidence& ev) {
  const double sx = g.spacingMm[0], sy = g.spacingMm[1];
  const auto odd = [](double mm, double pixel) { return 2 * static_cast<std::int64_t>(std::floor(mm / (2 * pixel))) + 1; };
  const std::int64_t ki = odd(ev.neighbourhoodMm, sx), kj = odd(ev.neighbourhoodMm, sy);
  const std::int64_t si = odd(ev.smoothingMm, sx), sj = odd(ev.smoothingMm, sy);
  const torch::Tensor x = kji.unsqueeze(1);  // [Z, 1, Y, X]
  torch::Tensor area = torch::zeros({x.size(0)}, x.options().dtype(torch::kFloat64));
  if (kj > x.size(2) || ki > x.size(3) || sj > x.size(2) || si > x.size(3)) return area;
  // A few slices at a time: the temporaries of a whole 2000-slice CT would take gigabytes.
  for (std::int64_t z = 0; z < x.size(0); z += 32) {
    const torch::Tensor part = x.narrow(0, z, std::min<std::int64_t>(32, x.size(0) - z));
    const torch::Tensor mean = F::avg_pool2d(part, F::AvgPool2dFuncOptions({sj, si}).stride(1).padding({sj / 2, si / 2}).count_include_pad(false));
    const torch::Tensor in = ((mean > ev.lo) & (mean < ev.hi)).to(torch::kFloat32);
    const torch::Tensor whole = F::avg_pool2d(in, F::AvgPool2dFuncOptions({kj, ki}).stride(1)) >= 1.0f - 1e-6f;
    area.narrow(0, z, part.size(0)).copy_(whole.sum({1, 2, 3}).to(torch::kFloat64) * (sx * sy));
  }
  return area;
}

torch::Tensor resampleAxisNearest(const torch::Tensor& x, int axis, std::int64_t newSize) {
  const std::int64_t n = x.size(axis);
  if (n == newSize) return x;
  auto idx = torch::arange(newSize, torch::TensorOptions().dtype(torch::kFloat64).device(x.device()));
  if (newSize > 1) idx = torch::round(idx * (static_cast<double>(n - 1) / static_cast<double>(newSize - 1)));
  else idx = torch::zeros_like(idx);
  return x.index_select(axis, idx.to(torch::kLong).clamp(0, n - 1));
}

// Resamples the three spatial axes to `size` with voxel centres of the first and last
// voxel kept (align_corners): the exact inverse of itself.
torch::Tensor resample(const torch::Tensor& x, const std::array<std::int64_t, 3>& size, bool nearest) {
  if (x.size(2) == size[0] && x.size(3) == size[1] && x.size(4) == size[2]) return x;
  if (nearest) {
    torch::Tensor y = x;
    for (int a = 0; a < 3; ++a) y = resampleAxisNearest(y, a + 2, size[static_cast<std::size_t>(a)]);
    return y;
  }
  const bool isFloat = x.is_floating_point();
  auto y = F::interpolate(isFloat ? x : x.to(torch::kFloat32),
                          F::InterpolateFuncOptions().size(std::vector<std::int64_t>{size[0], size[1], size[2]}).mode(torch::kTrilinear).align_corners(true));
  return y;
}

Oriented orientationTo(const ImageGeometry& g, const std::string& axcodes, std::string& why) {
  // World axis and sign of each target letter, in RAS.
  auto letter = [](char c, int& axis, int& sign) {
    switch (std::toupper(static_cast<unsigned char>(c))) {
      case 'R': axis = 0; sign = 1; return true;
      case 'L': axis = 0; sign = -1; return true;
      case 'A': axis = 1; sign = 1; return true;
      case 'P': axis = 1; sign = -1; return true;
      case 'S': axis = 2; sign = 1; return true;
      case 'I': axis = 2; sign = -1; return true;
      default: return false;
    }
  };
  Oriented o{{0, 1, 2}, {false, false, false}};
  std::array<Vec3, 3> ras;
  for (int a = 0; a < 3; ++a) ras[static_cast<std::size_t>(a)] = lpsToRas(g.direction.column(a));
  std::array<bool, 3> used{false, false, false};
  for (int t = 0; t < 3; ++t) {
    int axis = 0, sign = 1;
    if (!letter(axcodes[static_cast<std::size_t>(t)], axis, sign)) {
      why = std::string("axcodes letter '") + axcodes[static_cast<std::size_t>(t)] + "' is not one of RLAPSI";
      return o;
    }
    // The unused array axis closest to this world axis.
    int best = -1;
    double bestAbs = -1;
    for (int a = 0; a < 3; ++a) {
      if (used[static_cast<std::size_t>(a)]) continue;
      const double v = std::fabs(ras[static_cast<std::size_t>(a)][static_cast<std::size_t>(axis)]);
      if (v > bestAbs) {
        bestAbs = v;
        best = a;
      }
    }
    used[static_cast<std::size_t>(best)] = true;
    o.perm[static_cast<std::size_t>(t)] = best;
    o.flip[static_cast<std::size_t>(t)] = (ras[static_cast<std::size_t>(best)][static_cast<std::size_t>(axis)] >= 0 ? 1 : -1) != sign;
  }
  return o;
}

void applyOrientation(State& s, const Oriented& o) {
  const ImageGeometry g = s.geometry;
  s.x = s.x.permute({0, 1, 2 + o.perm[0], 2 + o.perm[1], 2 + o.perm[2]});
  std::vector<std::int64_t> flips;
  for (int t = 0; t < 3; ++t)
    if (o.flip[static_cast<std::size_t>(t)]) flips.push_back(2 + t);
  if (!flips.empty()) s.x = s.x.flip(flips);
  ImageGeometry n = g;
  Vec3 firstVoxel;
  for (int t = 0; t < 3; ++t) {
    const int a = o.perm[static_cast<std::size_t>(t)];
    n.size[static_cast<std::size_t>(t)] = g.size[static_cast<std::size_t>(a)];
    n.spacingMm[static_cast<std::size_t>(t)] = g.spacingMm[static_cast<std::size_t>(a)];
    n.direction.setColumn(static_cast<std::size_t>(t), g.direction.column(a) * (o.flip[static_cast<std::size_t>(t)] ? -1.0 : 1.0));
    firstVoxel[static_cast<std::size_t>(a)] = o.flip[static_cast<std::size_t>(t)] ? static_cast<double>(g.size[static_cast<std::size_t>(a)] - 1) : 0.0;
  }
  n.originLps = g.ijkToLps(firstVoxel);
  s.geometry = n;
  s.spatial.emplace_back(o);
}

torch::Tensor undoOrientation(const torch::Tensor& x, const Oriented& o) {
  std::vector<std::int64_t> flips;
  for (int t = 0; t < 3; ++t)
    if (o.flip[static_cast<std::size_t>(t)]) flips.push_back(2 + t);
  torch::Tensor y = flips.empty() ? x : x.flip(flips);
  std::array<std::int64_t, 3> inv{};
  for (int t = 0; t < 3; ++t) inv[static_cast<std::size_t>(o.perm[static_cast<std::size_t>(t)])] = t;
  return y.permute({0, 1, 2 + inv[0], 2 + inv[1], 2 + inv[2]});
}

void applySpacing(State& s, const SpacingT& sp, std::vector<std::string>& log) {
  std::array<std::int64_t, 3> oldSize{}, newSize{};
  bool changed = false;
  ImageGeometry n = s.geometry;
  for (int a = 0; a < 3; ++a) {
    const auto ua = static_cast<std::size_t>(a);
    oldSize[ua] = static_cast<std::int64_t>(s.geometry.size[ua]);
    newSize[ua] = oldSize[ua];
    const double p = sp.pixdim[ua];
    if (p <= 0 || oldSize[ua] <= 1) continue;
    newSize[ua] = std::max<std::int64_t>(1, std::llround(static_cast<double>(oldSize[ua]) * s.geometry.spacingMm[ua] / p));
    if (newSize[ua] != oldSize[ua]) changed = true;
    n.size[ua] = static_cast<std::size_t>(newSize[ua]);
    // align_corners: the extent between first and last voxel centre is kept exactly.
    n.spacingMm[ua] = newSize[ua] > 1 ? s.geometry.spacingMm[ua] * static_cast<double>(oldSize[ua] - 1) / static_cast<double>(newSize[ua] - 1) : p;
  }
  if (!changed) return;
  s.x = resample(s.x, newSize, sp.mode == "nearest");
  std::ostringstream m;
  m << "resampled " << oldSize[0] << "x" << oldSize[1] << "x" << oldSize[2] << " -> " << newSize[0] << "x" << newSize[1] << "x"
    << newSize[2] << " (" << sp.mode << ")";
  log.push_back(m.str());
  s.geometry = n;
  s.spatial.emplace_back(Resampled{oldSize});
}

void applyCrop(State& s, const CropForegroundT& c, std::vector<std::string>& log) {
  const torch::Tensor mask = (s.x > c.threshold).any(1).squeeze(0);  // [X, Y, Z]
  if (!mask.any().item<bool>()) {
    log.push_back("CropForeground: no foreground, not cropped");
    return;
  }
  std::array<std::int64_t, 3> oldSize{}, start{}, size{};
  for (int a = 0; a < 3; ++a) {
    std::vector<std::int64_t> others;
    for (int b = 0; b < 3; ++b)
      if (b != a) others.push_back(b);
    const torch::Tensor any = mask.any(others[1]).any(others[0]);  // along axis a
    const torch::Tensor idx = torch::nonzero(any).flatten().cpu();
    const auto ua = static_cast<std::size_t>(a);
    oldSize[ua] = mask.size(a);
    const std::int64_t lo = std::max<std::int64_t>(0, idx[0].item<std::int64_t>() - c.margin);
    const std::int64_t hi = std::min<std::int64_t>(oldSize[ua] - 1, idx[-1].item<std::int64_t>() + c.margin);
    start[ua] = lo;
    size[ua] = hi - lo + 1;
  }
  for (int a = 0; a < 3; ++a) s.x = s.x.narrow(a + 2, start[static_cast<std::size_t>(a)], size[static_cast<std::size_t>(a)]);
  s.geometry.originLps = s.geometry.ijkToLps({static_cast<double>(start[0]), static_cast<double>(start[1]), static_cast<double>(start[2])});
  for (int a = 0; a < 3; ++a) s.geometry.size[static_cast<std::size_t>(a)] = static_cast<std::size_t>(size[static_cast<std::size_t>(a)]);
  std::ostringstream m;
  m << "cropped to the foreground: " << size[0] << "x" << size[1] << "x" << size[2];
  log.push_back(m.str());
  s.spatial.emplace_back(Cropped{oldSize, start});
}

torch::Tensor undoSpatial(torch::Tensor x, const std::vector<SpatialStep>& steps, bool nearest) {
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    if (const auto* o = std::get_if<Oriented>(&*it)) {
      x = undoOrientation(x, *o);
    } else if (const auto* r = std::get_if<Resampled>(&*it)) {
      x = resample(x, r->oldSize, nearest);
    } else if (const auto* c = std::get_if<Cropped>(&*it)) {
      // Outside the crop: zero, i.e. background for every channel but the first.
      std::vector<std::int64_t> pad;
      for (int a = 2; a >= 0; --a) {
        const auto ua = static_cast<std::size_t>(a);
        pad.push_back(c->start[ua]);
        pad.push_back(c->oldSize[ua] - c->start[ua] - x.size(a + 2));
      }
      x = F::pad(x, F::PadFuncOptions(pad).mode(torch::kConstant).value(0));
    }
  }
  return x;
}

void applyIntensity(State& s, const Transform& t) {
  if (const auto* r = std::get_if<ScaleIntensityRangeT>(&t)) {
    const double scale = (r->bMax - r->bMin) / (r->aMax - r->aMin);
    s.x = (s.x - r->aMin) * scale + r->bMin;
    if (r->clip) s.x = s.x.clamp(std::min(r->bMin, r->bMax), std::max(r->bMin, r->bMax));
    s.intensity.push_back({scale, r->bMin - r->aMin * scale});
  } else if (const auto* n = std::get_if<NormalizeIntensityT>(&t)) {
    torch::Tensor mean, stdv;
    if (n->nonzero) {
      const torch::Tensor mask = s.x != 0;
      const torch::Tensor vals = s.x.masked_select(mask);
      if (vals.numel() == 0) return;
      mean = vals.mean();
      stdv = vals.std(/*unbiased=*/false);
    } else {
      mean = s.x.mean();
      stdv = s.x.std(/*unbiased=*/false);
    }
    double m = mean.item<double>(), sd = stdv.item<double>();
    if (!(sd > 0)) sd = 1.0;
    if (n->nonzero) s.x = torch::where(s.x != 0, (s.x - m) / sd, s.x);
    else s.x = (s.x - m) / sd;
    s.intensity.push_back({1.0 / sd, -m / sd});
  } else if (const auto* si = std::get_if<ScaleIntensityT>(&t)) {
    const double lo = s.x.min().item<double>(), hi = s.x.max().item<double>();
    const double scale = hi > lo ? (si->maxv - si->minv) / (hi - lo) : 0.0;
    s.x = (s.x - lo) * scale + si->minv;
    s.intensity.push_back({scale, si->minv - lo * scale});
  }
}

torch::Tensor undoIntensity(torch::Tensor y, const std::vector<Linear>& steps) {
  for (auto it = steps.rbegin(); it != steps.rend(); ++it)
    if (it->scale != 0) y = (y - it->offset) / it->scale;
  return y;
}

// ---- Labels from channel scores ----------------------------------------------------------
// argmax over the channel axis as one compare-and-select pass per channel: ATen's argmax
// reduces over a strided axis voxel by voxel (0.7 s for 2 x 10M voxels on 2 cores, against
// 0.07 s), and no channel is copied. Ties keep the lower channel, as argmax does. uint8
// labels up to 256 channels, else int16 (int64 would take 8 bytes a voxel).
torch::Tensor argmaxChannels(const torch::Tensor& y) {
  const std::int64_t channels = y.size(1);
  torch::Tensor best = y.narrow(1, 0, 1);
  torch::Tensor labels = torch::zeros_like(best, best.options().dtype(channels <= 256 ? torch::kUInt8 : torch::kInt16));
  for (std::int64_t c = 1; c < channels; ++c) {
    const torch::Tensor v = y.narrow(1, c, 1);
    labels.masked_fill_(v > best, static_cast<int>(c));
    if (c + 1 < channels) best = torch::max(best, v);
  }
  return labels;
}

// ---- Largest connected component (26-connectivity, MONAI's default) ------------------

void keepLargestComponent(torch::Tensor& labels, const std::vector<int>& applied) {
  torch::Tensor cpu = labels.to(torch::kCPU).to(torch::kInt32).contiguous();  // [X, Y, Z]
  const std::int64_t nx = cpu.size(0), ny = cpu.size(1), nz = cpu.size(2);
  int* d = cpu.data_ptr<int>();
  std::vector<int> present;
  {
    std::vector<char> seen(65536, 0);
    for (std::int64_t i = 0; i < cpu.numel(); ++i)
      if (d[i] > 0 && d[i] < 65536) seen[static_cast<std::size_t>(d[i])] = 1;
    for (int v = 1; v < 65536; ++v)
      if (seen[static_cast<std::size_t>(v)] && (applied.empty() || std::find(applied.begin(), applied.end(), v) != applied.end()))
        present.push_back(v);
  }
  std::vector<std::int32_t> comp(static_cast<std::size_t>(cpu.numel()), -1);
  auto at = [&](std::int64_t x, std::int64_t y, std::int64_t z) { return (x * ny + y) * nz + z; };
  for (int label : present) {
    std::vector<std::int64_t> sizes;
    std::deque<std::int64_t> queue;
    for (std::int64_t i = 0; i < cpu.numel(); ++i) {
      if (d[i] != label || comp[static_cast<std::size_t>(i)] >= 0) continue;
      const auto id = static_cast<std::int32_t>(sizes.size());
      sizes.push_back(0);
      comp[static_cast<std::size_t>(i)] = id;
      queue.push_back(i);
      while (!queue.empty()) {
        const std::int64_t v = queue.front();
        queue.pop_front();
        ++sizes.back();
        const std::int64_t x = v / (ny * nz), y = (v / nz) % ny, z = v % nz;
        for (std::int64_t dx = -1; dx <= 1; ++dx)
          for (std::int64_t dy = -1; dy <= 1; ++dy)
            for (std::int64_t dz = -1; dz <= 1; ++dz) {
              const std::int64_t X = x + dx, Y = y + dy, Z = z + dz;
              if (X < 0 || Y < 0 || Z < 0 || X >= nx || Y >= ny || Z >= nz) continue;
              const std::int64_t w = at(X, Y, Z);
              if (d[w] == label && comp[static_cast<std::size_t>(w)] < 0) {
                comp[static_cast<std::size_t>(w)] = id;
                queue.push_back(w);
              }
            }
      }
    }
    if (sizes.size() <= 1) continue;
    const auto keep = static_cast<std::int32_t>(std::max_element(sizes.begin(), sizes.end()) - sizes.begin());
    for (std::int64_t i = 0; i < cpu.numel(); ++i)
      if (d[i] == label && comp[static_cast<std::size_t>(i)] != keep) d[i] = 0;
  }
  labels = cpu.to(labels.device());
}

torch::ScalarType scalarOf(PixelType t) {
  switch (t) {
    case PixelType::UInt8: return torch::kUInt8;
    case PixelType::Int16: return torch::kInt16;
    case PixelType::UInt16: return torch::kInt32;  // widened below
    case PixelType::Float32: return torch::kFloat32;
    case PixelType::RGB8: return torch::kUInt8;
  }
  return torch::kFloat32;
}

}  // namespace

// ---------------------------------------------------------------------------------------

struct Engine::Impl {
  Bundle bundle;
  InferenceOptions options;
  DeviceChoice device;
  torch::jit::Module module;
  torch::ScalarType dtype = torch::kFloat32;
  std::vector<std::string> loadLog;

  torch::Device torchDevice() const { return device.cuda ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(device.index)) : torch::Device(torch::kCPU); }

  // TorchScript errors carry a long interpreter traceback: keep the line that says what
  // went wrong, and say plainly when the network did not accept its input.
  static std::string explain(const std::string& what) {
    std::string line;
    std::istringstream in(what);
    std::string l;
    while (std::getline(in, l)) {
      const auto p = l.find("Error: ");
      if (p != std::string::npos && l.find("File \"") == std::string::npos) line = l.substr(p + 7);
    }
    if (line.empty()) line = what.substr(0, what.find('\n'));
    if (line.find("out of memory") != std::string::npos || line.find("not enough memory") != std::string::npos) return line;
    if (line.find("channels") != std::string::npos || line.find("shape") != std::string::npos ||
        line.find("size") != std::string::npos || line.find("dimension") != std::string::npos)
      return "the network rejected its input: " + line;
    return line;
  }

  torch::Tensor forward(const torch::Tensor& x) {
    torch::jit::IValue out;
    try {
      out = module.forward({x.to(dtype)});
    } catch (const c10::Error& e) {
      throw std::runtime_error(explain(e.what_without_backtrace()));
    } catch (const std::exception& e) {  // torch::jit::JITException and friends
      throw std::runtime_error(explain(e.what()));
    }
    torch::Tensor t;
    if (out.isTensor()) t = out.toTensor();
    else if (out.isTuple() && !out.toTuple()->elements().empty() && out.toTuple()->elements()[0].isTensor())
      t = out.toTuple()->elements()[0].toTensor();
    else if (out.isTensorList() && out.toTensorList().size() > 0)
      t = out.toTensorList().get(0);
    else
      throw std::runtime_error("the network returned neither a tensor nor a tuple of tensors");
    return t.to(torch::kFloat32);
  }

  // The network, with optional test-time flips; raises a clear error for shape problems.
  // On the CPU the windows of a batch go through one at a time: convolutions are already
  // parallel inside a window, so batching buys no speed there and multiplies the memory
  // the activations take. The result is the same (the network runs in eval mode).
  torch::Tensor predict(const torch::Tensor& x) {
    if (!device.cuda && x.size(0) > 1) {
      std::vector<torch::Tensor> parts;
      for (std::int64_t b = 0; b < x.size(0); ++b) parts.push_back(predictOne(x.narrow(0, b, 1)));
      return torch::cat(parts);
    }
    return predictOne(x);
  }

  torch::Tensor predictOne(const torch::Tensor& x) {
    c10::InferenceMode inference;
    if (!options.testTimeFlips) return forward(x);
    torch::Tensor sum = forward(x);
    int n = 1;
    for (std::int64_t d = 2; d < x.dim(); ++d) {
      sum = sum + forward(x.flip({d})).flip({d});
      ++n;
    }
    return sum / n;
  }
};

const DeviceChoice& Engine::device() const { return impl_->device; }
const Bundle& Engine::bundle() const { return impl_->bundle; }

Result<Engine> Engine::load(const Bundle& bundle, const InferenceOptions& options) {
  const auto loadStarted = Clock::now();
  auto impl = std::make_shared<Impl>();
  impl->bundle = bundle;
  impl->options = options;
  auto dev = chooseDevice(options.device);
  if (!dev) return dev.error();
  impl->device = *dev;
  setCpuThreads(options.threads);
  impl->loadLog.push_back("device: " + dev->reason);
  impl->loadLog.push_back(torchDescription() + ", " + std::to_string(cpuThreads()) + " CPU thread(s)");
  try {
    impl->module = torch::jit::load(bundle.modelPath.string(), impl->torchDevice());
    impl->module.eval();
    // Freezing folds batch norm into the convolutions; on the CPU 3D convolutions then go
    // to oneDNN (see CpuKernels.h). Not for classifiers, whose saliency needs gradients.
    if (bundle.task != Task::Classification && options.precision == Precision::Float32) {
      try {
        impl->module = torch::jit::freeze(impl->module);
        std::string note = "model frozen (batch norm folded)";
        if (!dev->cuda) {
          const int n = useFastCpuKernels(impl->module);
          if (n > 0) note += ", " + std::to_string(n) + " 3D convolution(s) on oneDNN";
        }
        impl->loadLog.push_back(note);
      } catch (const std::exception& e) {
        impl->loadLog.push_back(std::string("model kept as is (freezing failed: ") + std::string(e.what()).substr(0, 120) + ")");
      }
    }
    if (dev->cuda && options.precision != Precision::Float32) {
      impl->dtype = options.precision == Precision::Float16 ? torch::kFloat16 : torch::kBFloat16;
      impl->module.to(impl->dtype);
      impl->loadLog.push_back(std::string("reduced precision: ") + (options.precision == Precision::Float16 ? "float16" : "bfloat16"));
    } else if (options.precision != Precision::Float32) {
      impl->loadLog.push_back("reduced precision ignored on the CPU (float32)");
    }
  } catch (const std::exception& e) {
    return Error(ErrorCode::Model, std::string("cannot load the TorchScript model: ") + e.what(), bundle.modelPath.string());
  }
  {
    std::ostringstream l;
    l.precision(3);
    l << "model loaded in " << std::chrono::duration<double>(Clock::now() - loadStarted).count() << " s";
    impl->loadLog.push_back(l.str());
  }
  Engine engine;
  engine.impl_ = std::move(impl);
  return engine;
}

Result<InferenceResult> runInference(const Bundle& bundle, const Volume& input, const InferenceOptions& options,
                                     const Progress& progress, const CancelToken& cancel) {
  auto engine = Engine::load(bundle, options);
  if (!engine) return engine.error();
  return engine->run(input, progress, cancel);
}

Result<InferenceResult> Engine::run(const Volume& input, const Progress& progress, const CancelToken& cancel) {
  Impl& m = *impl_;
  const Bundle& b = m.bundle;
  const auto started = Clock::now();
  InferenceResult res;
  res.task = b.task;
  res.model = b.name;
  res.version = b.version;
  res.sha256 = b.modelSha256;
  res.device = m.device.name;
  res.log = m.loadLog;
  for (const auto& n : b.notes) res.log.push_back("config: " + n);
  if (input.empty()) return Error(ErrorCode::InvalidArgument, "the input volume is empty");
  if (input.pixelType() == PixelType::RGB8) return Error(ErrorCode::Unsupported, "colour images are not valid model inputs");
  std::string why;
  if (!input.geometry().isValid(&why)) return Error(ErrorCode::InvalidArgument, "input geometry: " + why);
  const torch::Device dev = m.torchDevice();
  Clock::time_point preprocessed = started, networkDone = started;
  // On the CPU, activations are recycled between window batches instead of being mapped,
  // faulted in and unmapped every time (see CpuMemoryPool.h).
  std::optional<CpuMemoryPoolGuard> pool;
  if (!m.device.cuda) pool.emplace();

  try {
    // Inference mode (no autograd bookkeeping) except for classifiers, whose saliency map
    // needs gradients.
    std::optional<c10::InferenceMode> inferenceMode;
    std::optional<torch::NoGradGuard> noGrad;
    if (b.task == Task::Classification) noGrad.emplace();
    else inferenceMode.emplace();
    // One copy of the voxels onto the device, then a view in MONAI's axis order.
    const auto& sz = input.size();
    const std::vector<std::int64_t> kji{static_cast<std::int64_t>(sz[2]), static_cast<std::int64_t>(sz[1]), static_cast<std::int64_t>(sz[0])};
    torch::Tensor raw;
    if (input.pixelType() == PixelType::UInt16) {
      raw = torch::from_blob(const_cast<std::byte*>(input.bytes()), kji, torch::kInt16);  // reinterpret, fixed below
      raw = raw.to(torch::kInt32).bitwise_and(0xFFFF);
    } else {
      raw = torch::from_blob(const_cast<std::byte*>(input.bytes()), kji, scalarOf(input.pixelType()));
    }
    State s;
    const torch::Tensor voxels = raw.to(dev, torch::kFloat32);
    s.x = voxels.permute({2, 1, 0}).unsqueeze(0).unsqueeze(0);
    s.geometry = input.geometry();
    // In the input's own units, before any pre-processing changes them.
    torch::Tensor evidence;
    if (b.extras.sliceEvidence) evidence = evidenceAreaMm2(voxels, input.geometry(), *b.extras.sliceEvidence).cpu();

    // ---- Pre-processing ----
    progress.report(0.0, "Preparing the input");
    for (const auto& t : b.preprocessing) {
      if (const auto* o = std::get_if<OrientationT>(&t)) {
        std::string err;
        const Oriented ori = orientationTo(s.geometry, o->axcodes, err);
        if (!err.empty()) return Error(ErrorCode::Model, "Orientationd: " + err, b.root.string());
        if (ori.perm != std::array<int, 3>{0, 1, 2} || ori.flip != std::array<bool, 3>{false, false, false}) {
          applyOrientation(s, ori);
          res.log.push_back("reoriented to " + o->axcodes);
        }
      } else if (const auto* sp = std::get_if<SpacingT>(&t)) {
        applySpacing(s, *sp, res.log);
      } else if (const auto* c = std::get_if<CropForegroundT>(&t)) {
        applyCrop(s, *c, res.log);
      } else {
        applyIntensity(s, t);
      }
    }
    if (cancel.isCancelled()) return Error(ErrorCode::Cancelled, "inference cancelled");
    preprocessed = Clock::now();

    // ---- Which spatial dimensionality the network takes ----
    SlidingWindowParams params = b.inferer.window;
    if (!m.options.roiSize.empty()) params.roiSize = m.options.roiSize;
    if (m.options.overlap) params.overlap = *m.options.overlap;
    if (m.options.swBatchSize) params.swBatchSize = std::max(1, *m.options.swBatchSize);
    if (!m.device.cuda && params.swBatchSize > 1) {
      // Convolutions are parallel inside a window already; batching windows on the CPU buys
      // no speed and multiplies the memory for activations. Same result in eval mode.
      res.log.push_back("windows one at a time on the CPU (sw_batch_size " + std::to_string(params.swBatchSize) + " is for GPUs)");
      params.swBatchSize = 1;
    }
    if (m.options.blend) params.mode = *m.options.blend;
    std::size_t modelDims = 3;
    if (b.inferer.slidingWindow || !m.options.roiSize.empty()) modelDims = params.roiSize.size();
    else if (b.input.spatialShape.size() == 2) modelDims = 2;
    if (modelDims != 2 && modelDims != 3) return Error(ErrorCode::Model, "only 2D and 3D networks are supported", b.root.string());

    auto predictor = [&m](const torch::Tensor& x) { return m.predict(x); };

    if (b.task == Task::Classification) {
      // ---- Classification: resize to the network's input, probabilities, saliency ----
      // A fixed spatial_shape: the input is resized to it. "*" entries (a network that pools
      // globally and takes any size): the preprocessed grid as it is, since resizing changes
      // what some classifiers measure (noise, texture).
      std::vector<std::int64_t> shape;
      for (int v : b.input.spatialShape) shape.push_back(v);
      if (shape.size() != modelDims)
        return Error(ErrorCode::Model, "classification needs spatial_shape in metadata.json (sizes, or \"*\" for any)", b.root.string());
      const bool anySize = std::all_of(shape.begin(), shape.end(), [](std::int64_t v) { return v <= 0; });
      if (!anySize && std::any_of(shape.begin(), shape.end(), [](std::int64_t v) { return v <= 0; }))
        return Error(ErrorCode::Model, "spatial_shape mixes fixed sizes and \"*\"", b.root.string());
      torch::Tensor batch;  // [N, 1, *shape]
      if (modelDims == 3) {
        batch = anySize ? s.x : F::interpolate(s.x, F::InterpolateFuncOptions().size(shape).mode(torch::kTrilinear).align_corners(false));
      } else {
        const torch::Tensor slices = s.x[0].permute({3, 0, 1, 2});  // [Z, C, X, Y]
        batch = anySize ? slices.contiguous()
                        : F::interpolate(slices, F::InterpolateFuncOptions().size(shape).mode(torch::kBilinear).align_corners(false));
      }
      // Slices without enough of what the model reads are not graded (lumen.json).
      torch::Tensor graded;  // indices of the graded slices; undefined: all of them
      const std::int64_t nSlices = modelDims == 2 ? batch.size(0) : 1;
      if (const auto& ev = b.extras.sliceEvidence) {
        const std::string extraFile = (b.root / "configs" / "lumen.json").string();
        if (modelDims != 2) return Error(ErrorCode::Model, "slice_evidence is for classifiers that read 2D slices", extraFile);
        if (!s.spatial.empty())
          return Error(ErrorCode::Model, "slice_evidence needs the input's own slices; this bundle's pre-processing reorients, resamples or crops them", extraFile);
        graded = (evidence >= ev->minAreaMm2).nonzero().flatten();
        std::ostringstream need;
        need << ev->minAreaMm2 / 100.0 << " cm^2 of tissue in " << ev->lo << ".." << ev->hi << " (mean over " << ev->smoothingMm << " mm)";
        if (graded.numel() == 0) {
          std::ostringstream e;
          e << "no slice shows enough tissue to grade (the model needs " << need.str() << "; the most any slice shows is "
            << std::round(evidence.max().item<double>()) / 100.0 << " cm^2)";
          return Error(ErrorCode::InvalidArgument, e.str());
        }
        if (graded.numel() < nSlices) {
          std::ostringstream l;
          l << nSlices - graded.numel() << " of " << nSlices << " slice(s) not graded: less than " << need.str();
          res.log.push_back(l.str());
          batch = batch.index_select(0, graded.to(batch.device()));
        }
      }
      std::vector<torch::Tensor> probs;
      torch::Tensor saliency;
      // Items per forward pass bounded by pixels, not a count: a classifier that takes any
      // size keeps full-resolution activations (and, for saliency, their gradients) for every
      // item of the pass; 16 slices of 512 x 512 held over 5 GiB.
      const std::int64_t itemVoxels = std::max<std::int64_t>(1, batch[0].numel());
      const std::int64_t step = std::clamp<std::int64_t>((std::int64_t{1} << 20) / itemVoxels, 1, 16);
      for (std::int64_t i = 0; i < batch.size(0); i += step) {
        if (cancel.isCancelled()) return Error(ErrorCode::Cancelled, "inference cancelled");
        torch::Tensor x = batch.narrow(0, i, std::min(step, batch.size(0) - i)).clone();
        const auto t0 = Clock::now();
        torch::Tensor logits;
        if (m.options.saliency) {
          torch::AutoGradMode grad(true);
          x.requires_grad_(true);
          logits = m.forward(x);
          if (logits.dim() != 2) {
            std::ostringstream e;
            e << "a classifier must return [batch, classes]; this one returned " << logits.sizes();
            return Error(ErrorCode::Model, e.str(), b.modelPath.string());
          }
          // Gradient x input for each item's winning class.
          const torch::Tensor top = logits.argmax(1, true);
          logits.gather(1, top).sum().backward();
          torch::Tensor sal = (x.grad() * x).abs().sum(1, true).detach();
          saliency = saliency.defined() ? torch::cat({saliency, sal}) : sal;
          logits = logits.detach();
        } else {
          logits = m.forward(x);
        }
        res.forwardSeconds += std::chrono::duration<double>(Clock::now() - t0).count();
        probs.push_back(torch::softmax(logits, 1));
        progress.report(static_cast<double>(i + step) / static_cast<double>(batch.size(0)), "Running the model");
      }
      const torch::Tensor p = torch::cat(probs).to(torch::kCPU, torch::kFloat64);
      if (b.output.numChannels > 0 && p.size(1) != b.output.numChannels) {
        std::ostringstream e;
        e << "the network returned " << p.size(1) << " classes; metadata.json says " << b.output.numChannels;
        return Error(ErrorCode::Model, e.str(), b.modelPath.string());
      }
      const torch::Tensor mean = p.mean(0);
      for (std::int64_t c = 0; c < mean.size(0); ++c) {
        res.probabilities.push_back(mean[c].item<double>());
        auto it = b.output.channelDef.find(static_cast<int>(c));
        res.classNames.push_back(it != b.output.channelDef.end() ? it->second : "class " + std::to_string(c));
      }
      if (modelDims == 2) {
        // One row per input slice; an empty row for a slice that was not graded.
        std::vector<std::int64_t> row(static_cast<std::size_t>(nSlices), -1);
        for (std::int64_t i = 0; i < p.size(0); ++i)
          row[static_cast<std::size_t>(graded.defined() ? graded[i].item<std::int64_t>() : i)] = i;
        for (std::int64_t z = 0; z < nSlices; ++z) {
          std::vector<double> values;
          if (const std::int64_t i = row[static_cast<std::size_t>(z)]; i >= 0)
            for (std::int64_t c = 0; c < p.size(1); ++c) values.push_back(p[i][c].item<double>());
          res.sliceProbabilities.push_back(std::move(values));
        }
      }
      if (saliency.defined()) {
        // Back to the preprocessed grid, then onto the input grid.
        torch::Tensor sal;
        if (modelDims == 3) {
          sal = F::interpolate(saliency, F::InterpolateFuncOptions().size(std::vector<std::int64_t>{s.x.size(2), s.x.size(3), s.x.size(4)}).mode(torch::kTrilinear).align_corners(false));
        } else {
          sal = F::interpolate(saliency, F::InterpolateFuncOptions().size(std::vector<std::int64_t>{s.x.size(2), s.x.size(3)}).mode(torch::kBilinear).align_corners(false));
          if (graded.defined() && graded.numel() < nSlices)  // slices not graded: no saliency
            sal = torch::zeros({nSlices, sal.size(1), sal.size(2), sal.size(3)}, sal.options()).index_copy(0, graded.to(sal.device()), sal);
          sal = sal.permute({1, 2, 3, 0}).unsqueeze(0);  // [1, 1, X, Y, Z]
        }
        sal = undoSpatial(sal, s.spatial, false);
        const double maxv = sal.max().item<double>();
        if (maxv > 0) sal = sal / maxv;
        auto vol = Volume::allocate(PixelType::Float32, input.geometry());
        if (!vol) return vol.error();
        torch::from_blob(vol->bytes(), kji, torch::kFloat32).copy_(sal[0][0].permute({2, 1, 0}));
        res.saliency = std::move(vol.value());
      }
      std::ostringstream l;
      l << "classified " << batch.size(0) << (modelDims == 2 ? " slice(s)" : " volume") << ": "
        << res.classNames[static_cast<std::size_t>(res.predictedClass())] << " (p = " << res.probabilities[static_cast<std::size_t>(res.predictedClass())] << ")";
      res.log.push_back(l.str());
    } else {
      // ---- Segmentation / enhancement: the network over the whole input ----
      torch::Tensor y;
      SlidingWindowReport report;
      torch::Tensor x = s.x;
      const bool twoD = modelDims == 2;
      if (twoD) x = s.x[0].permute({3, 0, 1, 2});  // slices as a batch: [Z, C, X, Y]
      if (b.inferer.slidingWindow || !m.options.roiSize.empty()) {
        auto out = slidingWindowInference(x, params, predictor, report, m.options.memory, progress, cancel);
        if (!out) return out.error();
        y = *out;
        std::ostringstream l;
        l << report.windows << " window(s) of";
        for (int r : params.roiSize) l << " " << r;
        l << ", overlap " << params.overlap << ", " << (params.mode == BlendMode::Gaussian ? "gaussian" : "constant")
          << " blending, batch " << report.batchSize << (report.hostAccumulation ? ", stitched on the host" : ", stitched on the device");
        res.log.push_back(l.str());
        for (const auto& d : report.decisions) res.log.push_back(d);
        res.windows = report.windows;
        res.forwardSeconds = report.forwardSeconds;
      } else {
        const auto t0 = Clock::now();
        y = m.predict(x);
        res.forwardSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
        res.windows = 1;
        if (y.dim() != x.dim() || y.size(0) != x.size(0)) {
          std::ostringstream e;
          e << "the network returned " << y.sizes() << " for an input of " << x.sizes();
          return Error(ErrorCode::Model, e.str(), b.modelPath.string());
        }
      }
      networkDone = Clock::now();
      if (twoD) y = y.permute({1, 2, 3, 0}).unsqueeze(0);  // back to [1, Cout, X, Y, Z]
      for (int a = 0; a < 3; ++a)
        if (y.size(a + 2) != s.x.size(a + 2)) {
          std::ostringstream e;
          e << "the network output " << y.sizes() << " does not match its input " << s.x.sizes();
          return Error(ErrorCode::Model, e.str(), b.modelPath.string());
        }
      if (b.output.numChannels > 0 && y.size(1) != b.output.numChannels) {
        std::ostringstream e;
        e << "the network returned " << y.size(1) << " channel(s); metadata.json says " << b.output.numChannels;
        return Error(ErrorCode::Model, e.str(), b.modelPath.string());
      }
      if (cancel.isCancelled()) return Error(ErrorCode::Cancelled, "inference cancelled");

      // ---- Post-processing, in the bundle's order ----
      bool inverted = false, discrete = false;
      for (std::size_t pi = 0; pi < b.postprocessing.size(); ++pi) {
        const auto& p = b.postprocessing[pi];
        if (const auto* a = std::get_if<ActivationsT>(&p)) {
          // Softmax right before argmax changes nothing but costs a volume-sized tensor.
          const auto* next = pi + 1 < b.postprocessing.size() ? std::get_if<AsDiscreteT>(&b.postprocessing[pi + 1]) : nullptr;
          const bool onlyArgmax = next && next->argmax && !next->threshold;
          if (a->softmax && !onlyArgmax) y = torch::softmax(y, 1);
          if (a->sigmoid) y = torch::sigmoid(y);
        } else if (const auto* d = std::get_if<AsDiscreteT>(&p)) {
          if (d->argmax) {
            y = argmaxChannels(y);
            discrete = true;
          }
          if (d->threshold) {
            y = (y >= *d->threshold).to(torch::kInt16);
            discrete = true;
          }
        } else if (const auto* k = std::get_if<KeepLargestComponentT>(&p)) {
          if (!discrete) return Error(ErrorCode::Model, "KeepLargestConnectedComponentd needs labels: put it after AsDiscreted", b.root.string());
          torch::Tensor labels = y[0][0];
          keepLargestComponent(labels, k->appliedLabels);
          y = labels.unsqueeze(0).unsqueeze(0);
        } else if (const auto* inv = std::get_if<InvertT>(&p)) {
          y = undoSpatial(y, s.spatial, inv->nearest || discrete);
          inverted = true;
        }
      }
      if (!inverted) {
        y = undoSpatial(y, s.spatial, discrete);
        if (!s.spatial.empty()) res.log.push_back("output put back on the input grid (the bundle has no Invertd)");
      }

      ImageGeometry g = input.geometry();
      if (b.task == Task::Segmentation) {
        if (!discrete) {
          // A probability or logit map: labels are what a segmentation result is.
          y = y.size(1) > 1 ? argmaxChannels(y) : (y >= 0.5).to(torch::kInt16);
          res.log.push_back("labels from the network output (argmax / 0.5 threshold)");
        }
        const std::int64_t maxLabel = y.max().item().toLong();
        const PixelType type = maxLabel < 256 ? PixelType::UInt8 : PixelType::Int16;
        auto vol = Volume::allocate(type, g);
        if (!vol) return vol.error();
        torch::from_blob(vol->bytes(), kji, type == PixelType::UInt8 ? torch::kUInt8 : torch::kInt16)
            .copy_(y[0][0].permute({2, 1, 0}).to(type == PixelType::UInt8 ? torch::kUInt8 : torch::kInt16));
        res.output = std::move(vol.value());
      } else {
        // Enhancement: back to the input's units (e.g. HU).
        y = undoIntensity(y.to(torch::kFloat32), s.intensity);
        auto vol = Volume::allocate(PixelType::Float32, g);
        if (!vol) return vol.error();
        torch::from_blob(vol->bytes(), kji, torch::kFloat32).copy_(y[0][0].permute({2, 1, 0}));
        res.output = std::move(vol.value());
      }
    }
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    if (msg.find("channels") != std::string::npos || msg.find("shape") != std::string::npos ||
        msg.find("size") != std::string::npos)
      return Error(ErrorCode::Model, "the network rejected its input (" + msg.substr(0, msg.find('\n')) + ")", b.modelPath.string());
    return Error(ErrorCode::Model, "inference failed: " + msg.substr(0, msg.find('\n')), b.modelPath.string());
  } catch (const std::bad_alloc&) {
    return Error(ErrorCode::OutOfMemory, "not enough memory for this input on " + m.device.name, b.modelPath.string());
  } catch (const std::exception& e) {
    return Error(ErrorCode::Model, std::string("inference failed: ") + e.what(), b.modelPath.string());
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  std::ostringstream t;
  const auto secs = [](Clock::time_point from, Clock::time_point to) { return std::chrono::duration<double>(to - from).count(); };
  t.precision(3);
  t << "time: " << res.seconds << " s, of which " << res.forwardSeconds << " s in the network";
  if (networkDone > preprocessed)
    t << " (input " << secs(started, preprocessed) << " s, tiling and stitching "
      << secs(preprocessed, networkDone) - res.forwardSeconds << " s, output " << secs(networkDone, Clock::now()) << " s)";
  res.log.push_back(t.str());
  if (pool) {
    const auto st = pool->stats();
    std::ostringstream p;
    p << "CPU memory pool: " << st.hits << " reuse(s), " << st.misses << " new block(s), at most "
      << (st.peakCachedBytes >> 20) << " MiB held";
    res.log.push_back(p.str());
  }
  for (const auto& l : res.log) LUMEN_INFO("inference: " << l);
  progress.report(1.0, "Done");
  return res;
}

}  // namespace lumen::models
