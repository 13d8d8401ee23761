#pragma once
// The logic of the viewer without Qt or VTK: view planes and their orientation labels,
// slice navigation, window/level presets, corner annotations. Widgets only bind to this,
// and tests check it without a window.

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "lumen/core/Geometry.h"
#include "lumen/core/LabelEditor.h"
#include "lumen/core/Metadata.h"
#include "lumen/core/Volume.h"

namespace lumen::dicom {
struct SegReference;  // lumen/imaging/DicomSeg.h
}

namespace lumen::gui {

/// A loaded series as the viewer holds it: voxels, where they came from, value range.
struct LoadedSeries {
  std::shared_ptr<Volume> volume;
  VolumeInfo info;
  std::string source;  // file or folder it was read from
  double minValue = 0.0, maxValue = 0.0;
  /// 0.5th / 99.5th percentile of the voxels that are not background (the minimum, when it
  /// fills much of the volume: air, padding), for the automatic window.
  double lowPercentile = 0.0, highPercentile = 1.0;
  bool hasStatistics = false;  // the values above describe the data
  /// False while the loader is still filling the voxels, or while the series is still
  /// arriving from a retrieve or at the listener (a viewer may show it; nothing may
  /// compute on it).
  bool complete = true;
  /// Made in the workstation from another series (an enhancement result): it shares that
  /// series' identity but is never that series reloaded.
  bool derived = false;
  /// A DICOM series: the source instances of each slice, what a DICOM SEG of it references
  /// (null for NIfTI / NRRD images).
  std::shared_ptr<const dicom::SegReference> segReference;

  bool isColor() const { return volume && volume->pixelType() == PixelType::RGB8; }
  bool isCt() const { return info.series.modality == "CT"; }
};

/// Computes value range and percentiles (on a subsample) once after loading.
void computeStatistics(LoadedSeries& s);
/// The same from slice k alone (the first slice a loader decodes), for the first picture.
void computeSliceStatistics(LoadedSeries& s, std::size_t k);

/// Native: the plane the slices were acquired in (rows and columns as stored), which is
/// how 2D reading starts; the others are patient planes (MPR).
enum class Plane { Axial, Coronal, Sagittal, Native };
const char* toString(Plane p);

/// Screen axes of a view in LPS: `normal` points from the viewer into the screen.
struct PlaneAxes {
  Vec3 normal;
  Vec3 right;
  Vec3 up;
};

/// Radiological conventions: axial seen from the feet (patient's left on screen right,
/// anterior up), coronal seen from the front (left on the right, superior up), sagittal
/// seen from the patient's left (anterior on the left, superior up). `frame`'s columns
/// are the (possibly rotated, for oblique MPR) L, P and S axes.
PlaneAxes planeAxes(Plane p, const Mat3& frame = Mat3::identity());

/// Axes of the acquisition plane, turned and flipped in steps of 90 degrees into the
/// radiological convention of the nearest standard plane. Display-ready DICOM (axial rows
/// running anterior to posterior, coronal and sagittal superior to inferior) keeps its stored
/// orientation; a volume stored in another order (a NIfTI file's RAS rows put the feet at
/// the top of a coronal slice) is shown the way a reader expects, not upside down.
PlaneAxes nativeAxes(const ImageGeometry& g);
/// "Axial", "Coronal", "Sagittal" or "Oblique" for a view normal.
std::string planeName(const Vec3& normal);

/// Patient-direction label of a unit vector: the letters (L/R, P/A, S/I) of its
/// components, strongest first, e.g. "L" for an axis-aligned direction, "LA" for an
/// oblique one. Components under ~15 degrees are left out.
std::string orientationLabel(const Vec3& lps);

/// The four edge labels of a view: left, right, top, bottom.
std::array<std::string, 4> edgeLabels(const PlaneAxes& axes);

/// Slice position of a view through a volume.
class SliceNavigator {
 public:
  void reset(const ImageGeometry& g, const PlaneAxes& axes);
  void setAxes(const PlaneAxes& axes);  // keeps the focal point
  const PlaneAxes& axes() const { return axes_; }

  /// Distance between slices along the view normal (the voxel size in that direction).
  double stepMm() const { return step_; }
  int sliceCount() const { return count_; }
  /// 0 .. sliceCount()-1, along the normal.
  int sliceIndex() const;
  void setSliceIndex(int k);
  void scroll(int steps);

  const Vec3& focal() const { return focal_; }
  /// Moves the focal point; along the normal it snaps to the slice grid.
  void setFocal(const Vec3& lps);
  /// Position of the current slice along the normal, mm (for annotations).
  double positionMm() const { return focal_.dot(axes_.normal); }

 private:
  void updateExtent();
  ImageGeometry geometry_;
  PlaneAxes axes_;
  Vec3 focal_;
  double step_ = 1.0, lo_ = 0.0;
  int count_ = 1;
};

struct WindowLevel {
  double center = 40.0;
  double width = 400.0;
};

struct WindowPresetDef {
  const char* name;
  WindowLevel wl;
  const char* shortcut;
};

/// CT presets in HU (center / width).
const std::vector<WindowPresetDef>& ctWindowPresets();
/// Preset by case-insensitive name ("brain", "lung", ...); false when unknown.
bool findWindowPreset(const std::string& name, WindowLevel& out);
/// The window a reader expects first: the header's when it is usable (positive width, and
/// it overlaps the data), else the CT soft-tissue preset for a CT in HU, else one computed
/// from the data (percentiles of the non-background voxels).
WindowLevel defaultWindow(const LoadedSeries& s);
WindowLevel automaticWindow(const LoadedSeries& s);

struct CornerText {
  std::string topLeft, topRight, bottomLeft, bottomRight;
};

struct AnnotationInput {
  const LoadedSeries* series = nullptr;
  int sliceIndex = 0, sliceCount = 1;
  double positionMm = 0.0;
  WindowLevel wl;
  double zoomPercent = 100.0;
  bool hidePatient = false;
  std::string probe;      // value under the cursor, "" when outside
  std::string slabText;   // "MIP 10 mm" etc., "" for a plain slice
  std::string viewName;   // "Axial", ...
};
CornerText cornerText(const AnnotationInput& in);

/// "HU 35 at (12.3, -40.0, 1200.5) mm" style probe text; "" outside the volume.
std::string probeText(const LoadedSeries& s, const Vec3& lps);

/// A label map shown over the image: which labels, their colours and visibility.
struct LabelEntry {
  int value = 0;
  std::string name;
  Rgb8 color{255, 0, 0};
  bool visible = true;
  CodedConcept category, type;  // for DICOM SEG; empty when not chosen
  double opacity = 1.0;         // this label's, times the overlay's
};
/// The model that made a label map (empty for one drawn or loaded by the reader): a DICOM
/// SEG of it names the model as its algorithm.
struct LabelProvenance {
  std::string model, version, sha256;
};

struct LabelOverlay {
  std::shared_ptr<Volume> labels;  // integer voxels on their own grid (LPS)
  std::vector<LabelEntry> entries;  // every non-zero value present
  double opacity = 0.45;
  std::string source;
  LabelProvenance provenance;
};
/// Finds the labels present and gives them distinct colours. Fails for non-integer or
/// colour images, and for maps with more than 1000 distinct labels.
Result<LabelOverlay> makeLabelOverlay(std::shared_ptr<Volume> labels, std::string source);
/// A label's description as files and the editor keep it (LabelInfo), and as shown.
LabelInfo toLabelInfo(const LabelEntry& e);
std::vector<LabelInfo> labelInfosOf(const LabelOverlay& o);
/// Gives the overlay's labels these descriptions (described labels without voxels get a
/// row too), sorted by value.
void applyLabelInfos(LabelOverlay& o, const std::vector<LabelInfo>& infos);
/// Colour of label `value` in Lumen's palette (stable: the same value, the same colour).
Rgb8 labelColor(int value);

/// Length of a scale bar (mm) that is "round" (1, 2, 5 x 10^n) and close to `maxMm`.
double niceScaleLength(double maxMm);

}  // namespace lumen::gui
