#pragma once
// Editing a label map on the series grid: brush and eraser (sphere or disc, size in mm,
// optionally limited to an intensity range), threshold, fill holes, keep the largest
// island or remove small ones, logical operations with a mask, clearing outside a box,
// with undo/redo over every change. Undo keeps only the 16x16x16 blocks an edit
// changed, run-length coded, so a brush stroke costs kilobytes, not a volume.
//
// Labels are exclusive (one label per voxel), uint8: up to 255 labels, as ITK-SNAP.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lumen/core/Math.h"
#include "lumen/core/Result.h"
#include "lumen/core/Volume.h"

namespace lumen {

/// A coded concept (DICOM code sequence item): e.g. ("10200004", "SCT", "Liver").
struct CodedConcept {
  std::string value, scheme, meaning;
  bool empty() const { return value.empty(); }
};

/// What a label is: its name, colour and, for DICOM SEG, category and type codes.
struct LabelInfo {
  int value = 1;  // 1..255
  std::string name;
  Rgb8 color{255, 0, 0};
  double opacity = 1.0;  // relative to the overlay opacity
  bool visible = true;
  CodedConcept category, type;
};

/// The colour a label gets until the user picks one: distinct and readable on grey.
Rgb8 defaultLabelColor(int value);

/// A few SNOMED CT categories and types a reader picks from (DICOM PS3.16 CID 7150 / 7151 / 7166).
const std::vector<std::pair<CodedConcept, CodedConcept>>& commonLabelCodes();

/// Inclusive voxel index box.
struct IndexBox {
  std::array<long, 3> lo{0, 0, 0}, hi{-1, -1, -1};
  bool empty() const { return hi[0] < lo[0] || hi[1] < lo[1] || hi[2] < lo[2]; }
  std::size_t voxels() const;
  static IndexBox of(const ImageGeometry& g);  // the whole grid
  IndexBox intersected(const IndexBox& o) const;
  void include(const IndexBox& o);
};

struct IntensityRange {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool contains(double v) const { return v >= lo && v <= hi; }
};

struct Brush {
  double diameterMm = 10.0;
  bool sphere = true;  // false: a disc in the plane with normal `normal`, one slice thick
  Vec3 normal{0, 0, 1};
  double thicknessMm = 1.0;  // disc: voxels within half of this from the plane
};

/// The voxels face-connected to `seed` whose values lie in `range`: the region ITK's
/// ConnectedThresholdImageFilter grows (tested equal to it), by a scanline flood fill, an
/// order of magnitude faster. `mask` gets 1 there (resized to the image); `box` holds them.
/// Empty when the seed is outside the image or its value outside the range.
void connectedRegion(const Volume& image, const std::array<long, 3>& seed, IntensityRange range,
                     std::vector<std::uint8_t>& mask, IndexBox& box);

/// Per-label measures: what the editor shows live and the reports export.
struct LabelMeasures {
  int label = 0;
  std::size_t voxels = 0;
  double volumeMl = 0.0;
  double mean = std::numeric_limits<double>::quiet_NaN();  // of the image under the label
  double sd = std::numeric_limits<double>::quiet_NaN();    // sample SD
  /// Area (mm^2) of the voxel faces between the label and anything else (another label,
  /// background, the edge of the grid): the surface of the voxelised shape. It exceeds a
  /// smooth surface's area (by up to ~1.5x for a sphere); comparable between labels and edits.
  double surfaceMm2 = 0.0;
};
/// Measures of every label present, ascending. `image` (may be null) on the same grid.
std::vector<LabelMeasures> measureLabels(const Volume& labels, const Volume* image);

class LabelEditor {
 public:
  /// Edits `labels` (uint8, the series grid) in place. `maxUndoBytes` bounds the history;
  /// the oldest steps go first.
  explicit LabelEditor(std::shared_ptr<Volume> labels, std::size_t maxUndoBytes = 256u << 20);
  /// A zero label map on `image`'s grid.
  static Result<std::shared_ptr<Volume>> emptyLabelsFor(const Volume& image);
  /// The same voxels as uint8 labels: fails when a value is not an integer in 0..255.
  static Result<std::shared_ptr<Volume>> toEditable(const Volume& labels);

  const std::shared_ptr<Volume>& labels() const { return labels_; }

  /// What an edit changed: voxels and the box that holds them (to redraw). Undo and redo
  /// give the box only.
  struct Change {
    std::size_t voxels = 0;
    IndexBox box;
  };

  // ---- steps: everything between begin and end is one undo step (a brush stroke) ------
  void beginStep(std::string name);
  Change endStep();
  bool inStep() const { return open_ != nullptr; }

  // ---- tools (each is one step unless a step is open) --------------------------------
  /// Sets voxels in the brush to `label` (0 erases everything in it). With `image`, only
  /// voxels whose value is in `range`. `overwrite` false: only background voxels change.
  Change paint(const Brush& brush, const Vec3& centreLps, int label, const Volume* image = nullptr,
               IntensityRange range = {}, bool overwrite = true);
  /// Erases `label` (all labels when < 0) inside the brush.
  Change erase(const Brush& brush, const Vec3& centreLps, int label);
  /// Voxels whose image value is in range become `label` (inside `within`, if given).
  Change threshold(const Volume& image, IntensityRange range, int label, const IndexBox* within = nullptr,
                   bool overwrite = true);
  /// Background voxels enclosed by `label` become `label`: in 3D, or in each slice
  /// across index axis `sliceAxis` (0, 1, 2) when it is >= 0.
  Change fillHoles(int label, int sliceAxis = -1);
  /// Keeps only the largest face-connected part of `label`.
  Change keepLargestIsland(int label);
  /// Removes the face-connected parts of `label` smaller than `minVoxels`.
  Change removeSmallIslands(int label, std::size_t minVoxels);
  enum class LogicalOp { Union, Intersect, Subtract };
  /// `label` combined with the voxels where `mask` (same grid) equals `maskLabel` (any
  /// non-zero value when `maskLabel` < 0): union adds them (over background only unless
  /// `overwrite`), intersect keeps only those, subtract removes them.
  Change combine(int label, LogicalOp op, const Volume& mask, int maskLabel, bool overwrite = false);
  /// `label` (all labels when < 0) cleared outside `box`. The grid keeps its size.
  Change clearOutside(const IndexBox& box, int label);
  /// Replaces `from` by `to` everywhere (merging two labels, or deleting one with to = 0).
  Change relabel(int from, int to);
  /// Any edit on a box: `fn` writes voxels inside `box` only. For tools built elsewhere
  /// (region growing, interpolation, smoothing in imaging/).
  Change edit(const std::string& name, const IndexBox& box, const std::function<void(Volume&)>& fn);

  // ---- history ---------------------------------------------------------------------
  bool canUndo() const { return !undo_.empty(); }
  bool canRedo() const { return !redo_.empty(); }
  Change undo();
  Change redo();
  std::string undoName() const { return undo_.empty() ? std::string() : undo_.back().name; }
  std::size_t undoSteps() const { return undo_.size(); }
  /// Bytes the history holds (both directions).
  std::size_t historyBytes() const { return bytes_; }
  /// Changes with every edit, undo and redo.
  std::uint64_t revision() const { return revision_; }

  static constexpr long kBlock = 16;

 private:
  struct BlockRecord {
    std::size_t index = 0;
    std::vector<std::uint8_t> before, after;  // run-length coded contents
  };
  struct Step {
    std::string name;
    std::vector<BlockRecord> blocks;
    std::size_t bytes = 0;
  };
  struct OpenStep {
    std::string name;
    std::map<std::size_t, std::vector<std::uint8_t>> before;
    bool implicit = false;
  };
  void touch(const IndexBox& box);
  Change apply(Step& step, bool forward);
  Change step(std::vector<Step>& from, std::vector<Step>& to, bool forward);
  IndexBox blockBox(std::size_t index) const;
  std::vector<std::uint8_t> encodeBlock(std::size_t index) const;
  void decodeBlock(std::size_t index, const std::vector<std::uint8_t>& rle);
  bool implicitBegin(const char* name);
  Change implicitEnd(bool began);
  void trim();

  std::shared_ptr<Volume> labels_;
  std::array<long, 3> blocks_{};  // blocks per axis
  std::unique_ptr<OpenStep> open_;
  std::vector<Step> undo_, redo_;
  std::size_t bytes_ = 0, maxBytes_;
  std::uint64_t revision_ = 0;
};

}  // namespace lumen
