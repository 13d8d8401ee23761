#pragma once
// MONAI bundles read without Python: configs/metadata.json, configs/inference.json and
// models/model.ts (TorchScript). The common subset of inference.json is interpreted
// declaratively; anything else in the pipeline is a clear error naming the key, never
// silently ignored. Lumen's own additions live in an optional configs/lumen.json.

#include <array>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "lumen/core/Result.h"
#include "lumen/core/Volume.h"

namespace lumen::models {

enum class Task { Segmentation, Classification, Enhancement };
const char* toString(Task t);

struct TensorSpec {
  std::string type = "image";    // metadata "type"
  std::string format;            // "hounsfield", "magnitude", "segmentation", "probabilities"...
  std::string modality;          // "CT", "MR", ... (inputs)
  int numChannels = 1;
  std::vector<int> spatialShape;  // may hold "*" as -1
  std::vector<double> valueRange;
  std::map<int, std::string> channelDef;  // channel / label index -> name
};

// ---- Pre-processing, in order. Each records what it needs to be inverted. ----
// Every option that changes MONAI's result is either implemented as MONAI 1.x documents it
// or refused by loadBundle with a message naming the key.
struct OrientationT {
  std::string axcodes = "RAS";  // RAS-style letters: the direction each array axis increases
};
struct SpacingT {
  std::vector<double> pixdim;  // mm, three; <= 0 keeps that axis
  /// min_pixdim / max_pixdim: an axis whose spacing already lies in [min, max] (within
  /// MONAI's 1e-3) keeps it. NaN: not given (the range is pixdim itself).
  std::vector<double> minPixdim, maxPixdim;
  std::string mode = "bilinear";   // bilinear | nearest
  std::string padding = "border";  // border | zeros (MONAI's grid_sample padding)
};
struct ScaleIntensityRangeT {
  double aMin = 0, aMax = 1, bMin = 0, bMax = 1;
  bool clip = false;
};
struct NormalizeIntensityT {
  bool nonzero = false;
  bool channelWise = false;
};
struct ScaleIntensityT {
  double minv = 0, maxv = 1;
};
struct CropForegroundT {
  double threshold = 0.0;  // foreground: value > threshold (MONAI's default select_fn)
  int margin = 0;
};
using Transform = std::variant<OrientationT, SpacingT, ScaleIntensityRangeT, NormalizeIntensityT, ScaleIntensityT, CropForegroundT>;

// ---- Inferer ----
enum class BlendMode { Constant, Gaussian };
struct SlidingWindowParams {
  std::vector<int> roiSize;  // spatial
  int swBatchSize = 1;
  double overlap = 0.25;
  BlendMode mode = BlendMode::Constant;
  double sigmaScale = 0.125;
  double padValue = 0.0;
};
struct InfererSpec {
  bool slidingWindow = false;  // false: SimpleInferer (whole input at once)
  SlidingWindowParams window;
};

// ---- Post-processing, in order ----
struct ActivationsT {
  bool softmax = false;
  bool sigmoid = false;
};
struct AsDiscreteT {
  bool argmax = false;
  std::optional<double> threshold;  // value >= threshold, every channel kept
};
struct KeepLargestComponentT {
  std::vector<int> appliedLabels;  // empty: every foreground label
  bool independent = true;         // each label on its own; false: their union as one foreground
  int connectivity = 0;            // 1: faces, 2: + edges, 3 or 0 (MONAI's None): + corners
  int numComponents = 1;           // how many of the largest components to keep
};
struct InvertT {
  bool nearest = true;  // nearest_interp
};
using PostTransform = std::variant<ActivationsT, AsDiscreteT, KeepLargestComponentT, InvertT>;

struct LumenExtras {
  std::optional<Task> task;
  std::string displayName;
  std::map<int, Rgb8> labelColors;
  std::string modalityFilter;  // series the model is meant for ("CT")
  std::string disclaimer;
  /// "suggest": when a classifier predicts one of `whenClasses`, the GUI offers to run
  /// `model` (e.g. the dose grader suggests the denoiser), with `text` as the reason.
  struct Suggestion {
    std::vector<std::string> whenClasses;
    std::string model;
    std::string text;
  };
  std::optional<Suggestion> suggestion;
  /// "slice_evidence" (2D classifiers): a slice is graded only when it shows at least
  /// `minAreaMm2` of tissue in (lo, hi) (input units, e.g. HU), counted where a whole
  /// `neighbourhoodMm` square lies in that range after a `smoothingMm` box mean (so noise
  /// does not break it up; sizes in mm, so the rule is the same at any pixel size). Slices
  /// with less (above the vertex, air) carry nothing the model can read: they are left out
  /// of the series' probabilities instead of voting at random.
  struct SliceEvidence {
    double lo = 0, hi = 0;
    double smoothingMm = 0;
    double neighbourhoodMm = 0;
    double minAreaMm2 = 0;
  };
  std::optional<SliceEvidence> sliceEvidence;
  /// "estimate" (classifiers): the network's last output column is a quantity it measures
  /// (e.g. the noise SD in HU), not a class logit; the classes are the other columns.
  /// `exp`: the column holds the quantity's natural log. `lo`..`hi` ("known_range"): what
  /// the model was trained to read; a series whose estimate lies outside is not graded
  /// ("outside the range the model knows") rather than given a class it would guess.
  /// `classEdges` ("class_edges", ascending, one fewer than the classes): the classes are
  /// bins of the estimate, and the series' class is the bin its estimate lies in (not the
  /// most probable class of its slices' mean probabilities, which could fall as every
  /// slice's estimate rises).
  ///
  /// `sizeReference` ("size_reference": {"diameter_mm", "slope_ln_per_mm", "class_spread"};
  /// an estimate given as a log, with class_edges of equal width in it): at one dose a larger
  /// body is noisier, so a grade of the raw estimate says as much about the slice's size as
  /// about its dose. With it, the classes grade the estimate referred to one body size: each
  /// slice's ln estimate minus slope x (its water-equivalent diameter - diameter_mm; after
  /// AAPM Report 220, from the input's pixels above -500 HU, no body contour). Axial only.
  /// The class probabilities are then the bundle's logistic interval model (bins from
  /// class_edges, one bin width beyond either end; scale class_spread) at the referred
  /// value; Lumen checks that the same model at the raw value gives the network's own class
  /// columns (in probability and log-probability), so that a description far from the
  /// network is refused. The raw estimate is still what is reported and what known_range
  /// checks.
  struct SizeReference {
    double diameterMm = 0;
    double slopePerMm = 0;
    double classSpread = 0;
  };
  struct Estimate {
    std::string name, unit;
    bool exp = false;
    double lo = 0, hi = 0;
    std::vector<double> classEdges;
    std::optional<SizeReference> sizeReference;
  };
  std::optional<Estimate> estimate;
  /// "plane": the patient plane a 2D network was trained on ("axial", "coronal" or
  /// "sagittal"). A series acquired in another plane is reformatted so that the network
  /// sees slices of this plane; a 2D bundle that does not say is refused at run time.
  std::string plane;
};

struct Bundle {
  std::filesystem::path root;
  std::string name, version, description, authors, license;
  TensorSpec input;
  TensorSpec output;
  Task task = Task::Segmentation;
  std::vector<Transform> preprocessing;
  InfererSpec inferer;
  std::vector<PostTransform> postprocessing;
  LumenExtras extras;
  std::filesystem::path modelPath;
  std::string modelSha256;
  std::vector<std::string> notes;  // keys understood as no-ops, for the log

  std::string displayName() const { return extras.displayName.empty() ? name : extras.displayName; }
  /// Label names of a segmentation (from channel_def), background excluded.
  std::map<int, std::string> labels() const;
};

/// Reads and checks a bundle folder. Errors name the file and the key.
Result<Bundle> loadBundle(const std::filesystem::path& dir);

/// Folders searched for bundles: LUMEN_MODEL_PATH entries, the user's model folder
/// ($XDG_DATA_HOME/lumen/models) and the ones shipped with Lumen.
std::vector<std::filesystem::path> modelSearchPath(const std::filesystem::path& shipped);

struct BundleEntry {
  std::filesystem::path dir;
  std::optional<Bundle> bundle;  // empty when it failed to load
  std::string error;
};
/// Every sub-folder of the search path that holds configs/metadata.json.
std::vector<BundleEntry> discoverBundles(const std::vector<std::filesystem::path>& searchPath);

/// A bundle by folder or by name (searched in the search path).
Result<Bundle> findBundle(const std::string& nameOrDir, const std::vector<std::filesystem::path>& searchPath);

}  // namespace lumen::models
