#pragma once
// The stages of Engine::run (private to models/). The volume travels as one tensor in
// MONAI's array order; every spatial step records how to undo it, so that each result is
// put back on the input's grid:
//   toState -> reformat to the plane a 2D network was trained on -> the bundle's
//   pre-processing (Preprocess.cpp) -> the network (Classify.cpp or Dense.cpp) ->
//   post-processing in the bundle's order (Postprocess.cpp) -> volumes on the input grid.

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "lumen/core/Geometry.h"
#include "lumen/core/Result.h"
#include "lumen/core/Volume.h"
#include "lumen/models/Bundle.h"
#include "lumen/models/Inference.h"

namespace lumen::models::pipeline {

using Size3 = std::array<std::int64_t, 3>;

// ---- Spatial steps and their inverses ----
struct Oriented {
  std::array<int, 3> perm;   // new axis t = old axis perm[t]
  std::array<bool, 3> flip;  // along the new axis
};
/// MONAI's Spacing: output voxel j of an axis samples input index j * newSpacing / oldSpacing
/// (voxel centres, the grid anchored at the first voxel); its inverse the other way round.
struct Resampled {
  Size3 oldSize, newSize;
  std::array<double, 3> oldSpacing, newSpacing;
  bool nearest = false;
  bool zeroPadding = false;  // MONAI's padding_mode "zeros"; else "border"
};
struct Cropped {
  Size3 oldSize, start;
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

/// The volume as a float tensor on `device` (one copy), viewed as [1, 1, X, Y, Z].
State toState(const Volume& input, const torch::Device& device);

/// For a 2D network: the plane its slices must be in, from lumen.json "plane" or implied by
/// the bundle's Orientationd. A series acquired in another plane is reformatted (a permute,
/// recorded to be undone); an oblique one further than 30 degrees from it is refused.
Status reformatToPlane(State& s, const Bundle& b, std::vector<std::string>& log);

/// The bundle's pre-processing, in order.
Status preprocess(State& s, const Bundle& b, std::vector<std::string>& log);

/// Undoes the recorded spatial steps (the last first), back to the input's array shape.
/// `nearest`: labels (or Invertd with nearest_interp) are resampled by nearest neighbour.
torch::Tensor undoSpatial(torch::Tensor x, const std::vector<SpatialStep>& steps, bool nearest);
torch::Tensor undoIntensity(torch::Tensor y, const std::vector<Linear>& steps);

/// Resamples one axis (2, 3 or 4 of [N, C, X, Y, Z]) to `newSize`, output voxel j reading
/// input index j * scale, linear or nearest, with border or zero padding (MONAI Spacing).
torch::Tensor resampleAxis(const torch::Tensor& x, int axis, std::int64_t newSize, double scale, bool nearest,
                           bool zeroPadding);

/// lumen.json slice_evidence: per slice (along the last axis of s.x), the area in mm^2 of
/// tissue in the bundle's range. Computed in the input's units, before pre-processing.
torch::Tensor evidenceAreaMm2(const State& s, const LumenExtras::SliceEvidence& ev);
/// Per slice (along the last axis of s.x, in HU), the water-equivalent diameter in mm
/// (AAPM Report 220), for an estimate's size_reference.
torch::Tensor waterEquivalentDiametersMm(const State& s);

/// RAS affine (4x4, row-major) of a grid: what MONAI calls the image's affine.
std::array<double, 16> rasAffine(const ImageGeometry& g);

// ---- The network ----
struct Network {
  std::function<torch::Tensor(const torch::Tensor&)> forward;  // one pass, float32 out
  std::function<torch::Tensor(const torch::Tensor&)> predict;  // batches, test-time flips
  std::string deviceName;
  bool cuda = false;
};

/// A measured value in words: three significant digits, whole numbers from 1000 on (no
/// exponent: "71500", "13.9", "3").
std::string formatValue(double v);

/// Classification: class probabilities (per slice for a 2D network), saliency on the input
/// grid when asked for. evidence: evidenceAreaMm2 (undefined without slice_evidence);
/// diameters: waterEquivalentDiametersMm (undefined without a size_reference).
Status classify(State& s, const Bundle& b, const Network& net, std::size_t modelDims, const torch::Tensor& evidence,
                const torch::Tensor& diameters, bool saliency, const ImageGeometry& inputGeometry, InferenceResult& res,
                const Progress& progress, const CancelToken& cancel);

/// Segmentation / enhancement: the network over the whole pre-processed input (sliding
/// window or at once); [1, Cout, X, Y, Z] on the pre-processed grid.
Result<torch::Tensor> runDense(const State& s, const Bundle& b, const Network& net, std::size_t modelDims,
                               const SlidingWindowParams& params, const InferenceOptions& options, InferenceResult& res,
                               const Progress& progress, const CancelToken& cancel);

/// The bundle's post-processing in its order, then the result on the input grid:
/// labels (one map, or one mask per channel when a threshold keeps several) or an image
/// in the input's units.
Status postprocessAndPlace(torch::Tensor y, const State& s, const Bundle& b, const ImageGeometry& inputGeometry,
                           InferenceResult& res, bool uncertainty = true);

// Post-processing pieces, exposed for tests.
torch::Tensor argmaxChannels(const torch::Tensor& y);
/// What the values of a network output are, as far as the post-processing says.
enum class OutputScale { Logits, Softmax, Sigmoid };
/// Normalised entropy per voxel of y [1, C, X, Y, Z] (see InferenceResult::uncertainty),
/// [1, 1, X, Y, Z] float32, computed one channel at a time (no second C-channel tensor);
/// an undefined tensor when the scale cannot be told (one channel of logits).
torch::Tensor voxelEntropy(const torch::Tensor& y, OutputScale scale);
/// MONAI KeepLargestConnectedComponent on a label map [X, Y, Z].
void keepLargestComponents(torch::Tensor& labels, const KeepLargestComponentT& k);

}  // namespace lumen::models::pipeline
