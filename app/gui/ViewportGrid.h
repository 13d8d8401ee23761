#pragma once
// The viewports and their layout: 1x1, 1x2, 2x2 (independent 2D views, each can show
// another series: drop one on it) and MPR (axial, coronal, sagittal and 3D of one
// series, with a shared crosshair, oblique rotation and slab).

#include <QFrame>
#include <QStringList>
#include <QWidget>

#include <array>
#include <memory>
#include <string>

#include "SliceView.h"
#include "ViewModel.h"
#include "VolumeView3D.h"

class QGridLayout;
class QTimer;

namespace lumen::gui {

enum class Layout { One, OneByTwo, TwoByTwo, Mpr };
const char* toString(Layout l);
bool parseLayout(const QString& s, Layout& out);

/// A frame around a viewport: highlights the active one, accepts dropped series.
class ViewportFrame : public QFrame {
  Q_OBJECT
 public:
  ViewportFrame(int index, QWidget* content, QWidget* parent = nullptr);
  void setActive(bool on);
  int index() const { return index_; }

 signals:
  /// Files or a Lumen series dragged from the study browser were dropped here.
  void dropped(int index, const QStringList& paths);

 protected:
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;

 private:
  int index_;
};

class ViewportGrid : public QWidget {
  Q_OBJECT
 public:
  explicit ViewportGrid(QWidget* parent = nullptr);

  void setLayoutMode(Layout layout);
  Layout layoutMode() const { return layout_; }

  /// Shows `series` in the active viewport (grid layouts) or in all four (MPR).
  void showSeries(std::shared_ptr<LoadedSeries> series, int viewport = -1);
  /// Puts `to` wherever `from` is shown, keeping each view's slice, zoom and window when
  /// the grids match (an enhanced version of the same series); else shows `to` in the
  /// active viewport.
  /// With `keepView`, slice views keep their place on another grid too (see
  /// SliceView::replaceSeries), and the 3D view changes only once `to` is complete (a
  /// volume upload costs seconds under software OpenGL).
  void replaceSeries(const std::shared_ptr<LoadedSeries>& from, std::shared_ptr<LoadedSeries> to, bool keepView = false);
  /// `series` became complete: a 3D view that shows an earlier state of it (by UID) shows
  /// it now.
  void settleSeries(const std::shared_ptr<LoadedSeries>& series);
  /// The first image of a series still loading: shown in the target viewport only.
  void showPartial(std::shared_ptr<LoadedSeries> series, int viewport = -1);
  void voxelsChanged();

  SliceView* activeSliceView() const;
  SliceView* sliceView(int i) const { return slices_[static_cast<std::size_t>(i)]; }
  VolumeView3D* volumeView() const { return volume3d_; }
  int activeIndex() const { return active_; }
  int visibleSliceViews() const;

  // Actions applied to the active view (and, in MPR, to the 2D views of its series).
  void applyWindow(const WindowLevel& wl);
  void applyAutomaticWindow();
  void toggleInvert();
  void resetViews();
  void fitViews();
  void setHidePatient(bool hide);
  void setSlab(SlabMode mode, double mm);
  void setOverlay(std::shared_ptr<LabelOverlay> overlay);
  void overlayAppearanceChanged();
  /// The overlay's voxels were edited: every 2D view redraws it.
  void overlayVoxelsChanged();

  // MPR
  const Vec3& crosshair() const { return crosshair_; }
  void moveCrosshair(const Vec3& lps);
  void rotateMpr(double radians, Plane around);
  void resetMprAxes();

 signals:
  void activeViewChanged(int index);
  void dropped(int viewport, const QStringList& paths);
  void windowLevelChanged(const lumen::gui::WindowLevel& wl);

 private:
  void rebuild();
  void setActive(int index);
  void syncMpr();
  std::shared_ptr<LoadedSeries> mprSeries() const;

  Layout layout_ = Layout::One;
  QGridLayout* grid_ = nullptr;
  std::array<SliceView*, 4> slices_{};
  VolumeView3D* volume3d_ = nullptr;
  std::array<ViewportFrame*, 4> frames_{};
  ViewportFrame* frame3d_ = nullptr;
  int active_ = 0;
  // MPR state: crosshair and each plane's own (possibly rotated) axes.
  Vec3 crosshair_;
  std::array<PlaneAxes, 3> mprAxes_;
  bool hidePatient_ = false;
  SlabMode slabMode_ = SlabMode::None;
  double slabMm_ = 0.0;
  QTimer* surfaceTimer_ = nullptr;
  // The label map shown, kept for views that get a series later (a layout change, MPR):
  // it follows to views of its own series or grid.
  std::shared_ptr<LabelOverlay> overlay_;
  std::string overlaySeries_;
  bool overlayBelongs(const LoadedSeries& s) const;
  void keepOverlay(SliceView* v);
};

/// MIME type of a study-browser series drag: one file path per line.
inline constexpr const char* kSeriesMimeType = "application/x-lumen-series";

}  // namespace lumen::gui
