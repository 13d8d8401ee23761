#pragma once
// In-process inference of a MONAI bundle on a Lumen volume, on CUDA or the CPU:
//   volume -> one tensor on the device -> orientation / spacing / intensity / crop
//   (tensor operations, recorded to be inverted) -> sliding-window or whole-input
//   inference -> activation / argmax / threshold / largest component -> back onto the
//   input grid (Invertd) -> one copy back into a Volume with the input's geometry.

#include <array>
#include <map>
#include <memory>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "lumen/core/Progress.h"
#include "lumen/core/Result.h"
#include "lumen/core/Volume.h"
#include "lumen/models/Bundle.h"
#include "lumen/models/Device.h"
#include "lumen/models/SlidingWindow.h"

namespace lumen::models {

enum class Precision { Float32, Float16, BFloat16 };

struct InferenceOptions {
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  int threads = 0;              // CPU intra-op threads (0: LibTorch's default)
  // Overrides of the bundle's inferer (empty: the bundle's).
  std::vector<int> roiSize;
  std::optional<double> overlap;
  std::optional<int> swBatchSize;
  std::optional<BlendMode> blend;
  /// Reduced precision on CUDA (weights and inputs cast); ignored on the CPU.
  Precision precision = Precision::Float32;
  /// Test-time augmentation: the average over the unflipped input and a flip along each
  /// spatial axis.
  bool testTimeFlips = false;
  /// Classification: compute the gradient x input saliency map.
  bool saliency = true;
  /// Segmentation: compute the voxel uncertainty map (InferenceResult::uncertainty).
  bool uncertainty = true;
  SlidingWindowOptions memory;
  /// A bundle is code (TorchScript runs inside Lumen). It is loaded only when the SHA-256 of
  /// the bytes read from models/model.ts is one of these (the pins of the shipped bundles,
  /// the user's trusted list), or when `trustThisModel` says the user trusted it for this
  /// run (lumen-cli infer --trust).
  std::set<std::string> trustedSha256;
  bool trustThisModel = false;
};

struct InferenceResult {
  Task task = Task::Segmentation;
  /// Segmentation: labels (uint8, int16 past 255); enhancement: float32 in the input's
  /// units. Always on the input volume's grid. Empty for classification.
  Volume output;
  /// Classification: class probabilities (mean over slices for a 2D classifier run on a
  /// volume, whose per-slice values are in `sliceProbabilities`; slices the bundle's
  /// slice_evidence leaves ungraded do not count).
  std::vector<double> probabilities;
  std::vector<std::string> classNames;
  /// One row per input slice; empty for a slice that was not graded.
  std::vector<std::vector<double>> sliceProbabilities;
  /// Classification with a bundle "estimate" (lumen.json): the measured quantity.
  struct Estimate {
    std::string name, unit;
    /// The series' value: over the graded slices, the geometric mean for an estimate the
    /// network gives as a log, else the mean.
    double value = 0.0;
    double lo = 0.0, hi = 0.0;  // the range the model knows
    /// One per input slice; NaN for a slice that was not graded.
    std::vector<double> slices;
    /// With the bundle's size_reference: the estimate referred to a body of the reference
    /// water-equivalent diameter, which the classes grade (value: the geometric mean over
    /// the graded slices; slices: NaN where not graded), and each input slice's diameter.
    struct Referred {
      double diameterMm = 0.0;
      double value = 0.0;
      std::vector<double> slices;
      std::vector<double> sliceDiametersMm;
    };
    std::optional<Referred> referred;
    bool inRange() const { return value >= lo && value <= hi; }
  };
  std::optional<Estimate> estimate;
  /// With the estimate's class_edges: the bin the series' estimate lies in (referred to the
  /// reference size where the bundle has a size_reference; -1: none).
  int estimateClass = -1;
  /// Why the series has no class although the model ran (the estimate lies outside the
  /// range the model knows); predictedClass() is then -1. Empty: graded.
  std::string notGraded;
  /// Classification: |gradient x input| for the winning class (for a model with an
  /// estimate: of the estimate), on the input grid, 0..1.
  Volume saliency;
  /// Segmentation whose post-processing keeps several channels (a threshold without argmax:
  /// regions that may overlap): one 0/1 mask per channel on the input grid. `output` then
  /// shows, at each voxel, the smallest region that holds it (label c + 1 for channel c).
  std::vector<Volume> channelMasks;
  /// Segmentation: how unsure the network is at each voxel, on the input grid, 0..1: the
  /// entropy of its class probabilities divided by log(classes) (softmax, or the softmax
  /// the logits imply before an argmax), or the binary entropy of sigmoid outputs averaged
  /// over channels. Float32; empty when not asked for, or when the output's scale is
  /// unknown (a threshold on values that went through neither softmax nor sigmoid).
  Volume uncertainty;
  /// Mean of `uncertainty` over the voxels of each label of `output` (or of each channel
  /// mask, as label c + 1), background (0) included.
  std::map<int, double> labelUncertainty;
  /// Names of the label values in `output` (background left out).
  std::map<int, std::string> labelNames;
  /// The grid the network saw (after pre-processing): size and RAS affine (row-major 4x4),
  /// to compare with MONAI's.
  std::array<std::size_t, 3> modelGridSize{};
  std::array<double, 16> modelGridAffine{};
  // Provenance: sha256 is of the model bytes actually loaded.
  std::string model, version, sha256, device;
  std::vector<std::string> log;
  double seconds = 0.0;
  double forwardSeconds = 0.0;
  int windows = 0;

  /// The class with the highest probability (with class edges: the bin of the series'
  /// estimate); -1 when not graded.
  int predictedClass() const;
};

/// A loaded model, ready to run on volumes (loading TorchScript is the slow part).
class Engine {
 public:
  static Result<Engine> load(const Bundle& bundle, const InferenceOptions& options);
  Result<InferenceResult> run(const Volume& input, const Progress& progress = {}, const CancelToken& cancel = {});
  const DeviceChoice& device() const;
  const Bundle& bundle() const;
  /// SHA-256 of the model bytes that were loaded (and trusted).
  const std::string& sha256() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

/// An enhancement result in the input's pixel type: integer types (HU as int16, ...)
/// rounded and clamped, so that it reads like the series it came from; float and
/// segmentation outputs unchanged.
Result<Volume> inInputType(Volume output, Task task, PixelType inputType);

/// A classification's words beyond its class, for reports and displays: the estimate
/// ("noise SD 13.9 HU", with a size_reference "noise SD 13.9 HU; 12.1 HU referred to a
/// water-equivalent diameter of 160 mm"), or why there is no class ("not graded: outside
/// the range ...").
/// Empty for a plain classifier.
std::string classificationDetail(const InferenceResult& result);

/// Loads and runs once.
Result<InferenceResult> runInference(const Bundle& bundle, const Volume& input, const InferenceOptions& options,
                                     const Progress& progress = {}, const CancelToken& cancel = {});

}  // namespace lumen::models
