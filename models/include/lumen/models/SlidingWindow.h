#pragma once
// Sliding-window inference with MONAI's semantics (monai.inferers.sliding_window_inference):
// windows of roi_size placed with interval int(roi * (1 - overlap)) and the last window
// snapped to the border, sw_batch_size windows per forward pass, constant or gaussian
// importance blending, constant padding when the image is smaller than the window.
// Memory-aware: the stitched output accumulates on the device or on the host depending
// on free memory, and an out-of-memory error halves the batch (then moves accumulation to
// the host) instead of failing.

#include <torch/script.h>

#include <functional>
#include <string>
#include <vector>

#include "lumen/core/Progress.h"
#include "lumen/core/Result.h"
#include "lumen/models/Bundle.h"

namespace lumen::models {

/// Runs the network on a batch of windows: [B, C, *roi] -> [B, Cout, *roi].
using Predictor = std::function<torch::Tensor(const torch::Tensor& windows)>;

struct SlidingWindowReport {
  int windows = 0;
  int batchSize = 0;              // the batch size finally used
  bool hostAccumulation = false;  // stitched output kept in host memory
  double forwardSeconds = 0.0;    // time inside the predictor (device synchronised)
  std::vector<std::string> decisions;  // for the log
};

struct SlidingWindowOptions {
  /// Bytes the stitched output may take on the device (0: half of the free memory).
  std::size_t deviceBudgetBytes = 0;
  bool forceHostAccumulation = false;
};

/// `image`: [B, C, *spatial] (2 or 3 spatial dims) on the compute device. Returns
/// [B, Cout, *spatial] on the same device. Window sizes <= 0 mean "the whole axis".
Result<torch::Tensor> slidingWindowInference(const torch::Tensor& image, const SlidingWindowParams& params,
                                             const Predictor& predictor, SlidingWindowReport& report,
                                             const SlidingWindowOptions& options = {}, const Progress& progress = {},
                                             const CancelToken& cancel = {});

/// Window start positions per spatial axis (dense_patch_slices), for an image of
/// `size` (already padded to at least `roi`).
std::vector<std::vector<std::int64_t>> windowStarts(const std::vector<std::int64_t>& size,
                                                    const std::vector<std::int64_t>& roi, double overlap);

/// The blending weights of one window (compute_importance_map): ones, or a gaussian with
/// sigma = roi * sigma_scale, normalised to max 1 and clamped below at max(min, 1e-3).
torch::Tensor importanceMap(const std::vector<std::int64_t>& roi, BlendMode mode, double sigmaScale,
                            const torch::Device& device);

}  // namespace lumen::models
