#pragma once
// Measurements a reader draws on a view: distance, angle, ellipse / rectangle / polygon
// ROI and point annotation. Points are LPS millimetres, so a measurement means the same
// in every view and on anisotropic or oblique grids; the view only supplies the plane
// (its in-plane axes) it was drawn in. Headless: the viewer draws and edits these, tests
// and the exporters compute with them.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "lumen/core/Math.h"
#include "lumen/core/Result.h"
#include "lumen/core/Volume.h"

namespace lumen {

enum class MeasurementKind { Distance, Angle, Ellipse, Rectangle, Polygon, Point };
/// "distance", "angle", "ellipse", "rectangle", "polygon", "point".
const char* toString(MeasurementKind k);
bool parseMeasurementKind(const std::string& s, MeasurementKind& out);
/// True for the kinds that enclose an area (ellipse, rectangle, polygon).
bool isRoi(MeasurementKind k);

struct Measurement {
  int id = 0;  // unique within its list, assigned by MeasurementList::add
  MeasurementKind kind = MeasurementKind::Distance;
  /// LPS mm. Distance: the two ends. Angle: three points, the vertex second. Ellipse and
  /// rectangle: two opposite corners of the bounding box, whose sides run along `right`
  /// and `up`. Polygon: three or more vertices. Point: one.
  std::vector<Vec3> points;
  /// In-plane axes (unit, orthogonal, LPS) of the view it was drawn in; the plane's
  /// normal is right x up and it passes through points[0].
  Vec3 right{1, 0, 0}, up{0, 1, 0};
  std::string text;  // the reader's label (a point annotation's text)

  Vec3 normal() const { return right.cross(up); }
};

/// Checks the point count for the kind, finite coordinates, orthonormal axes and, for
/// ROIs, points in one plane (within 0.01 mm). The message names the problem.
Status validate(const Measurement& m);

/// Length of a distance (mm); 0 for other kinds.
double lengthMm(const Measurement& m);
/// Angle at the vertex (degrees, 0..180); 0 for other kinds.
double angleDeg(const Measurement& m);
/// Enclosed area (mm^2): exact for ellipse and rectangle, shoelace for polygons; 0 else.
double areaMm2(const Measurement& m);

/// The shape as a polyline in LPS for drawing and hit tests (closed shapes repeat their
/// first point at the end). Ellipses use `segments` points.
std::vector<Vec3> outline(const Measurement& m, int segments = 72);
/// Points the reader can drag: ends, vertices, the four corners of an ellipse or rectangle.
std::vector<Vec3> handles(const Measurement& m);
/// The measurement with handle `h` moved to `to` (projected into its plane for ROIs; an
/// ellipse or rectangle keeps the opposite corner).
Measurement moveHandle(const Measurement& m, int h, const Vec3& to);
/// The whole measurement moved by `delta`.
Measurement translated(const Measurement& m, const Vec3& delta);
/// Centre of the points (where a list jumps to).
Vec3 centroid(const Measurement& m);

/// True when the whole shape lies within `toleranceMm` of the plane through `point` with
/// unit `normal`: the views that show it.
bool liesInPlane(const Measurement& m, const Vec3& point, const Vec3& normal, double toleranceMm);

struct RoiStatistics {
  double areaMm2 = 0.0;
  std::size_t samples = 0;  // voxels (or plane samples) inside the ROI and the image
  double mean = std::numeric_limits<double>::quiet_NaN();
  double sd = std::numeric_limits<double>::quiet_NaN();  // sample SD (n - 1); 0 for one sample
  double min = std::numeric_limits<double>::quiet_NaN();
  double max = std::numeric_limits<double>::quiet_NaN();
  /// True when the plane is a slice of the grid through voxel centres and the statistics
  /// are over the voxels whose centres lie inside; false when the plane cuts the grid
  /// obliquely and they are over trilinear samples on a square grid at the finest spacing.
  bool onVoxels = false;
};

/// Intensity statistics of a ROI over `image` (the values as loaded: HU for CT). Fails for
/// kinds that are not ROIs and for colour images; an ROI outside the image has 0 samples
/// and NaN values.
Result<RoiStatistics> roiStatistics(const Measurement& m, const Volume& image);

/// The text for the view and the findings list: "23.4 mm", "87.5°", and for ROIs three
/// lines: "Area 120.3 mm²", "Mean 40.2  SD 3.1", "Min 35  Max 47 HU".
std::string describe(const Measurement& m, const RoiStatistics* stats, const std::string& units);

/// The measurements of one series, with bounded undo/redo over every change. Snapshots
/// of the whole list: measurements are a few hundred bytes each.
class MeasurementList {
 public:
  explicit MeasurementList(std::size_t maxUndo = 200) : maxUndo_(maxUndo) {}

  const std::vector<Measurement>& items() const { return items_; }
  const Measurement* find(int id) const;
  /// Adds `m` with a new id (returned).
  int add(Measurement m);
  /// Replaces the measurement with m.id; false when there is none.
  bool replace(const Measurement& m);
  bool remove(int id);
  void clear();

  bool canUndo() const { return !undo_.empty(); }
  bool canRedo() const { return !redo_.empty(); }
  bool undo();
  bool redo();

  /// A list read back from storage: no history, ids kept.
  void reset(std::vector<Measurement> items);
  /// Changes with every edit, undo and redo (what an autosave compares).
  std::uint64_t revision() const { return revision_; }

 private:
  void remember();
  std::vector<Measurement> items_;
  std::vector<std::vector<Measurement>> undo_, redo_;
  std::size_t maxUndo_;
  int nextId_ = 1;
  std::uint64_t revision_ = 0;
};

}  // namespace lumen
