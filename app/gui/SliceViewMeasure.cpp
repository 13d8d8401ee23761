// SliceView's measurements and label painting: drawing a measurement with the current
// tool, editing it by its handles, drawing what the view shows of the store, and turning
// the mouse into paint strokes. The rest of the view is in SliceView.cpp.

#include <QLineF>
#include <QMouseEvent>

#include <vtkActor2D.h>
#include <vtkCellArray.h>
#include <vtkPoints.h>
#include <vtkPolyData.h>
#include <vtkRenderer.h>
#include <vtkTextActor.h>
#include <vtkTextProperty.h>

#include <algorithm>
#include <cmath>

#include "MeasurementStore.h"
#include "SliceView.h"
#include "SliceViewDetail.h"

namespace lumen::gui {

namespace {
using detail::styleText;

void addPolyline(vtkPolyData* poly, const std::vector<Vec3>& pts) {
  if (pts.size() < 2) return;
  vtkPoints* points = poly->GetPoints();
  std::vector<vtkIdType> ids;
  for (const auto& p : pts) ids.push_back(points->InsertNextPoint(p.x, p.y, p.z));
  poly->GetLines()->InsertNextCell(static_cast<vtkIdType>(ids.size()), ids.data());
}

void clearPolyData(vtkPolyData* poly) {
  poly->GetPoints()->Reset();
  poly->GetLines()->Reset();
  poly->GetPoints()->Modified();
  poly->GetLines()->Modified();
  poly->Modified();
}

// Squared distance (pixels) from p to the segment a-b.
double segmentDistance2(const QPointF& p, const QPointF& a, const QPointF& b) {
  const QPointF ab = b - a, ap = p - a;
  const double len2 = QPointF::dotProduct(ab, ab);
  const double t = len2 > 0 ? std::clamp(QPointF::dotProduct(ap, ab) / len2, 0.0, 1.0) : 0.0;
  const QPointF d = ap - ab * t;
  return QPointF::dotProduct(d, d);
}

constexpr double kHandlePx = 7.0;  // how close a click must be to grab a handle or a line

MeasurementKind kindOf(MeasureTool t) {
  switch (t) {
    case MeasureTool::Angle: return MeasurementKind::Angle;
    case MeasureTool::Ellipse: return MeasurementKind::Ellipse;
    case MeasureTool::Rectangle: return MeasurementKind::Rectangle;
    case MeasureTool::Polygon: return MeasurementKind::Polygon;
    case MeasureTool::Point: return MeasurementKind::Point;
    default: return MeasurementKind::Distance;
  }
}
}  // namespace

// ---- measurements ----------------------------------------------------------------------

void SliceView::setMeasurementStore(MeasurementStore* store) {
  store_ = store;
  updateMeasurements();
}

void SliceView::setMeasureTool(MeasureTool tool) {
  cancelDraft();
  tool_ = tool;
  setCursor(tool == MeasureTool::None && paint_ == PaintTool::None ? Qt::ArrowCursor : Qt::CrossCursor);
}

void SliceView::setPaintTool(PaintTool tool, double diameterMm) {
  if (painting_ && tool != paint_) resetInteraction();
  paint_ = tool;
  brushMm_ = diameterMm;
  setCursor(tool == PaintTool::None && tool_ == MeasureTool::None ? Qt::ArrowCursor : Qt::CrossCursor);
  updateMeasurements();
  update();
}

PaintEvent SliceView::makePaintEvent(PaintEvent::Phase phase, const QPointF& p) const {
  PaintEvent e;
  e.phase = phase;
  e.lps = worldAt(p);
  e.normal = nav_.axes().normal;
  e.sliceStepMm = nav_.stepMm();
  return e;
}

void SliceView::overlayVoxelsChanged() {
  markModified(vtkOverlay_);
  update();
}

void SliceView::selectMeasurement(int id) {
  selected_ = id;
  updateMeasurements();
  update();
}

void SliceView::showPlaneOf(const Measurement& m) {
  if (!series_ || m.points.empty()) return;
  const Vec3 c = centroid(m);
  nav_.setFocal(c);
  if (!liesInPlane(m, nav_.focal(), nav_.axes().normal, std::max(0.01, 0.49 * nav_.stepMm()))) {
    nav_.setAxes({m.normal(), m.right, m.up});
    nav_.setFocal(m.points.front());
  }
  pan_ = c - nav_.focal();
  pan_ = pan_ - nav_.axes().normal * pan_.dot(nav_.axes().normal);
  updateCamera();
  updateAnnotations();
  update();
  emit sliceChanged(nav_.sliceIndex());
}

void SliceView::measurementsChanged() {
  if (series_ && store_ && selected_ >= 0 && !store_->listFor(*series_)->find(selected_)) selected_ = -1;
  updateMeasurements();
  update();
}

void SliceView::resetInteraction() {
  if (painting_) {
    painting_ = false;
    PaintEvent e;
    e.phase = PaintEvent::Phase::End;
    emit paintStroke(e);
  }
  drafting_ = false;
  fixedPoints_ = 0;
  draft_.points.clear();
  editId_ = -1;
  drag_ = Drag::None;
}

void SliceView::cancelDraft() {
  drafting_ = false;
  fixedPoints_ = 0;
  draft_.points.clear();
  if (drag_ == Drag::Draw || drag_ == Drag::Freehand) drag_ = Drag::None;
  updateMeasurements();
  update();
}

void SliceView::commitDraft() {
  Measurement m = draft_;
  cancelDraft();
  if (!series_ || !store_) return;
  if (m.kind == MeasurementKind::Polygon) {
    // Drop repeated points (a click that did not move).
    std::vector<Vec3> pts;
    for (const auto& p : m.points)
      if (pts.empty() || (p - pts.back()).norm() > 1e-6) pts.push_back(p);
    if (pts.size() > 1 && (pts.back() - pts.front()).norm() < 1e-6) pts.pop_back();
    m.points = pts;
  }
  if (!validate(m)) return;  // too few points: nothing to keep
  if (isRoi(m.kind) && areaMm2(m) <= 0) return;
  selected_ = store_->add(*series_, std::move(m));
  emit measurementSelected(selected_);
}

bool SliceView::measurementPress(QMouseEvent* e) {
  if (!store_ || e->button() != Qt::LeftButton || (e->modifiers() & (Qt::ShiftModifier | Qt::ControlModifier)))
    return false;
  const QPointF p = e->position();
  const Vec3 w = worldAt(p);
  if (drafting_) {
    // The next click of an angle or polygon.
    draft_.points.back() = w;
    ++fixedPoints_;
    const bool closes = draft_.kind == MeasurementKind::Polygon && fixedPoints_ > 3 &&
                        QLineF(widgetPos(draft_.points.front()), p).length() <= kHandlePx;
    if (closes) {
      draft_.points.pop_back();
      commitDraft();
    } else if (draft_.kind == MeasurementKind::Angle && fixedPoints_ == 3) {
      commitDraft();
    } else {
      draft_.points.push_back(w);
      drag_ = Drag::Draw;
    }
    return true;
  }
  int handle = -1;
  if (const int id = hitHandle(p, &handle); id >= 0) {
    selected_ = editId_ = id;
    editHandle_ = handle;
    edited_ = *store_->listFor(*series_)->find(id);
    drag_ = Drag::Handle;
    emit measurementSelected(id);
    updateMeasurements();
    update();
    return true;
  }
  if (tool_ != MeasureTool::None) {
    draft_ = {};
    draft_.kind = kindOf(tool_);
    draft_.right = nav_.axes().right;
    draft_.up = nav_.axes().up;
    if (tool_ == MeasureTool::Point) {
      draft_.points = {w};
      commitDraft();
      return true;
    }
    draft_.points = {w, w};
    drag_ = Drag::Draw;
    if (tool_ == MeasureTool::Angle || tool_ == MeasureTool::Polygon) {
      drafting_ = true;
      fixedPoints_ = 1;
    }
    updateMeasurements();
    update();
    return true;
  }
  if (const int id = hitOutline(p); id >= 0) {
    selected_ = editId_ = id;
    edited_ = *store_->listFor(*series_)->find(id);
    pressWorld_ = w;
    drag_ = Drag::Move;
    emit measurementSelected(id);
    updateMeasurements();
    update();
    return true;
  }
  if (selected_ >= 0) {
    selected_ = -1;
    emit measurementSelected(-1);
    updateMeasurements();
    update();
  }
  return false;
}

int SliceView::hitHandle(const QPointF& p, int* handle) const {
  if (!series_ || !store_) return -1;
  int best = -1;
  double bestD = kHandlePx * kHandlePx;
  for (const auto& shown : shown_) {
    const Measurement* m = store_->listFor(*series_)->find(shown.id);
    if (!m) continue;
    const auto hs = handles(*m);
    for (std::size_t h = 0; h < hs.size(); ++h) {
      const QPointF d = widgetPos(hs[h]) - p;
      // The selected measurement wins a tie: it is the one being edited.
      const double d2 = QPointF::dotProduct(d, d) - (m->id == selected_ ? 0.5 : 0.0);
      if (d2 <= bestD) {
        bestD = d2;
        best = m->id;
        *handle = static_cast<int>(h);
      }
    }
  }
  return best;
}

int SliceView::hitOutline(const QPointF& p) const {
  if (!series_ || !store_) return -1;
  for (const auto& shown : shown_) {
    const Measurement* m = store_->listFor(*series_)->find(shown.id);
    if (!m) continue;
    const auto line = outline(*m, 72);
    for (std::size_t i = 1; i < line.size(); ++i)
      if (segmentDistance2(p, widgetPos(line[i - 1]), widgetPos(line[i])) <= kHandlePx * kHandlePx) return m->id;
    if (m->kind == MeasurementKind::Point) {
      const QPointF d = widgetPos(m->points[0]) - p;
      if (QPointF::dotProduct(d, d) <= kHandlePx * kHandlePx) return m->id;
    }
  }
  return -1;
}

void SliceView::updateMeasurements() {
  if (!measureLines_) return;
  clearPolyData(measureLines_);
  clearPolyData(selectedLines_);
  shown_.clear();
  std::size_t text = 0;
  const double dpr = devicePixelRatioF();
  const double mm = mmPerPixel();
  auto label = [&](const std::string& s, const Vec3& at, bool selected) {
    if (text == measureText_.size()) {
      auto a = vtkSmartPointer<vtkTextActor>::New();
      styleText(a->GetTextProperty(), 13, 1.0);
      renderer()->AddViewProp(a);
      measureText_.push_back(a);
    }
    auto& a = measureText_[text++];
    const QPointF w = widgetPos(at) + QPointF(8, -8);
    a->SetInput(s.c_str());
    a->SetDisplayPosition(static_cast<int>(w.x() * dpr), static_cast<int>((height() - w.y()) * dpr));
    if (selected) a->GetTextProperty()->SetColor(0.35, 1.0, 0.55);
    else a->GetTextProperty()->SetColor(1.0, 0.85, 0.2);
    a->VisibilityOn();
  };
  // A point annotation is a small cross; handles are small squares (6 px).
  auto cross = [&](vtkPolyData* poly, const Vec3& c) {
    const Vec3 r = nav_.axes().right * (5 * mm), u = nav_.axes().up * (5 * mm);
    addPolyline(poly, {c - r, c + r});
    addPolyline(poly, {c - u, c + u});
  };
  auto square = [&](vtkPolyData* poly, const Vec3& c) {
    const Vec3 r = nav_.axes().right * (3 * mm), u = nav_.axes().up * (3 * mm);
    addPolyline(poly, {c - r - u, c + r - u, c + r + u, c - r + u, c - r - u});
  };
  if (series_ && store_) {
    const double tol = std::max(0.01, 0.49 * nav_.stepMm());
    for (const auto& stored : store_->listFor(*series_)->items()) {
      const Measurement& m = (editId_ == stored.id && (drag_ == Drag::Handle || drag_ == Drag::Move)) ? edited_ : stored;
      if (!liesInPlane(m, nav_.focal(), nav_.axes().normal, tol)) continue;
      const bool sel = m.id == selected_;
      vtkPolyData* poly = sel ? selectedLines_ : measureLines_;
      if (m.kind == MeasurementKind::Point) cross(poly, m.points[0]);
      else addPolyline(poly, outline(m, 72));
      if (sel)
        for (const auto& h : handles(m)) square(poly, h);
      const std::string value = store_->describe(*series_, m);
      const std::string s = m.kind == MeasurementKind::Point || m.text.empty() ? value : m.text + ": " + value;
      shown_.push_back({m.id, s});
      const auto line = outline(m, 72);
      // The label goes by the rightmost point, where it covers the least of the shape.
      Vec3 at = line.front();
      for (const auto& q : line)
        if (widgetPos(q).x() > widgetPos(at).x()) at = q;
      label(s, at, sel);
    }
    if (!draft_.points.empty()) {
      Measurement d = draft_;
      if (d.kind == MeasurementKind::Polygon && drafting_) {
        addPolyline(selectedLines_, d.points);  // open until it is closed
      } else if (d.points.size() >= 2 && (d.points[0] - d.points[1]).norm() > 0) {
        addPolyline(selectedLines_, outline(d, 72));
        if (d.kind == MeasurementKind::Distance) label(lumen::describe(d, nullptr, {}), d.points.back(), true);
      } else if (d.kind == MeasurementKind::Angle) {
        addPolyline(selectedLines_, d.points);
      }
      if (d.kind == MeasurementKind::Angle && d.points.size() == 3) label(lumen::describe(d, nullptr, {}), d.points[1], true);
    }
  }
  if (series_ && cursorInside_ && (paint_ == PaintTool::Brush || paint_ == PaintTool::Eraser)) {
    // The brush under the mouse: a circle of its diameter in this plane.
    std::vector<Vec3> circle;
    const double r = brushMm_ / 2;
    for (int i = 0; i <= 48; ++i) {
      const double t = 2 * M_PI * i / 48;
      circle.push_back(cursor_ + nav_.axes().right * (r * std::cos(t)) + nav_.axes().up * (r * std::sin(t)));
    }
    addPolyline(selectedLines_, circle);
  }
  for (std::size_t i = text; i < measureText_.size(); ++i) measureText_[i]->VisibilityOff();
  measureLines_->Modified();
  selectedLines_->Modified();
}


}  // namespace lumen::gui
