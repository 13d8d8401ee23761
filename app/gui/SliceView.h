#pragma once
// A 2D viewport: one plane through a volume (axial, coronal, sagittal, possibly rotated
// for oblique MPR), with window/level, zoom, pan, slab (MIP/MinIP/mean), label overlay,
// corner annotations, orientation markers, scale bar, value probe and MPR crosshair.
// Navigation logic lives in ViewModel (SliceNavigator); this class binds it to VTK.

#include <QPointer>

#include <memory>
#include <string>
#include <vector>

#include <vtkSmartPointer.h>

#include "ViewModel.h"
#include "VtkImage.h"
#include "lumen/core/Measurement.h"
#include "VtkWidget.h"

class vtkActor2D;
class vtkCornerAnnotation;
class vtkImageProperty;
class vtkImageResliceMapper;
class vtkImageSlice;
class vtkImageStack;
class vtkLookupTable;
class vtkPoints;
class vtkPolyData;
class vtkTextActor;

namespace lumen::gui {

enum class SlabMode { None, Max, Min, Mean };

/// What the left mouse button draws (None: window/level, or the crosshair in MPR).
enum class MeasureTool { None, Distance, Angle, Ellipse, Rectangle, Polygon, Point };

class MeasurementStore;

/// Label painting with the left button (the segment editor's tools).
enum class PaintTool { None, Brush, Eraser, Grow };
/// One event of a paint stroke, in LPS, with the plane it happens in.
struct PaintEvent {
  enum class Phase { Begin, Move, End } phase = Phase::Begin;
  Vec3 lps;
  Vec3 normal;
  double sliceStepMm = 1.0;
};

class SliceView : public VtkWidget {
  Q_OBJECT
 public:
  explicit SliceView(QWidget* parent = nullptr);
  ~SliceView() override;

  void setSeries(std::shared_ptr<LoadedSeries> series, Plane plane);
  /// The same series, completely loaded (or with statistics): keeps slice, zoom and window.
  /// On another grid the view starts afresh, unless `keepView` (the same series with more
  /// slices, as a retrieve brings them): then the slice position, zoom, pan, window and
  /// inversion stay where the reader left them.
  void replaceSeries(std::shared_ptr<LoadedSeries> series, bool keepView = false);
  void clear();
  const std::shared_ptr<LoadedSeries>& series() const { return series_; }
  bool hasSeries() const { return series_ != nullptr; }

  void setPlane(Plane plane);
  Plane plane() const { return plane_; }
  /// Oblique MPR: this view's own (rotated) screen axes; the focal point is kept.
  void setAxes(const PlaneAxes& axes);

  SliceNavigator& navigator() { return nav_; }
  void scrollBy(int steps);
  void setSliceIndex(int k);
  int sliceIndex() const { return nav_.sliceIndex(); }
  int sliceCount() const { return nav_.sliceCount(); }

  void setWindowLevel(const WindowLevel& wl);
  const WindowLevel& windowLevel() const { return wl_; }
  void setInverted(bool on);
  bool inverted() const { return inverted_; }
  void setSlab(SlabMode mode, double thicknessMm);
  void setHidePatient(bool hide);

  /// Fit the whole slice in the viewport; reset also restores window, zoom and slice.
  void fit();
  void reset();
  void zoomBy(double factor);
  double zoomPercent() const;

  /// MPR crosshair: a point in LPS shown as two lines, drawn in the colours of the other
  /// two planes. Moving it also moves this view's slice to contain it.
  void setCrosshair(const Vec3& lps, bool visible);
  /// The two lines are the intersections with the other MPR planes: their directions
  /// (in LPS, in this view's plane) and colours.
  void setCrosshairLines(const Vec3& dir0, const Rgb8& color0, const Vec3& dir1, const Rgb8& color1);
  void setMprInteraction(bool on) { mpr_ = on; }

  void setOverlay(std::shared_ptr<LabelOverlay> overlay);
  const std::shared_ptr<LabelOverlay>& overlay() const { return overlay_; }
  /// Re-reads visibility / opacity / colours of the overlay.
  void updateOverlayAppearance();

  /// LPS point under a widget position (on the current slice plane).
  Vec3 worldAt(const QPointF& widgetPos) const;
  /// Widget position of an LPS point.
  QPointF widgetPos(const Vec3& lps) const;

  /// Text currently shown in the corners and at the edges (tests, accessibility).
  CornerText cornerTexts() const { return corners_; }
  std::array<std::string, 4> edgeTexts() const { return edges_; }

  /// Voxels changed (progressive loading).
  void voxelsChanged();

  // Measurements (see MeasurementStore): drawn where the slice contains them; the left
  // button draws with the current tool; handles of a shown measurement are dragged to edit
  // it, its outline to move it; Delete removes the selected one, Escape cancels a drawing.
  void setMeasurementStore(MeasurementStore* store);
  void setMeasureTool(MeasureTool tool);
  /// Paint tools take the left button from the measuring tools; the brush shows as a
  /// circle of its size under the mouse.
  void setPaintTool(PaintTool tool, double diameterMm);
  PaintTool paintTool() const { return paint_; }
  /// The label voxels changed (painting): redraw the overlay.
  void overlayVoxelsChanged();
  MeasureTool measureTool() const { return tool_; }
  int selectedMeasurement() const { return selected_; }
  void selectMeasurement(int id);
  /// Moves to the slice (and, when this plane does not contain it, the plane it was drawn
  /// in) of a measurement, centred.
  void showPlaneOf(const Measurement& m);
  /// Re-reads the measurements (the store changed).
  void measurementsChanged();
  /// The measurements this view shows now and their labels (tests, accessibility).
  struct ShownMeasurement {
    int id;
    std::string text;
  };
  std::vector<ShownMeasurement> shownMeasurements() const { return shown_; }

 signals:
  void windowLevelChanged(const lumen::gui::WindowLevel& wl);
  void sliceChanged(int index);
  void crosshairMoved(const lumen::Vec3& lps);
  /// Ctrl-drag: rotate the MPR axes about this view's normal by `radians`.
  void rotateAxes(double radians, lumen::gui::Plane plane);
  void activated(lumen::gui::SliceView* view);
  /// A measurement was selected in this view (-1: none).
  void measurementSelected(int id);
  /// Painting with a paint tool.
  void paintStroke(const lumen::gui::PaintEvent& e);

 protected:
  void mousePressEvent(QMouseEvent* e) override;
  void mouseMoveEvent(QMouseEvent* e) override;
  void mouseReleaseEvent(QMouseEvent* e) override;
  void wheelEvent(QWheelEvent* e) override;
  void keyPressEvent(QKeyEvent* e) override;
  void mouseDoubleClickEvent(QMouseEvent* e) override;
  void resizeGL(int w, int h) override;
  void leaveEvent(QEvent* e) override;

 private:
  void buildPipeline();
  void updateCamera();
  void updateAnnotations();
  void updateCrosshair();
  void updateScaleBar();
  void updateWindowLevelProperty();
  double mmPerPixel() const;
  void updateMeasurements();
  bool measurementPress(QMouseEvent* e);
  PaintEvent makePaintEvent(PaintEvent::Phase phase, const QPointF& p) const;
  void commitDraft();
  void cancelDraft();
  /// Ends whatever the mouse was doing (a drawing, a handle drag, a paint stroke): the
  /// series changes under it.
  void resetInteraction();
  int hitHandle(const QPointF& p, int* handle) const;
  int hitOutline(const QPointF& p) const;

  std::shared_ptr<LoadedSeries> series_;
  std::shared_ptr<LabelOverlay> overlay_;
  VtkImage vtkImage_, vtkOverlay_;
  Plane plane_ = Plane::Axial;
  Vec3 crossDirs_[2] = {{1, 0, 0}, {0, 1, 0}};
  bool crossDirsSet_ = false;
  SliceNavigator nav_;
  WindowLevel wl_;
  bool windowChosen_ = false;  // set by setWindowLevel; reset with the view
  bool inverted_ = false;
  bool hidePatient_ = false;
  bool mpr_ = false;
  SlabMode slabMode_ = SlabMode::None;
  double slabMm_ = 0.0;
  double scale_ = 100.0;  // camera parallel scale: half the viewport height, mm
  Vec3 pan_;              // in-plane offset of the view centre from the focal point
  bool crosshairVisible_ = false;
  Vec3 crosshair_;
  std::string probe_;
  CornerText corners_;
  std::array<std::string, 4> edges_;

  // Interaction
  enum class Drag { None, WindowLevel, Pan, Zoom, Rotate, Click, Draw, Freehand, Handle, Move };
  Drag drag_ = Drag::None;
  QPointF pressPos_, lastPos_;
  WindowLevel pressWl_;

  vtkSmartPointer<vtkImageStack> stack_;
  vtkSmartPointer<vtkImageSlice> slice_, overlaySlice_;
  vtkSmartPointer<vtkImageResliceMapper> mapper_, overlayMapper_;
  vtkSmartPointer<vtkImageProperty> property_, overlayProperty_;
  vtkSmartPointer<vtkLookupTable> invertLut_, overlayLut_;
  vtkSmartPointer<vtkCornerAnnotation> cornerActor_;
  vtkSmartPointer<vtkTextActor> edgeActors_[4];
  vtkSmartPointer<vtkActor2D> crossActors_[2];
  vtkSmartPointer<vtkPoints> crossPoints_[2];
  vtkSmartPointer<vtkActor2D> scaleActor_;
  vtkSmartPointer<vtkPoints> scalePoints_;
  vtkSmartPointer<vtkTextActor> scaleText_;
  vtkSmartPointer<vtkTextActor> emptyText_;

  // Measurements
  MeasurementStore* store_ = nullptr;
  MeasureTool tool_ = MeasureTool::None;
  int selected_ = -1;
  std::vector<ShownMeasurement> shown_;
  bool drafting_ = false;  // an angle or polygon being clicked point by point
  int fixedPoints_ = 0;
  Measurement draft_;
  int editId_ = -1, editHandle_ = -1;
  Measurement edited_;  // the measurement being dragged (committed on release)
  Vec3 pressWorld_;
  vtkSmartPointer<vtkPolyData> measureLines_, selectedLines_;
  vtkSmartPointer<vtkActor2D> measureActor_, selectedActor_;
  std::vector<vtkSmartPointer<vtkTextActor>> measureText_;
  PaintTool paint_ = PaintTool::None;
  double brushMm_ = 10.0;
  bool painting_ = false;
  bool cursorInside_ = false;
  Vec3 cursor_;
};

}  // namespace lumen::gui
