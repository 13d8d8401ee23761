#include "ViewportGrid.h"

#include <QDragEnterEvent>
#include <QDropEvent>
#include <QGridLayout>
#include <QMimeData>
#include <QTimer>
#include <QUrl>
#include <QVBoxLayout>

#include <cmath>

namespace lumen::gui {

namespace {
// Slicer's plane colours: axial red, coronal green, sagittal yellow.
const Rgb8 kPlaneColor[3] = {{230, 70, 70}, {90, 200, 100}, {235, 205, 70}};

Mat3 rotation(const Vec3& axis, double radians) {
  const Vec3 a = axis.normalized();
  const double c = std::cos(radians), s = std::sin(radians), t = 1 - c;
  Mat3 r;
  r.m = {t * a.x * a.x + c,       t * a.x * a.y - s * a.z, t * a.x * a.z + s * a.y,
         t * a.x * a.y + s * a.z, t * a.y * a.y + c,       t * a.y * a.z - s * a.x,
         t * a.x * a.z - s * a.y, t * a.y * a.z + s * a.x, t * a.z * a.z + c};
  return r;
}

}  // namespace

const char* toString(Layout l) {
  switch (l) {
    case Layout::One: return "1x1";
    case Layout::OneByTwo: return "1x2";
    case Layout::TwoByTwo: return "2x2";
    case Layout::Mpr: return "mpr";
  }
  return "?";
}

bool parseLayout(const QString& s, Layout& out) {
  const QString l = s.toLower();
  if (l == "1x1") out = Layout::One;
  else if (l == "1x2") out = Layout::OneByTwo;
  else if (l == "2x2") out = Layout::TwoByTwo;
  else if (l == "mpr") out = Layout::Mpr;
  else return false;
  return true;
}

// ---------------------------------------------------------------------------------------

ViewportFrame::ViewportFrame(int index, QWidget* content, QWidget* parent) : QFrame(parent), index_(index) {
  setAcceptDrops(true);
  auto* l = new QVBoxLayout(this);
  l->setContentsMargins(2, 2, 2, 2);
  l->addWidget(content);
  setActive(false);
}

void ViewportFrame::setActive(bool on) {
  // The 2 px margin around the view shows this colour: blue marks the active viewport.
  QPalette p = palette();
  p.setColor(QPalette::Window, on ? QColor(61, 142, 232) : QColor(42, 42, 46));
  setPalette(p);
  setAutoFillBackground(true);
}

void ViewportFrame::dragEnterEvent(QDragEnterEvent* e) {
  if (e->mimeData()->hasFormat(kSeriesMimeType) || e->mimeData()->hasUrls()) e->acceptProposedAction();
}

void ViewportFrame::dropEvent(QDropEvent* e) {
  QStringList paths;
  if (e->mimeData()->hasFormat(kSeriesMimeType)) {
    paths = QString::fromUtf8(e->mimeData()->data(kSeriesMimeType)).split('\n', Qt::SkipEmptyParts);
  } else {
    for (const QUrl& u : e->mimeData()->urls())
      if (u.isLocalFile()) paths << u.toLocalFile();
  }
  if (paths.isEmpty()) return;
  e->acceptProposedAction();
  emit dropped(index_, paths);
}

// ---------------------------------------------------------------------------------------

ViewportGrid::ViewportGrid(QWidget* parent) : QWidget(parent) {
  grid_ = new QGridLayout(this);
  grid_->setContentsMargins(0, 0, 0, 0);
  grid_->setSpacing(0);
  for (int i = 0; i < 4; ++i) {
    auto* v = new SliceView(this);
    slices_[static_cast<std::size_t>(i)] = v;
    frames_[static_cast<std::size_t>(i)] = new ViewportFrame(i, v, this);
    connect(frames_[static_cast<std::size_t>(i)], &ViewportFrame::dropped, this, &ViewportGrid::dropped);
    connect(v, &SliceView::activated, this, [this, i] { setActive(i); });
    connect(v, &SliceView::crosshairMoved, this, [this](const Vec3& p) {
      if (layout_ == Layout::Mpr) moveCrosshair(p);
    });
    connect(v, &SliceView::rotateAxes, this, [this](double a, Plane p) {
      if (layout_ == Layout::Mpr) rotateMpr(a, p);
    });
    connect(v, &SliceView::sliceChanged, this, [this, v](int) {
      if (layout_ != Layout::Mpr || !v->hasSeries()) return;
      // Scrolling one MPR view moves the crosshair along its normal.
      const Vec3 n = v->navigator().axes().normal;
      const Vec3 c = crosshair_ + n * (v->navigator().focal().dot(n) - crosshair_.dot(n));
      if ((c - crosshair_).norm() > 1e-6) moveCrosshair(c);
    });
    connect(v, &SliceView::windowLevelChanged, this, [this, v](const WindowLevel& wl) {
      if (layout_ == Layout::Mpr) {
        for (int k = 0; k < 3; ++k)
          if (slices_[static_cast<std::size_t>(k)] != v) slices_[static_cast<std::size_t>(k)]->setWindowLevel(wl);
        volume3d_->setWindowLevel(wl);
      }
      emit windowLevelChanged(wl);
    });
  }
  volume3d_ = new VolumeView3D(this);
  frame3d_ = new ViewportFrame(4, volume3d_, this);
  connect(frame3d_, &ViewportFrame::dropped, this, &ViewportGrid::dropped);
  connect(volume3d_, &VolumeView3D::activated, this, [this] { setActive(4); });
  for (std::size_t i = 0; i < 3; ++i) mprAxes_[i] = planeAxes(static_cast<Plane>(i));
  rebuild();
}

void ViewportGrid::setLayoutMode(Layout layout) {
  if (layout == layout_) return;
  const Layout before = layout_;
  layout_ = layout;
  rebuild();
  // Entering MPR shows the active view's series in all four viewports.
  if (layout_ == Layout::Mpr) {
    std::shared_ptr<LoadedSeries> s = activeSliceView() ? activeSliceView()->series() : nullptr;
    if (!s) s = slices_[0]->series();
    if (s) showSeries(s);
  } else if (before == Layout::Mpr) {
    for (int i = 0; i < 3; ++i) {
      slices_[static_cast<std::size_t>(i)]->setMprInteraction(false);
      slices_[static_cast<std::size_t>(i)]->setCrosshair({}, false);
      if (slices_[static_cast<std::size_t>(i)]->hasSeries()) slices_[static_cast<std::size_t>(i)]->setPlane(Plane::Native);
    }
  }
}

void ViewportGrid::rebuild() {
  for (auto* f : frames_) {
    grid_->removeWidget(f);
    f->hide();
  }
  grid_->removeWidget(frame3d_);
  frame3d_->hide();
  for (int r = 0; r < 2; ++r) {
    grid_->setRowStretch(r, 0);
    grid_->setColumnStretch(r, 0);
  }
  auto place = [&](QWidget* w, int r, int c) {
    grid_->addWidget(w, r, c);
    grid_->setRowStretch(r, 1);
    grid_->setColumnStretch(c, 1);
    w->show();
  };
  switch (layout_) {
    case Layout::One: place(frames_[0], 0, 0); break;
    case Layout::OneByTwo:
      place(frames_[0], 0, 0);
      place(frames_[1], 0, 1);
      break;
    case Layout::TwoByTwo:
      for (int i = 0; i < 4; ++i) place(frames_[static_cast<std::size_t>(i)], i / 2, i % 2);
      break;
    case Layout::Mpr:
      place(frames_[0], 0, 0);
      place(frames_[1], 0, 1);
      place(frames_[2], 1, 0);
      place(frame3d_, 1, 1);
      break;
  }
  if (active_ >= visibleSliceViews() && active_ != 4) active_ = 0;
  if (active_ == 4 && layout_ != Layout::Mpr) active_ = 0;
  setActive(active_);
}

int ViewportGrid::visibleSliceViews() const {
  switch (layout_) {
    case Layout::One: return 1;
    case Layout::OneByTwo: return 2;
    case Layout::TwoByTwo: return 4;
    case Layout::Mpr: return 3;
  }
  return 1;
}

void ViewportGrid::setActive(int index) {
  active_ = index;
  for (std::size_t i = 0; i < 4; ++i) frames_[i]->setActive(static_cast<int>(i) == index);
  frame3d_->setActive(index == 4);
  emit activeViewChanged(index);
}

SliceView* ViewportGrid::activeSliceView() const {
  if (active_ >= 0 && active_ < 4) return slices_[static_cast<std::size_t>(active_)];
  return slices_[0];
}

std::shared_ptr<LoadedSeries> ViewportGrid::mprSeries() const { return slices_[0]->series(); }

void ViewportGrid::showSeries(std::shared_ptr<LoadedSeries> series, int viewport) {
  if (!series || !series->volume) return;
  if (layout_ == Layout::Mpr) {
    const Plane planes[3] = {Plane::Axial, Plane::Coronal, Plane::Sagittal};
    for (int i = 0; i < 3; ++i) {
      SliceView* v = slices_[static_cast<std::size_t>(i)];
      v->setSeries(series, planes[i]);
      v->setHidePatient(hidePatient_);
      v->setSlab(slabMode_, slabMm_);
      v->setMprInteraction(true);
      keepOverlay(v);
    }
    volume3d_->setSeries(series);
    if (overlayBelongs(*series)) volume3d_->setOverlay(overlay_);
    resetMprAxes();
    setActive(0);
    return;
  }
  const int target = viewport >= 0 && viewport < 4 ? viewport : std::min(active_, 3);
  SliceView* v = slices_[static_cast<std::size_t>(target)];
  v->setSeries(series, Plane::Native);
  v->setHidePatient(hidePatient_);
  v->setMprInteraction(false);
  keepOverlay(v);
  setActive(target);
}

void ViewportGrid::replaceSeries(const std::shared_ptr<LoadedSeries>& from, std::shared_ptr<LoadedSeries> to,
                                 bool keepView) {
  if (!to || !to->volume) return;
  bool shown = false;
  for (SliceView* v : slices_)
    if (from && v->series() == from) {
      v->replaceSeries(to, keepView);
      keepOverlay(v);
      shown = true;
    }
  // While a series grows the 3D view keeps an earlier state of it, so it is matched by UID.
  const auto& in3d = volume3d_->series();
  const bool same3d = from && in3d &&
                      (in3d == from || (keepView && !in3d->derived &&
                                        in3d->info.series.seriesInstanceUid == to->info.series.seriesInstanceUid));
  if (same3d && (!keepView || to->complete)) {
    volume3d_->setSeries(to);
    if (overlayBelongs(*to)) volume3d_->setOverlay(overlay_);
  }
  if (!shown) showSeries(std::move(to));
}

void ViewportGrid::settleSeries(const std::shared_ptr<LoadedSeries>& series) {
  const auto& in3d = volume3d_->series();
  if (!series || !in3d || in3d == series || in3d->derived ||
      in3d->info.series.seriesInstanceUid != series->info.series.seriesInstanceUid)
    return;
  volume3d_->setSeries(series);
  if (overlayBelongs(*series)) volume3d_->setOverlay(overlay_);
}

void ViewportGrid::showPartial(std::shared_ptr<LoadedSeries> series, int viewport) {
  if (!series || !series->volume) return;
  const int target = layout_ == Layout::Mpr ? 0 : (viewport >= 0 && viewport < 4 ? viewport : std::min(active_, 3));
  SliceView* v = slices_[static_cast<std::size_t>(target)];
  v->setSeries(series, layout_ == Layout::Mpr ? Plane::Axial : Plane::Native);
  v->setHidePatient(hidePatient_);
  setActive(target);
}

void ViewportGrid::voxelsChanged() {
  for (auto* v : slices_)
    if (v->hasSeries()) v->voxelsChanged();
}

void ViewportGrid::resetMprAxes() {
  for (std::size_t i = 0; i < 3; ++i) mprAxes_[i] = planeAxes(static_cast<Plane>(i));
  if (auto s = mprSeries()) crosshair_ = s->volume->geometry().centerLps();
  syncMpr();
}

void ViewportGrid::syncMpr() {
  if (layout_ != Layout::Mpr) return;
  for (std::size_t i = 0; i < 3; ++i) {
    SliceView* v = slices_[i];
    if (!v->hasSeries()) continue;
    v->setAxes(mprAxes_[i]);
    // The other two planes cut this one along n_i x n_j.
    const std::size_t a = (i + 1) % 3, b = (i + 2) % 3;
    const Vec3 da = mprAxes_[i].normal.cross(mprAxes_[a].normal), db = mprAxes_[i].normal.cross(mprAxes_[b].normal);
    v->setCrosshairLines(da, kPlaneColor[a], db, kPlaneColor[b]);
    v->setCrosshair(crosshair_, true);
  }
}

void ViewportGrid::moveCrosshair(const Vec3& lps) {
  if (layout_ != Layout::Mpr) return;
  crosshair_ = lps;
  for (std::size_t i = 0; i < 3; ++i)
    if (slices_[i]->hasSeries()) slices_[i]->setCrosshair(crosshair_, true);
}

void ViewportGrid::rotateMpr(double radians, Plane around) {
  const std::size_t v = static_cast<std::size_t>(around);
  // Dragging counter-clockwise on screen (the viewer looks along +normal) turns the
  // other two planes counter-clockwise about this view's normal.
  const Mat3 r = rotation(mprAxes_[v].normal, -radians);
  for (std::size_t i = 0; i < 3; ++i) {
    if (i == v) continue;
    mprAxes_[i] = {r * mprAxes_[i].normal, r * mprAxes_[i].right, r * mprAxes_[i].up};
  }
  syncMpr();
}

void ViewportGrid::applyWindow(const WindowLevel& wl) {
  if (layout_ == Layout::Mpr) {
    for (int i = 0; i < 3; ++i) slices_[static_cast<std::size_t>(i)]->setWindowLevel(wl);
    volume3d_->setWindowLevel(wl);
  } else if (auto* v = activeSliceView()) {
    v->setWindowLevel(wl);
  }
  emit windowLevelChanged(wl);
}

void ViewportGrid::applyAutomaticWindow() {
  if (auto* v = activeSliceView(); v && v->hasSeries()) applyWindow(automaticWindow(*v->series()));
}

void ViewportGrid::toggleInvert() {
  if (layout_ == Layout::Mpr) {
    const bool on = !slices_[0]->inverted();
    for (int i = 0; i < 3; ++i) slices_[static_cast<std::size_t>(i)]->setInverted(on);
  } else if (auto* v = activeSliceView()) {
    v->setInverted(!v->inverted());
  }
}

void ViewportGrid::resetViews() {
  if (layout_ == Layout::Mpr) {
    for (int i = 0; i < 3; ++i) slices_[static_cast<std::size_t>(i)]->reset();
    resetMprAxes();
    volume3d_->resetView();
  } else if (auto* v = activeSliceView()) {
    v->reset();
  }
}

void ViewportGrid::fitViews() {
  for (int i = 0; i < visibleSliceViews(); ++i) slices_[static_cast<std::size_t>(i)]->fit();
}

void ViewportGrid::setHidePatient(bool hide) {
  hidePatient_ = hide;
  for (auto* v : slices_) v->setHidePatient(hide);
}

void ViewportGrid::setSlab(SlabMode mode, double mm) {
  slabMode_ = mode;
  slabMm_ = mm;
  if (layout_ == Layout::Mpr) {
    for (int i = 0; i < 3; ++i) slices_[static_cast<std::size_t>(i)]->setSlab(mode, mm);
  } else if (auto* v = activeSliceView()) {
    v->setSlab(mode, mm);
  }
}

void ViewportGrid::setOverlay(std::shared_ptr<LabelOverlay> overlay) {
  overlay_ = overlay;
  SliceView* a = activeSliceView();
  overlaySeries_ = a && a->hasSeries() ? a->series()->info.series.seriesInstanceUid : std::string();
  for (auto* v : slices_)
    if (v->hasSeries()) v->setOverlay(overlay);
  if (volume3d_->series()) volume3d_->setOverlay(overlay);
}

bool ViewportGrid::overlayBelongs(const LoadedSeries& s) const {
  if (!overlay_ || !overlay_->labels || !s.volume) return false;
  return (!overlaySeries_.empty() && s.info.series.seriesInstanceUid == overlaySeries_) ||
         sameGrid(overlay_->labels->geometry(), s.volume->geometry(), 0.01);
}

void ViewportGrid::keepOverlay(SliceView* v) {
  if (v->hasSeries() && overlayBelongs(*v->series())) v->setOverlay(overlay_);
}

void ViewportGrid::overlayAppearanceChanged() {
  for (auto* v : slices_) v->updateOverlayAppearance();
  volume3d_->updateOverlayAppearance();
}

void ViewportGrid::overlayVoxelsChanged() {
  for (SliceView* v : slices_) v->overlayVoxelsChanged();
  // The 3D surfaces are extracted again from the whole map: once painting pauses, not per dab.
  if (!surfaceTimer_) {
    surfaceTimer_ = new QTimer(this);
    surfaceTimer_->setSingleShot(true);
    surfaceTimer_->setInterval(400);
    connect(surfaceTimer_, &QTimer::timeout, this, [this] { volume3d_->overlayVoxelsChanged(); });
  }
  surfaceTimer_->start();
}

}  // namespace lumen::gui
