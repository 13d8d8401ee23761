// Segmentation / enhancement stage of Engine::run: the network over the whole
// pre-processed input, by sliding window (MONAI's inferer) or in one pass; a 2D network
// reads the slices as a batch.

#include <chrono>
#include <sstream>

#include "Pipeline.h"

namespace lumen::models::pipeline {

using Clock = std::chrono::steady_clock;

Result<torch::Tensor> runDense(const State& s, const Bundle& b, const Network& net, std::size_t modelDims,
                               const SlidingWindowParams& params, const InferenceOptions& options, InferenceResult& res,
                               const Progress& progress, const CancelToken& cancel) {
  torch::Tensor y;
  torch::Tensor x = s.x;
  const bool twoD = modelDims == 2;
  if (twoD) x = s.x[0].permute({3, 0, 1, 2});  // slices as a batch: [Z, C, X, Y]
  if (b.inferer.slidingWindow || !options.roiSize.empty()) {
    SlidingWindowReport report;
    auto out = slidingWindowInference(x, params, net.predict, report, options.memory, progress, cancel);
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
    y = net.predict(x);
    res.forwardSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
    res.windows = 1;
    if (y.dim() != x.dim() || y.size(0) != x.size(0)) {
      std::ostringstream e;
      e << "the network returned " << y.sizes() << " for an input of " << x.sizes();
      return Error(ErrorCode::Model, e.str(), b.modelPath.string());
    }
  }
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
  return y;
}

}  // namespace lumen::models::pipeline
