#pragma once
// The 3D viewport: volume rendering (VTK's GPU ray caster through vtkSmartVolumeMapper,
// which falls back to the CPU ray caster when OpenGL cannot), presets, MIP, clipping
// box, label surfaces. Rotate / zoom / pan go to VTK's trackball camera style.

#include <memory>
#include <string>
#include <vector>

#include <vtkSmartPointer.h>

#include "ViewModel.h"
#include "VtkImage.h"
#include "VtkWidget.h"

class vtkActor;
class vtkBoxWidget2;
class vtkSmartVolumeMapper;
class vtkVolume;
class vtkVolumeProperty;
class vtkTextActor;

namespace lumen::gui {

enum class VolumePreset { CtBone, CtSoftTissue, CtAngio, MrDefault, Mip };
const char* toString(VolumePreset p);
/// Preset by case-insensitive name ("ct-bone", "bone", "mip", ...); false when unknown.
bool findVolumePreset(const std::string& name, VolumePreset& out);

class VolumeView3D : public VtkWidget {
  Q_OBJECT
 public:
  explicit VolumeView3D(QWidget* parent = nullptr);
  ~VolumeView3D() override;

  void setSeries(std::shared_ptr<LoadedSeries> series);
  void clear();
  const std::shared_ptr<LoadedSeries>& series() const { return series_; }

  void setPreset(VolumePreset p);
  VolumePreset preset() const { return preset_; }
  /// MIP uses this window; the other presets ignore it.
  void setWindowLevel(const WindowLevel& wl);
  void setClippingBox(bool on);
  bool clippingBox() const { return clipping_; }
  /// Puts the clipping box at LPS bounds (xmin, xmax, ymin, ymax, zmin, zmax) and turns it on.
  void placeClippingBox(const double bounds[6]);
  /// The clipping box's six planes (a point and the outward normal, LPS); false when off.
  bool clippingPlanes(std::vector<std::pair<Vec3, Vec3>>& planes) const;
  void resetView();
  void setOverlay(std::shared_ptr<LabelOverlay> overlay);
  void updateOverlayAppearance();
  /// The label voxels were edited: the surfaces are extracted again at the next frame.
  void overlayVoxelsChanged();
  /// Which mapper actually renders: "GPU ray cast" or "CPU ray cast".
  std::string renderModeName() const;
  void voxelsChanged();
  /// A new series is first drawn as a quick draft (half the resolution in-plane, no
  /// shading: a fraction of the time under software OpenGL), then refined in the next
  /// frame. Off: the first frame is the final one (screenshots want only that).
  void setDraftFirst(bool on) { draftFirst_ = on; }
  /// True from a new series until its full-quality frame has been drawn.
  bool refining() const { return draftPending_ || refinePending_; }

 signals:
  void activated(lumen::gui::VolumeView3D* view);
  // The preset in use changed (setPreset, or a new series chose its own): for the toolbar.
  void presetChanged(lumen::gui::VolumePreset preset);
  /// The full-quality frame of the series is on screen (after its draft, if any).
  void refined();

 protected:
  void mousePressEvent(QMouseEvent* e) override;
  void paintGL() override;
  vtkMTimeType sceneMTime() const override;

 private:
  void applyPreset();
  void updateClipping();

  std::shared_ptr<LoadedSeries> series_;
  std::shared_ptr<LabelOverlay> overlay_;
  VtkImage vtkImage_, vtkOverlay_;
  VolumePreset preset_ = VolumePreset::CtBone;
  WindowLevel wl_;
  bool clipping_ = false;
  bool draftFirst_ = true;
  bool draftPending_ = false;   // the next frame of a new series is a draft
  bool refinePending_ = false;  // a full-quality frame is still to come

  vtkSmartPointer<vtkSmartVolumeMapper> mapper_;
  vtkSmartPointer<vtkVolume> volume_;
  vtkSmartPointer<vtkVolume> draftVolume_;  // the draft: a subsampled copy (paintGL)
  vtkSmartPointer<vtkVolumeProperty> property_;
  vtkSmartPointer<vtkBoxWidget2> box_;
  std::vector<vtkSmartPointer<vtkActor>> labelActors_;
  std::vector<int> labelValues_;  // the label each actor draws
  vtkSmartPointer<vtkTextActor> info_;
};

}  // namespace lumen::gui
