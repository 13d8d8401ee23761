#include "lumen/models/SlidingWindow.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

#include "lumen/models/Device.h"

#if defined(LUMEN_TORCH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace lumen::models {

namespace F = torch::nn::functional;
using Clock = std::chrono::steady_clock;

std::vector<std::vector<std::int64_t>> windowStarts(const std::vector<std::int64_t>& size,
                                                    const std::vector<std::int64_t>& roi, double overlap) {
  std::vector<std::vector<std::int64_t>> starts;
  for (std::size_t d = 0; d < size.size(); ++d) {
    // _get_scan_interval
    std::int64_t interval = roi[d];
    if (roi[d] != size[d]) {
      interval = static_cast<std::int64_t>(static_cast<double>(roi[d]) * (1.0 - overlap));
      if (interval <= 0) interval = 1;
    }
    // dense_patch_slices
    std::int64_t count = 1;
    const auto num = static_cast<std::int64_t>(std::ceil(static_cast<double>(size[d]) / static_cast<double>(interval)));
    for (std::int64_t k = 0; k < num; ++k)
      if (k * interval + roi[d] >= size[d]) {
        count = k + 1;
        break;
      }
    std::vector<std::int64_t> s;
    for (std::int64_t k = 0; k < count; ++k) {
      std::int64_t start = k * interval;
      start -= std::max<std::int64_t>(start + roi[d] - size[d], 0);
      s.push_back(start);
    }
    starts.push_back(std::move(s));
  }
  return starts;
}

torch::Tensor importanceMap(const std::vector<std::int64_t>& roi, BlendMode mode, double sigmaScale,
                            const torch::Device& device) {
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  if (mode == BlendMode::Constant) return torch::ones(roi, opts);
  torch::Tensor map;
  for (std::size_t i = 0; i < roi.size(); ++i) {
    const double sigma = static_cast<double>(roi[i]) * sigmaScale;
    const double half = (static_cast<double>(roi[i]) - 1.0) / 2.0;
    auto x = torch::arange(-half, half + 1.0, 1.0, opts).slice(0, 0, roi[i]);
    x = torch::exp(x * x / (-2.0 * sigma * sigma));
    if (i == 0) {
      map = x;
    } else {
      std::vector<std::int64_t> shape(i + 1, 1);
      shape[i] = roi[i];
      map = map.unsqueeze(-1) * x.view(shape);
    }
  }
  map = map / map.max();
  const double minNonZero = std::max(map.min().item<double>(), 1e-3);
  return map.clamp_min(minNonZero);
}

namespace {

bool isOutOfMemory(const std::exception& e) {
  const std::string m = e.what();
  return m.find("out of memory") != std::string::npos || m.find("not enough memory") != std::string::npos ||
         m.find("Failed to allocate") != std::string::npos || m.find("can't allocate") != std::string::npos;
}

void synchronize(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}

}  // namespace

Result<torch::Tensor> slidingWindowInference(const torch::Tensor& input, const SlidingWindowParams& params,
                                             const Predictor& predictor, SlidingWindowReport& report,
                                             const SlidingWindowOptions& options, const Progress& progress,
                                             const CancelToken& cancel) {
  const auto dims = static_cast<std::size_t>(input.dim()) - 2;
  if (dims != 2 && dims != 3) return Error(ErrorCode::Model, "sliding window: 2 or 3 spatial dimensions expected");
  if (params.roiSize.size() != dims) {
    std::ostringstream m;
    m << "sliding window: roi_size has " << params.roiSize.size() << " values for " << dims << " spatial dimensions";
    return Error(ErrorCode::Model, m.str());
  }
  const torch::Device device = input.device();
  const std::int64_t batchImages = input.size(0);

  // Pad (constant, split like MONAI: smaller half first) where the image is smaller.
  std::vector<std::int64_t> size, roi, padBefore(dims, 0);
  std::vector<std::int64_t> pad;  // F::pad order: last dim first
  for (std::size_t d = 0; d < dims; ++d) {
    const std::int64_t s = input.size(static_cast<std::int64_t>(d) + 2);
    const std::int64_t r = params.roiSize[d] > 0 ? params.roiSize[d] : s;
    roi.push_back(r);
    const std::int64_t diff = std::max<std::int64_t>(r - s, 0);
    padBefore[d] = diff / 2;
    size.push_back(s + diff);
  }
  for (std::size_t d = dims; d-- > 0;) {
    const std::int64_t diff = size[d] - input.size(static_cast<std::int64_t>(d) + 2);
    pad.push_back(diff / 2);
    pad.push_back(diff - diff / 2);
  }
  torch::Tensor image = input;
  if (std::any_of(pad.begin(), pad.end(), [](std::int64_t p) { return p > 0; }))
    image = F::pad(input, F::PadFuncOptions(pad).mode(torch::kConstant).value(params.padValue));
  // The image is often a permuted view (a volume is z-major in memory, the tensor x-major).
  // Gathering a window straight from it strides through memory a page at a time; copying
  // the window in memory order first, then transposing it while it is in cache, is fast
  // and needs no contiguous copy of the whole image.
  std::vector<std::int64_t> memoryOrder(static_cast<std::size_t>(image.dim()));
  for (std::int64_t d = 0; d < image.dim(); ++d) memoryOrder[static_cast<std::size_t>(d)] = d;
  std::stable_sort(memoryOrder.begin(), memoryOrder.end(),
                   [&](std::int64_t a, std::int64_t b) { return image.stride(a) > image.stride(b); });
  std::vector<std::int64_t> logicalOrder(memoryOrder.size());
  for (std::size_t d = 0; d < memoryOrder.size(); ++d) logicalOrder[static_cast<std::size_t>(memoryOrder[d])] = static_cast<std::int64_t>(d);

  const auto starts = windowStarts(size, roi, params.overlap);
  // Every window of every image: (image index, start per axis).
  std::vector<std::pair<std::int64_t, std::vector<std::int64_t>>> windows;
  for (std::int64_t b = 0; b < batchImages; ++b) {
    // Odometer over the start positions, last axis fastest (MONAI's meshgrid "ij").
    std::vector<std::size_t> idx(dims, 0);
    bool done = false;
    while (!done) {
      std::vector<std::int64_t> s(dims);
      for (std::size_t d = 0; d < dims; ++d) s[d] = starts[d][idx[d]];
      windows.emplace_back(b, s);
      std::size_t d = dims;
      for (;;) {
        if (d == 0) {
          done = true;
          break;
        }
        --d;
        if (++idx[d] < starts[d].size()) break;
        idx[d] = 0;
      }
    }
  }
  report.windows = static_cast<int>(windows.size());
  const torch::Tensor weight = importanceMap(roi, params.mode, params.sigmaScale, device);
  // Constant blending: the weight sum is separable (per axis, how many windows cover a
  // position), so no volume-sized count map and no multiplication by ones. Gaussian blending
  // clamps the map's corners (MONAI's min 1e-3), which is not separable: accumulate the sum,
  // once for all images of the batch since they share the windows.
  const bool separable = params.mode == BlendMode::Constant;
  std::vector<torch::Tensor> coverage;  // per axis, 1 / number of windows covering each index
  if (separable)
    for (std::size_t d = 0; d < dims; ++d) {
      torch::Tensor c = torch::zeros({size[d]}, torch::TensorOptions().dtype(torch::kFloat32));
      for (std::int64_t st : starts[d]) c.narrow(0, st, roi[d]).add_(1.0);
      coverage.push_back(c.reciprocal_());
    }

  int batch = std::max(1, params.swBatchSize);
  bool host = options.forceHostAccumulation || !device.is_cuda();
  torch::Tensor output, count;

  auto slices = [&](torch::Tensor t, std::int64_t b, const std::vector<std::int64_t>& s) {
    torch::Tensor v = t.select(0, b);
    for (std::size_t d = 0; d < dims; ++d) v = v.narrow(static_cast<std::int64_t>(d) + 1, s[d], roi[d]);
    return v;
  };

  std::size_t next = 0;
  while (next < windows.size()) {
    if (cancel.isCancelled()) return Error(ErrorCode::Cancelled, "inference cancelled");
    const std::size_t end = std::min(windows.size(), next + static_cast<std::size_t>(batch));
    try {
      std::vector<torch::Tensor> parts;
      for (std::size_t w = next; w < end; ++w) {
        const torch::Tensor win = slices(image, windows[w].first, windows[w].second).unsqueeze(0);
        parts.push_back(win.is_contiguous() ? win : win.permute(memoryOrder).contiguous().permute(logicalOrder));
      }
      const torch::Tensor in = parts.size() == 1 ? parts[0].contiguous() : torch::cat(parts);
      synchronize(device);
      const auto t0 = Clock::now();
      torch::Tensor pred = predictor(in);
      synchronize(device);
      report.forwardSeconds += std::chrono::duration<double>(Clock::now() - t0).count();
      if (pred.dim() != in.dim() || pred.size(0) != in.size(0)) {
        std::ostringstream m;
        m << "the network returned a tensor of shape " << pred.sizes() << " for windows of shape " << in.sizes();
        return Error(ErrorCode::Model, m.str());
      }
      for (std::size_t d = 0; d < dims; ++d)
        if (pred.size(static_cast<std::int64_t>(d) + 2) != roi[d]) {
          std::ostringstream m;
          m << "the network changed the window size: " << pred.sizes() << " for windows of shape " << in.sizes();
          return Error(ErrorCode::Model, m.str());
        }
      if (!output.defined()) {
        // Now the number of output channels is known: decide where to stitch.
        std::vector<std::int64_t> shape{batchImages, pred.size(1)};
        shape.insert(shape.end(), size.begin(), size.end());
        std::size_t bytes = 4;
        for (auto s : shape) bytes *= static_cast<std::size_t>(s);
        if (device.is_cuda() && !host) {
          const std::size_t budget = options.deviceBudgetBytes ? options.deviceBudgetBytes : deviceMemory(DeviceChoice{true, device.index(), "", ""}).freeBytes / 2;
          if (budget > 0 && bytes > budget) {
            host = true;
            std::ostringstream m;
            m << "stitching on the host: the output (" << (bytes >> 20) << " MiB) exceeds the device budget (" << (budget >> 20) << " MiB)";
            report.decisions.push_back(m.str());
          }
        }
        const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(host ? torch::Device(torch::kCPU) : device);
        output = torch::zeros(shape, opts);
        if (!separable) {
          std::vector<std::int64_t> cshape{1, 1};
          cshape.insert(cshape.end(), size.begin(), size.end());
          count = torch::zeros(cshape, opts);
        }
      }
      pred = pred.to(torch::kFloat32);
      if (!separable) pred.mul_(weight.unsqueeze(0).unsqueeze(0));
      const torch::Tensor weighted = pred.to(output.device());
      const torch::Tensor w = separable ? torch::Tensor() : weight.to(output.device()).unsqueeze(0);
      for (std::size_t i = next; i < end; ++i) {
        slices(output, windows[i].first, windows[i].second).add_(weighted.select(0, static_cast<std::int64_t>(i - next)));
        if (!separable && windows[i].first == 0) slices(count, 0, windows[i].second).add_(w);
      }
      next = end;
      progress.report(static_cast<double>(next) / static_cast<double>(windows.size()), "Running the model");
    } catch (const std::exception& e) {
      if (!isOutOfMemory(e)) return Error(ErrorCode::Model, std::string("inference failed: ") + e.what());
      // Out of memory: a smaller batch first, then stitching on the host.
      if (batch > 1) {
        batch = std::max(1, batch / 2);
        report.decisions.push_back("out of memory: window batch reduced to " + std::to_string(batch));
      } else if (!host && output.defined()) {
        output = output.to(torch::kCPU);
        if (count.defined()) count = count.to(torch::kCPU);
        host = true;
        report.decisions.push_back("out of memory: stitching moved to the host");
      } else {
        return Error(ErrorCode::OutOfMemory,
                     std::string("not enough memory for one window even with the output on the host: ") + e.what());
      }
#if defined(LUMEN_TORCH_CUDA)
      if (device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
    }
  }
  report.batchSize = batch;
  report.hostAccumulation = host;
  if (separable) {
    // Two passes (dims is 2 or 3): the leading axes' factor as one map, then the last axis.
    torch::Tensor lead = coverage[0].to(output.device());
    for (std::size_t d = 1; d + 1 < dims; ++d) lead = lead.unsqueeze(-1) * coverage[d].to(output.device());
    output.mul_(lead.unsqueeze(-1));
    output.mul_(coverage[dims - 1].to(output.device()));
  } else {
    output.div_(count);
  }
  count = torch::Tensor();
  torch::Tensor result = output.to(device);
  // Crop the padding away.
  for (std::size_t d = 0; d < dims; ++d)
    result = result.narrow(static_cast<std::int64_t>(d) + 2, padBefore[d], input.size(static_cast<std::int64_t>(d) + 2));
  return result.contiguous();
}

}  // namespace lumen::models
