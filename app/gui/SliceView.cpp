#include "SliceView.h"

#include <QKeyEvent>
#include <QLineF>
#include <QMouseEvent>
#include <QWheelEvent>

#include <vtkActor2D.h>
#include <vtkCamera.h>
#include <vtkCellArray.h>
#include <vtkCoordinate.h>
#include <vtkCornerAnnotation.h>
#include <vtkImageData.h>
#include <vtkImageProperty.h>
#include <vtkImageResliceMapper.h>
#include <vtkImageSlice.h>
#include <vtkImageStack.h>
#include <vtkLookupTable.h>
#include <vtkMatrix4x4.h>
#include <vtkPoints.h>
#include <vtkPolyData.h>
#include <vtkPolyDataMapper2D.h>
#include <vtkProperty2D.h>
#include <vtkRenderer.h>
#include <vtkTextActor.h>
#include <vtkTextProperty.h>

#include <algorithm>
#include <cmath>

#include "MeasurementStore.h"
#include "SliceViewDetail.h"

namespace lumen::gui {

namespace detail {
void styleText(vtkTextProperty* p, int size, double grey) {
  p->SetFontFamilyToArial();
  p->SetFontSize(size);
  p->SetColor(grey, grey, grey);
  p->SetShadow(true);
  p->SetShadowOffset(1, -1);
}
}  // namespace detail

namespace {
using detail::styleText;
constexpr double kCameraDistance = 1000.0;
// A 2D line actor whose points are given in world (LPS) coordinates.
vtkSmartPointer<vtkActor2D> makeLine(vtkSmartPointer<vtkPoints>& points, bool world) {
  points = vtkSmartPointer<vtkPoints>::New();
  points->SetNumberOfPoints(2);
  points->SetPoint(0, 0, 0, 0);
  points->SetPoint(1, 0, 0, 0);
  auto lines = vtkSmartPointer<vtkCellArray>::New();
  vtkIdType ids[2] = {0, 1};
  lines->InsertNextCell(2, ids);
  auto poly = vtkSmartPointer<vtkPolyData>::New();
  poly->SetPoints(points);
  poly->SetLines(lines);
  auto mapper = vtkSmartPointer<vtkPolyDataMapper2D>::New();
  mapper->SetInputData(poly);
  if (world) {
    auto coord = vtkSmartPointer<vtkCoordinate>::New();
    coord->SetCoordinateSystemToWorld();
    mapper->SetTransformCoordinate(coord);
  }
  auto actor = vtkSmartPointer<vtkActor2D>::New();
  actor->SetMapper(mapper);
  actor->GetProperty()->SetLineWidth(1.0);
  return actor;
}
// A 2D actor drawing `poly`'s lines, whose points are given in world (LPS) coordinates.
vtkSmartPointer<vtkActor2D> makeWorldLines(vtkSmartPointer<vtkPolyData>& poly, double r, double g, double b) {
  poly = vtkSmartPointer<vtkPolyData>::New();
  poly->SetPoints(vtkSmartPointer<vtkPoints>::New());
  poly->SetLines(vtkSmartPointer<vtkCellArray>::New());
  auto mapper = vtkSmartPointer<vtkPolyDataMapper2D>::New();
  mapper->SetInputData(poly);
  auto coord = vtkSmartPointer<vtkCoordinate>::New();
  coord->SetCoordinateSystemToWorld();
  mapper->SetTransformCoordinate(coord);
  auto actor = vtkSmartPointer<vtkActor2D>::New();
  actor->SetMapper(mapper);
  actor->GetProperty()->SetColor(r, g, b);
  actor->GetProperty()->SetLineWidth(1.5);
  return actor;
}

}  // namespace

SliceView::SliceView(QWidget* parent) : VtkWidget(parent) { buildPipeline(); }

SliceView::~SliceView() = default;

void SliceView::buildPipeline() {
  renderer()->SetBackground(0, 0, 0);
  renderer()->GetActiveCamera()->ParallelProjectionOn();

  auto makeMapper = [] {
    auto m = vtkSmartPointer<vtkImageResliceMapper>::New();
    m->SliceFacesCameraOn();
    m->SliceAtFocalPointOn();
    m->BorderOn();  // edge voxels drawn whole, like every radiology viewer
    return m;
  };
  mapper_ = makeMapper();
  property_ = vtkSmartPointer<vtkImageProperty>::New();
  property_->SetInterpolationTypeToLinear();
  slice_ = vtkSmartPointer<vtkImageSlice>::New();
  slice_->SetMapper(mapper_);
  slice_->SetProperty(property_);
  slice_->VisibilityOff();

  invertLut_ = vtkSmartPointer<vtkLookupTable>::New();
  invertLut_->SetNumberOfTableValues(256);
  invertLut_->SetHueRange(0, 0);
  invertLut_->SetSaturationRange(0, 0);
  invertLut_->SetValueRange(1, 0);
  invertLut_->SetRampToLinear();
  invertLut_->Build();

  overlayMapper_ = makeMapper();
  overlayProperty_ = vtkSmartPointer<vtkImageProperty>::New();
  overlayProperty_->SetInterpolationTypeToNearest();
  overlayProperty_->UseLookupTableScalarRangeOn();
  overlayLut_ = vtkSmartPointer<vtkLookupTable>::New();
  overlayProperty_->SetLookupTable(overlayLut_);
  overlaySlice_ = vtkSmartPointer<vtkImageSlice>::New();
  overlaySlice_->SetMapper(overlayMapper_);
  overlaySlice_->SetProperty(overlayProperty_);
  overlaySlice_->VisibilityOff();

  stack_ = vtkSmartPointer<vtkImageStack>::New();
  stack_->AddImage(slice_);
  stack_->AddImage(overlaySlice_);
  renderer()->AddViewProp(stack_);

  cornerActor_ = vtkSmartPointer<vtkCornerAnnotation>::New();
  cornerActor_->SetMaximumFontSize(14);
  cornerActor_->SetMinimumFontSize(9);
  cornerActor_->SetLinearFontScaleFactor(2);
  cornerActor_->SetNonlinearFontScaleFactor(1);
  styleText(cornerActor_->GetTextProperty(), 13);
  renderer()->AddViewProp(cornerActor_);

  for (int i = 0; i < 4; ++i) {
    edgeActors_[i] = vtkSmartPointer<vtkTextActor>::New();
    styleText(edgeActors_[i]->GetTextProperty(), 15, 0.95);
    edgeActors_[i]->GetTextProperty()->BoldOn();
    renderer()->AddViewProp(edgeActors_[i]);
  }
  edgeActors_[0]->GetTextProperty()->SetJustificationToLeft();
  edgeActors_[1]->GetTextProperty()->SetJustificationToRight();
  for (int i : {0, 1}) edgeActors_[i]->GetTextProperty()->SetVerticalJustificationToCentered();
  for (int i : {2, 3}) edgeActors_[i]->GetTextProperty()->SetJustificationToCentered();
  edgeActors_[2]->GetTextProperty()->SetVerticalJustificationToTop();
  edgeActors_[3]->GetTextProperty()->SetVerticalJustificationToBottom();

  for (int i = 0; i < 2; ++i) {
    crossActors_[i] = makeLine(crossPoints_[i], true);
    crossActors_[i]->VisibilityOff();
    renderer()->AddViewProp(crossActors_[i]);
  }
  scaleActor_ = makeLine(scalePoints_, false);
  scaleActor_->GetProperty()->SetColor(0.86, 0.86, 0.86);
  scaleActor_->GetProperty()->SetLineWidth(2.0);
  renderer()->AddViewProp(scaleActor_);
  scaleText_ = vtkSmartPointer<vtkTextActor>::New();
  styleText(scaleText_->GetTextProperty(), 12);
  scaleText_->GetTextProperty()->SetJustificationToCentered();
  renderer()->AddViewProp(scaleText_);

  emptyText_ = vtkSmartPointer<vtkTextActor>::New();
  styleText(emptyText_->GetTextProperty(), 14, 0.5);
  emptyText_->GetTextProperty()->SetJustificationToCentered();
  emptyText_->GetTextProperty()->SetVerticalJustificationToCentered();
  emptyText_->SetInput("Drop a series here");
  renderer()->AddViewProp(emptyText_);

  measureActor_ = makeWorldLines(measureLines_, 1.0, 0.85, 0.2);
  selectedActor_ = makeWorldLines(selectedLines_, 0.35, 1.0, 0.55);
  renderer()->AddViewProp(measureActor_);
  renderer()->AddViewProp(selectedActor_);
  clear();
}

void SliceView::clear() {
  series_.reset();
  overlay_.reset();
  vtkImage_ = {};
  vtkOverlay_ = {};
  slice_->VisibilityOff();
  overlaySlice_->VisibilityOff();
  mapper_->RemoveAllInputConnections(0);
  overlayMapper_->RemoveAllInputConnections(0);
  cornerActor_->ClearAllTexts();
  for (auto& a : edgeActors_) a->SetInput("");
  scaleActor_->VisibilityOff();
  scaleText_->VisibilityOff();
  emptyText_->VisibilityOn();
  crosshairVisible_ = false;
  updateCrosshair();
  corners_ = {};
  edges_ = {};
  resetInteraction();
  selected_ = -1;
  updateMeasurements();
  update();
}

void SliceView::setSeries(std::shared_ptr<LoadedSeries> series, Plane plane) {
  if (!series || !series->volume) return clear();
  series_ = std::move(series);
  plane_ = plane;
  vtkImage_ = wrapForVtk(series_->volume);
  mapper_->SetInputData(vtkImage_.image);
  slice_->SetUserMatrix(vtkImage_.matrix);
  slice_->VisibilityOn();
  emptyText_->VisibilityOff();
  scaleActor_->VisibilityOn();
  scaleText_->VisibilityOn();
  property_->SetInterpolationTypeToLinear();
  setOverlay(nullptr);
  resetInteraction();
  selected_ = -1;
  reset();
}

void SliceView::replaceSeries(std::shared_ptr<LoadedSeries> series, bool keepView) {
  if (!series_ || !series || !series->volume) return setSeries(std::move(series), plane_);
  // Another grid: the same series with more slices (keepView) keeps the reader's plane
  // (oblique MPR too), position in mm, zoom, pan, window and any drag in progress; only
  // the image and the slice range change. Without keepView the view starts afresh.
  const bool newGrid = !sameGrid(series->volume->geometry(), series_->volume->geometry());
  if (newGrid && !keepView) return setSeries(std::move(series), plane_);
  const Vec3 focal = nav_.focal();
  series_ = std::move(series);
  vtkImage_ = wrapForVtk(series_->volume);
  mapper_->SetInputData(vtkImage_.image);
  slice_->SetUserMatrix(vtkImage_.matrix);
  if (newGrid) {
    nav_.reset(series_->volume->geometry(), nav_.axes());
    nav_.setFocal(focal);  // the nearest slice of the new grid
  }
  // The first window came from one slice (or part of the series); with all of them, the
  // default may be better, unless the reader chose one meanwhile.
  if (!windowChosen_) {
    wl_ = defaultWindow(*series_);
    emit windowLevelChanged(wl_);
  }
  updateWindowLevelProperty();
  if (newGrid) updateCamera();
  updateAnnotations();
  if (newGrid) emit sliceChanged(nav_.sliceIndex());
  update();
}

void SliceView::reset() {
  if (!series_) return;
  nav_.reset(series_->volume->geometry(), (plane_ == Plane::Native ? nativeAxes(series_->volume->geometry()) : planeAxes(plane_)));
  pan_ = {};
  wl_ = defaultWindow(*series_);
  windowChosen_ = false;
  inverted_ = false;
  updateWindowLevelProperty();
  fit();
  emit windowLevelChanged(wl_);
  emit sliceChanged(nav_.sliceIndex());
}

void SliceView::setPlane(Plane plane) {
  plane_ = plane;
  if (!series_) return;
  const Vec3 focal = nav_.focal();
  nav_.reset(series_->volume->geometry(), (plane_ == Plane::Native ? nativeAxes(series_->volume->geometry()) : planeAxes(plane_)));
  nav_.setFocal(focal);
  pan_ = {};
  fit();
}

void SliceView::setAxes(const PlaneAxes& axes) {
  if (!series_) return;
  nav_.setAxes(axes);
  // Keep the view centre in the plane.
  pan_ = pan_ - nav_.axes().normal * pan_.dot(nav_.axes().normal);
  updateCamera();
  updateCrosshair();
  updateAnnotations();
  update();
}

void SliceView::fit() {
  if (!series_) return;
  const ImageGeometry& g = series_->volume->geometry();
  const PlaneAxes& a = nav_.axes();
  double r0 = INFINITY, r1 = -INFINITY, u0 = INFINITY, u1 = -INFINITY;
  for (int corner = 0; corner < 8; ++corner) {
    Vec3 ijk;
    for (int d = 0; d < 3; ++d) ijk[d] = (corner >> d) & 1 ? static_cast<double>(g.size[d]) - 0.5 : -0.5;
    const Vec3 p = g.ijkToLps(ijk);
    r0 = std::min(r0, p.dot(a.right));
    r1 = std::max(r1, p.dot(a.right));
    u0 = std::min(u0, p.dot(a.up));
    u1 = std::max(u1, p.dot(a.up));
  }
  const double aspect = height() > 0 ? static_cast<double>(width()) / height() : 1.0;
  scale_ = std::max((u1 - u0) / 2.0, (r1 - r0) / 2.0 / aspect);
  // Centre the volume: the pan is the offset of the volume centre from the focal point.
  const Vec3 centre = a.right * ((r0 + r1) / 2) + a.up * ((u0 + u1) / 2);
  const Vec3 f = nav_.focal();
  pan_ = a.right * (centre.dot(a.right) - f.dot(a.right)) + a.up * (centre.dot(a.up) - f.dot(a.up));
  updateCamera();
  updateAnnotations();
  update();
}

void SliceView::zoomBy(double factor) {
  if (!series_ || factor <= 0) return;
  scale_ = std::clamp(scale_ / factor, 1.0, 1e5);
  updateCamera();
  updateAnnotations();
  update();
}

double SliceView::mmPerPixel() const { return height() > 0 ? 2.0 * scale_ / height() : 1.0; }

double SliceView::zoomPercent() const {
  if (!series_) return 100.0;
  const Vec3& s = series_->volume->geometry().spacingMm;
  return 100.0 * std::min(s.x, s.y) / mmPerPixel();
}

void SliceView::scrollBy(int steps) {
  if (!series_) return;
  const int before = nav_.sliceIndex();
  nav_.scroll(steps);
  if (nav_.sliceIndex() == before) return;
  updateCamera();
  updateAnnotations();
  update();
  emit sliceChanged(nav_.sliceIndex());
}

void SliceView::setSliceIndex(int k) {
  if (!series_) return;
  nav_.setSliceIndex(k);
  updateCamera();
  updateAnnotations();
  update();
  emit sliceChanged(nav_.sliceIndex());
}

void SliceView::setWindowLevel(const WindowLevel& wl) {
  wl_ = {wl.center, std::max(1e-3, wl.width)};
  windowChosen_ = true;  // the reader's (or a preset's) window: kept when loading completes
  updateWindowLevelProperty();
  updateAnnotations();
  update();
}

void SliceView::setInverted(bool on) {
  inverted_ = on;
  updateWindowLevelProperty();
  update();
}

void SliceView::updateWindowLevelProperty() {
  property_->SetColorWindow(wl_.width);
  property_->SetColorLevel(wl_.center);
  property_->SetLookupTable(inverted_ && series_ && !series_->isColor() ? invertLut_.GetPointer() : nullptr);
}

void SliceView::setSlab(SlabMode mode, double thicknessMm) {
  slabMode_ = mode;
  slabMm_ = mode == SlabMode::None ? 0.0 : std::max(0.0, thicknessMm);
  mapper_->SetSlabThickness(slabMm_);
  switch (mode) {
    case SlabMode::Min: mapper_->SetSlabTypeToMin(); break;
    case SlabMode::Mean: mapper_->SetSlabTypeToMean(); break;
    default: mapper_->SetSlabTypeToMax(); break;
  }
  updateAnnotations();
  update();
}

void SliceView::setHidePatient(bool hide) {
  hidePatient_ = hide;
  updateAnnotations();
  update();
}

void SliceView::setCrosshair(const Vec3& lps, bool visible) {
  crosshair_ = lps;
  crosshairVisible_ = visible && series_;
  if (series_) {
    const int before = nav_.sliceIndex();
    // Only the slice position follows the crosshair; the view does not recentre.
    Vec3 f = nav_.focal();
    f += nav_.axes().normal * (lps.dot(nav_.axes().normal) - f.dot(nav_.axes().normal));
    const Vec3 centre = nav_.focal() + pan_;
    nav_.setFocal(f);
    pan_ = centre - nav_.focal();
    pan_ = pan_ - nav_.axes().normal * pan_.dot(nav_.axes().normal);
    updateCamera();
    updateAnnotations();
    if (nav_.sliceIndex() != before) emit sliceChanged(nav_.sliceIndex());
  }
  updateCrosshair();
  update();
}

void SliceView::setCrosshairLines(const Vec3& dir0, const Rgb8& color0, const Vec3& dir1, const Rgb8& color1) {
  crossDirs_[0] = dir0.normalized();
  crossDirs_[1] = dir1.normalized();
  crossDirsSet_ = true;
  crossActors_[0]->GetProperty()->SetColor(color0.r / 255.0, color0.g / 255.0, color0.b / 255.0);
  crossActors_[1]->GetProperty()->SetColor(color1.r / 255.0, color1.g / 255.0, color1.b / 255.0);
  updateCrosshair();
  update();
}

void SliceView::updateCrosshair() {
  for (auto& a : crossActors_) a->SetVisibility(crosshairVisible_);
  if (!crosshairVisible_) return;
  const PlaneAxes& a = nav_.axes();
  // The crosshair projected onto this slice; lines span far beyond the viewport.
  const Vec3 c = crosshair_ + a.normal * (nav_.focal().dot(a.normal) - crosshair_.dot(a.normal));
  const double L = 1e4;
  const Vec3 d0 = crossDirsSet_ ? crossDirs_[0] : a.right, d1 = crossDirsSet_ ? crossDirs_[1] : a.up;
  const Vec3 h0 = c - d0 * L, h1 = c + d0 * L, v0 = c - d1 * L, v1 = c + d1 * L;
  crossPoints_[0]->SetPoint(0, h0.x, h0.y, h0.z);
  crossPoints_[0]->SetPoint(1, h1.x, h1.y, h1.z);
  crossPoints_[1]->SetPoint(0, v0.x, v0.y, v0.z);
  crossPoints_[1]->SetPoint(1, v1.x, v1.y, v1.z);
  for (auto& p : crossPoints_) p->Modified();
}

void SliceView::setOverlay(std::shared_ptr<LabelOverlay> overlay) {
  overlay_ = std::move(overlay);
  if (!overlay_ || !overlay_->labels) {
    vtkOverlay_ = {};
    overlaySlice_->VisibilityOff();
    overlayMapper_->RemoveAllInputConnections(0);
    update();
    return;
  }
  vtkOverlay_ = wrapForVtk(overlay_->labels);
  overlayMapper_->SetInputData(vtkOverlay_.image);
  overlaySlice_->SetUserMatrix(vtkOverlay_.matrix);
  overlaySlice_->VisibilityOn();
  updateOverlayAppearance();
}

void SliceView::updateOverlayAppearance() {
  if (!overlay_) return;
  int maxLabel = 1;
  for (const auto& e : overlay_->entries) maxLabel = std::max(maxLabel, e.value);
  overlayLut_->SetNumberOfTableValues(maxLabel + 1);
  overlayLut_->SetTableRange(-0.5, maxLabel + 0.5);
  for (int v = 0; v <= maxLabel; ++v) overlayLut_->SetTableValue(v, 0, 0, 0, 0);
  for (const auto& e : overlay_->entries)
    overlayLut_->SetTableValue(e.value, e.color.r / 255.0, e.color.g / 255.0, e.color.b / 255.0, e.visible ? e.opacity : 0.0);
  overlayLut_->Modified();
  overlayProperty_->SetOpacity(overlay_->opacity);
  update();
}

void SliceView::voxelsChanged() {
  markModified(vtkImage_);
  update();
}

void SliceView::updateCamera() {
  if (!series_) return;
  vtkCamera* cam = renderer()->GetActiveCamera();
  const PlaneAxes& a = nav_.axes();
  const Vec3 f = nav_.focal() + pan_;
  const Vec3 pos = f - a.normal * kCameraDistance;
  cam->SetFocalPoint(f.x, f.y, f.z);
  cam->SetPosition(pos.x, pos.y, pos.z);
  cam->SetViewUp(a.up.x, a.up.y, a.up.z);
  cam->SetParallelScale(scale_);
  const double slab = std::max(1.0, slabMm_);
  cam->SetClippingRange(kCameraDistance - slab - 10.0, kCameraDistance + slab + 10.0);
  updateScaleBar();
  updateCrosshair();
  updateMeasurements();
}

void SliceView::updateScaleBar() {
  const double w = width(), h = height();
  const double dpr = devicePixelRatioF();
  const double mmPerPx = mmPerPixel();
  const double len = niceScaleLength(0.25 * w * mmPerPx);
  const double px = len / mmPerPx * dpr;
  const double x1 = (w - 16) * dpr, y = 36 * dpr;
  scalePoints_->SetPoint(0, x1 - px, y, 0);
  scalePoints_->SetPoint(1, x1, y, 0);
  scalePoints_->Modified();
  scaleText_->SetInput((std::to_string(static_cast<int>(len >= 1 ? len : 0)) + (len >= 1 ? " mm" : "")).c_str());
  if (len < 1) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2g mm", len);
    scaleText_->SetInput(buf);
  }
  scaleText_->SetDisplayPosition(static_cast<int>(x1 - px / 2), static_cast<int>(y + 4 * dpr));
  (void)h;
}

void SliceView::updateAnnotations() {
  if (!series_) return;
  AnnotationInput in;
  in.series = series_.get();
  in.sliceIndex = nav_.sliceIndex();
  in.sliceCount = nav_.sliceCount();
  in.positionMm = nav_.positionMm();
  in.wl = wl_;
  in.zoomPercent = zoomPercent();
  in.hidePatient = hidePatient_;
  in.probe = probe_;
  // Images without patient geometry (projection X-ray, secondary capture) have no plane.
  const bool noGeometry = !series_->info.hasPatientGeometry;
  in.viewName = noGeometry ? std::string() : plane_ == Plane::Native ? planeName(nav_.axes().normal) : toString(plane_);
  if (slabMode_ != SlabMode::None && slabMm_ > 0) {
    const char* m = slabMode_ == SlabMode::Max ? "MIP" : slabMode_ == SlabMode::Min ? "MinIP" : "Mean";
    in.slabText = std::string(m) + " slab " + std::to_string(static_cast<int>(std::lround(slabMm_))) + " mm";
  }
  corners_ = cornerText(in);
  cornerActor_->SetText(vtkCornerAnnotation::UpperLeft, corners_.topLeft.c_str());
  cornerActor_->SetText(vtkCornerAnnotation::UpperRight, corners_.topRight.c_str());
  cornerActor_->SetText(vtkCornerAnnotation::LowerLeft, corners_.bottomLeft.c_str());
  cornerActor_->SetText(vtkCornerAnnotation::LowerRight, corners_.bottomRight.c_str());
  if (series_->info.stackKind == StackKind::Spatial || series_->info.stackKind == StackKind::Single2D) {
    edges_ = edgeLabels(nav_.axes());
    if (noGeometry) edges_ = {};  // no anatomical directions to show
  } else {
    edges_ = {};
  }
  const double dpr = devicePixelRatioF();
  const double w = width() * dpr, h = height() * dpr;
  edgeActors_[0]->SetDisplayPosition(static_cast<int>(6 * dpr), static_cast<int>(h / 2));
  edgeActors_[1]->SetDisplayPosition(static_cast<int>(w - 6 * dpr), static_cast<int>(h / 2));
  edgeActors_[2]->SetDisplayPosition(static_cast<int>(w / 2), static_cast<int>(h - 6 * dpr));
  edgeActors_[3]->SetDisplayPosition(static_cast<int>(w / 2), static_cast<int>(6 * dpr));
  for (int i = 0; i < 4; ++i) edgeActors_[i]->SetInput(edges_[i].c_str());
}

Vec3 SliceView::worldAt(const QPointF& p) const {
  const PlaneAxes& a = nav_.axes();
  const Vec3 centre = nav_.focal() + pan_;
  const double mm = mmPerPixel();
  return centre + a.right * ((p.x() - width() / 2.0) * mm) + a.up * ((height() / 2.0 - p.y()) * mm);
}

QPointF SliceView::widgetPos(const Vec3& lps) const {
  const PlaneAxes& a = nav_.axes();
  const Vec3 d = lps - (nav_.focal() + pan_);
  const double mm = mmPerPixel();
  return {width() / 2.0 + d.dot(a.right) / mm, height() / 2.0 - d.dot(a.up) / mm};
}

void SliceView::resizeGL(int w, int h) {
  VtkWidget::resizeGL(w, h);
  const double dpr = devicePixelRatioF();
  emptyText_->SetDisplayPosition(static_cast<int>(w * dpr / 2), static_cast<int>(h * dpr / 2));
  updateCamera();
  updateAnnotations();
}

// ---- interaction ---------------------------------------------------------------------

void SliceView::mousePressEvent(QMouseEvent* e) {
  emit activated(this);
  setFocus();
  if (!series_) return;
  pressPos_ = lastPos_ = e->position();
  pressWl_ = wl_;
  if (paint_ != PaintTool::None && e->button() == Qt::LeftButton && !(e->modifiers() & (Qt::ShiftModifier | Qt::ControlModifier))) {
    painting_ = true;
    emit paintStroke(makePaintEvent(PaintEvent::Phase::Begin, e->position()));
    return;
  }
  if (measurementPress(e)) return;
  const bool shift = e->modifiers() & Qt::ShiftModifier;
  const bool ctrl = e->modifiers() & Qt::ControlModifier;
  if (e->button() == Qt::LeftButton) {
    if (ctrl && mpr_) drag_ = Drag::Rotate;
    else if (shift) drag_ = Drag::Pan;
    else drag_ = mpr_ ? Drag::Click : Drag::WindowLevel;
  } else if (e->button() == Qt::MiddleButton) {
    drag_ = Drag::Pan;
  } else if (e->button() == Qt::RightButton) {
    drag_ = Drag::Zoom;
  }
}

void SliceView::mouseMoveEvent(QMouseEvent* e) {
  if (!series_) return;
  const QPointF p = e->position();
  if (paint_ != PaintTool::None) {
    cursor_ = worldAt(p);
    cursorInside_ = true;
    if (painting_) emit paintStroke(makePaintEvent(PaintEvent::Phase::Move, p));
    updateMeasurements();
    probe_ = probeText(*series_, worldAt(p));
    updateAnnotations();
    update();
    return;
  }
  if (drafting_ && !draft_.points.empty()) {
    // The next point of an angle or polygon follows the mouse.
    if (drag_ == Drag::Draw && draft_.kind == MeasurementKind::Polygon && fixedPoints_ == 1 &&
        (p - pressPos_).manhattanLength() > 4)
      drag_ = Drag::Freehand;
    if (drag_ == Drag::Freehand) {
      // A vertex every 4 pixels or so; the last point follows the mouse.
      draft_.points.back() = worldAt(p);
      if ((widgetPos(draft_.points[draft_.points.size() - 2]) - p).manhattanLength() >= 4) draft_.points.push_back(worldAt(p));
    } else {
      draft_.points.back() = worldAt(p);
    }
    updateMeasurements();
    update();
  }
  if (drag_ == Drag::Draw && !drafting_) {
    draft_.points.back() = worldAt(p);
    updateMeasurements();
    update();
    lastPos_ = p;
    return;
  }
  if (drag_ == Drag::Handle || drag_ == Drag::Move) {
    const Measurement* m = store_ ? store_->listFor(*series_)->find(editId_) : nullptr;
    if (m) {
      edited_ = drag_ == Drag::Handle ? moveHandle(*m, editHandle_, worldAt(p)) : translated(*m, worldAt(p) - pressWorld_);
      updateMeasurements();
      update();
    }
    lastPos_ = p;
    return;
  }
  if (drag_ == Drag::None || drag_ == Drag::Draw || drag_ == Drag::Freehand) {
    probe_ = probeText(*series_, worldAt(p));
    updateAnnotations();
    update();
    return;
  }
  if (drag_ == Drag::Click && (p - pressPos_).manhattanLength() > 4) drag_ = Drag::WindowLevel;
  const QPointF d = p - lastPos_;
  switch (drag_) {
    case Drag::WindowLevel: {
      const QPointF t = p - pressPos_;
      const double scale = std::max(1.0, pressWl_.width) / 256.0;
      WindowLevel wl{pressWl_.center + t.y() * scale, std::max(1.0, pressWl_.width + t.x() * scale * 2.0)};
      setWindowLevel(wl);
      emit windowLevelChanged(wl_);
      break;
    }
    case Drag::Pan: {
      const double mm = mmPerPixel();
      pan_ = pan_ - nav_.axes().right * (d.x() * mm) + nav_.axes().up * (d.y() * mm);
      updateCamera();
      update();
      break;
    }
    case Drag::Zoom: zoomBy(std::exp(-d.y() / 200.0)); break;
    case Drag::Rotate: {
      const QPointF c = widgetPos(crosshair_);
      const double a0 = std::atan2(-(lastPos_.y() - c.y()), lastPos_.x() - c.x());
      const double a1 = std::atan2(-(p.y() - c.y()), p.x() - c.x());
      double da = a1 - a0;
      if (da > M_PI) da -= 2 * M_PI;
      if (da < -M_PI) da += 2 * M_PI;
      emit rotateAxes(da, plane_);
      break;
    }
    default: break;
  }
  lastPos_ = p;
}

void SliceView::mouseReleaseEvent(QMouseEvent* e) {
  if (painting_) {
    painting_ = false;
    emit paintStroke(makePaintEvent(PaintEvent::Phase::End, e->position()));
    return;
  }
  if (series_ && (drag_ == Drag::Draw || drag_ == Drag::Freehand || drag_ == Drag::Handle || drag_ == Drag::Move)) {
    const QPointF p = e->position();
    const bool moved = (p - pressPos_).manhattanLength() > 3;
    const Drag d = std::exchange(drag_, Drag::None);
    if (d == Drag::Freehand) {
      draft_.points.back() = worldAt(p);
      commitDraft();
    } else if (d == Drag::Draw && !drafting_) {
      // A click without a drag draws nothing: a distance or box needs two places.
      draft_.points.back() = worldAt(p);
      if (moved) commitDraft();
      else cancelDraft();
    } else if (d == Drag::Draw && drafting_ && moved && fixedPoints_ == 1) {
      // Press, drag, release: the first leg of an angle in one gesture.
      draft_.points.back() = worldAt(p);
      ++fixedPoints_;
      draft_.points.push_back(worldAt(p));
    } else if ((d == Drag::Handle || d == Drag::Move) && moved && store_) {
      store_->replace(*series_, edited_);
    }
    editId_ = -1;
    updateMeasurements();
    update();
    return;
  }
  if (drag_ == Drag::Click && series_) {
    const Vec3 p = worldAt(e->position());
    emit crosshairMoved(p);
  }
  drag_ = Drag::None;
}

void SliceView::wheelEvent(QWheelEvent* e) {
  if (!series_) return;
  const int notches = e->angleDelta().y() / 120;
  if (notches == 0) return;
  if (e->modifiers() & Qt::ControlModifier) zoomBy(std::pow(1.1, notches));
  else scrollBy((e->modifiers() & Qt::ShiftModifier) ? notches * 5 : notches);
}

void SliceView::keyPressEvent(QKeyEvent* e) {
  if (!series_) return VtkWidget::keyPressEvent(e);
  switch (e->key()) {
    case Qt::Key_Up:
    case Qt::Key_Right: scrollBy(1); break;
    case Qt::Key_Down:
    case Qt::Key_Left: scrollBy(-1); break;
    case Qt::Key_PageUp: scrollBy(10); break;
    case Qt::Key_PageDown: scrollBy(-10); break;
    case Qt::Key_Home: setSliceIndex(0); break;
    case Qt::Key_End: setSliceIndex(nav_.sliceCount() - 1); break;
    case Qt::Key_Plus:
    case Qt::Key_Equal: zoomBy(1.25); break;
    case Qt::Key_Minus: zoomBy(0.8); break;
    case Qt::Key_Escape:
      if (!drafting_) return VtkWidget::keyPressEvent(e);
      cancelDraft();
      break;
    case Qt::Key_Return:
    case Qt::Key_Enter:
      if (!drafting_ || draft_.kind != MeasurementKind::Polygon) return VtkWidget::keyPressEvent(e);
      draft_.points.pop_back();  // the point following the mouse
      commitDraft();
      break;
    case Qt::Key_Delete:
    case Qt::Key_Backspace:
      if (selected_ < 0 || !store_) return VtkWidget::keyPressEvent(e);
      store_->remove(*series_, std::exchange(selected_, -1));
      emit measurementSelected(-1);
      break;
    default: VtkWidget::keyPressEvent(e); return;
  }
  e->accept();
}

void SliceView::mouseDoubleClickEvent(QMouseEvent* e) {
  // A double click ends a polygon drawn point by point (Qt sends it instead of the second
  // press: drop the point following the mouse).
  if (drafting_ && draft_.kind == MeasurementKind::Polygon) {
    draft_.points.pop_back();
    commitDraft();
    e->accept();
    return;
  }
  mousePressEvent(e);
}

void SliceView::leaveEvent(QEvent* e) {
  probe_.clear();
  cursorInside_ = false;
  updateMeasurements();
  updateAnnotations();
  update();
  VtkWidget::leaveEvent(e);
}

}  // namespace lumen::gui
