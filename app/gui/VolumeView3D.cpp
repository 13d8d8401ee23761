#include "VolumeView3D.h"

#include <QMouseEvent>
#include <QTimer>

#include <vtkActor.h>
#include <vtkBoxRepresentation.h>
#include <vtkPlane.h>
#include <vtkBoxWidget2.h>
#include <vtkCallbackCommand.h>
#include <vtkCamera.h>
#include <vtkColorTransferFunction.h>
#include <vtkDiscreteFlyingEdges3D.h>
#include <vtkGenericOpenGLRenderWindow.h>
#include <vtkGenericRenderWindowInteractor.h>
#include <vtkImageData.h>
#include <vtkImageShrink3D.h>
#include <vtkInteractorStyleTrackballCamera.h>
#include <vtkMatrix4x4.h>
#include <vtkPiecewiseFunction.h>
#include <vtkPlanes.h>
#include <vtkPolyDataMapper.h>
#include <vtkProperty.h>
#include <vtkRenderer.h>
#include <vtkSmartVolumeMapper.h>
#include <vtkTextActor.h>
#include <vtkTextProperty.h>
#include <vtkTransform.h>
#include <vtkVolume.h>
#include <vtkVolumeProperty.h>
#include <vtkWindowedSincPolyDataFilter.h>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace lumen::gui {

const char* toString(VolumePreset p) {
  switch (p) {
    case VolumePreset::CtBone: return "CT bone";
    case VolumePreset::CtSoftTissue: return "CT soft tissue";
    case VolumePreset::CtAngio: return "CT angio";
    case VolumePreset::MrDefault: return "MR default";
    case VolumePreset::Mip: return "MIP";
  }
  return "?";
}

bool findVolumePreset(const std::string& name, VolumePreset& out) {
  std::string n;
  for (char c : name)
    if (std::isalnum(static_cast<unsigned char>(c))) n += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (n == "ctbone" || n == "bone3d" || n == "vrbone") out = VolumePreset::CtBone;
  else if (n == "ctsofttissue" || n == "softtissue" || n == "ctsoft") out = VolumePreset::CtSoftTissue;
  else if (n == "ctangio" || n == "angio") out = VolumePreset::CtAngio;
  else if (n == "mrdefault" || n == "mr") out = VolumePreset::MrDefault;
  else if (n == "mip") out = VolumePreset::Mip;
  else return false;
  return true;
}

VolumeView3D::VolumeView3D(QWidget* parent) : VtkWidget(parent) {
  // Keep the framebuffer between frames, so that a grab of an unchanged view can use it
  // (VtkWidget::paintGL, sceneMTime). Only here: keeping it costs the slice views a load of
  // the old contents on every frame under llvmpipe.
  setUpdateBehavior(QOpenGLWidget::PartialUpdate);
  setForwardInputToVtk(true);
  auto style = vtkSmartPointer<vtkInteractorStyleTrackballCamera>::New();
  interactor()->SetInteractorStyle(style);
  renderer()->SetBackground(0.02, 0.02, 0.03);
  renderer()->SetBackground2(0.12, 0.12, 0.16);
  renderer()->GradientBackgroundOn();

  mapper_ = vtkSmartPointer<vtkSmartVolumeMapper>::New();
  // GPU ray casting when OpenGL can, CPU ray casting otherwise.
  mapper_->SetRequestedRenderModeToDefault();
  mapper_->SetInteractiveUpdateRate(8.0);
  mapper_->AutoAdjustSampleDistancesOn();
  property_ = vtkSmartPointer<vtkVolumeProperty>::New();
  property_->SetInterpolationTypeToLinear();
  volume_ = vtkSmartPointer<vtkVolume>::New();
  volume_->SetMapper(mapper_);
  volume_->SetProperty(property_);
  volume_->VisibilityOff();
  renderer()->AddVolume(volume_);
  draftVolume_ = vtkSmartPointer<vtkVolume>::New();  // its mapper exists only for a draft
  draftVolume_->SetProperty(property_);
  draftVolume_->VisibilityOff();
  renderer()->AddVolume(draftVolume_);

  info_ = vtkSmartPointer<vtkTextActor>::New();
  info_->GetTextProperty()->SetFontSize(13);
  info_->GetTextProperty()->SetColor(0.86, 0.86, 0.86);
  info_->GetTextProperty()->SetShadow(true);
  info_->SetDisplayPosition(8, 8);
  renderer()->AddViewProp(info_);

  box_ = vtkSmartPointer<vtkBoxWidget2>::New();
  box_->SetInteractor(interactor());
  auto rep = vtkSmartPointer<vtkBoxRepresentation>::New();
  rep->SetPlaceFactor(1.0);
  rep->GetOutlineProperty()->SetColor(0.9, 0.8, 0.2);
  box_->SetRepresentation(rep);
  auto onBox = vtkSmartPointer<vtkCallbackCommand>::New();
  onBox->SetClientData(this);
  onBox->SetCallback([](vtkObject*, unsigned long, void* self, void*) { static_cast<VolumeView3D*>(self)->updateClipping(); });
  box_->AddObserver(vtkCommand::InteractionEvent, onBox);
  clear();
}

VolumeView3D::~VolumeView3D() {
  if (box_) box_->Off();
}

void VolumeView3D::clear() {
  series_.reset();
  draftPending_ = refinePending_ = false;
  vtkImage_ = {};
  volume_->VisibilityOff();
  mapper_->RemoveAllInputConnections(0);
  setOverlay(nullptr);
  if (box_) box_->Off();
  clipping_ = false;
  info_->SetInput("3D: drop a series here");
  update();
}

void VolumeView3D::setSeries(std::shared_ptr<LoadedSeries> series) {
  if (!series || !series->volume) return clear();
  series_ = std::move(series);
  vtkImage_ = wrapForVtk(series_->volume);
  mapper_->SetInputData(vtkImage_.image);
  volume_->SetUserMatrix(vtkImage_.matrix);
  volume_->VisibilityOn();
  wl_ = defaultWindow(*series_);
  preset_ = series_->isCt() ? VolumePreset::CtBone : VolumePreset::MrDefault;
  draftPending_ = draftFirst_;
  refinePending_ = true;
  applyPreset();
  resetView();
  emit presetChanged(preset_);
}

void VolumeView3D::setPreset(VolumePreset p) {
  preset_ = p;
  applyPreset();
  emit presetChanged(preset_);
}

void VolumeView3D::setWindowLevel(const WindowLevel& wl) {
  wl_ = wl;
  if (preset_ == VolumePreset::Mip) applyPreset();
}

void VolumeView3D::applyPreset() {
  if (!series_) return;
  auto color = vtkSmartPointer<vtkColorTransferFunction>::New();
  auto opacity = vtkSmartPointer<vtkPiecewiseFunction>::New();
  mapper_->SetBlendModeToComposite();
  property_->ShadeOn();
  property_->SetAmbient(0.25);
  property_->SetDiffuse(0.75);
  property_->SetSpecular(0.2);
  property_->SetSpecularPower(16);
  const double lo = series_->lowPercentile, hi = std::max(series_->highPercentile, lo + 1.0);
  switch (preset_) {
    case VolumePreset::CtBone:
      opacity->AddPoint(-1024, 0.0);
      opacity->AddPoint(150, 0.0);
      opacity->AddPoint(300, 0.15);
      opacity->AddPoint(600, 0.55);
      opacity->AddPoint(1500, 0.85);
      color->AddRGBPoint(150, 0.55, 0.35, 0.25);
      color->AddRGBPoint(400, 0.93, 0.86, 0.74);
      color->AddRGBPoint(1500, 1.0, 1.0, 0.96);
      break;
    case VolumePreset::CtSoftTissue:
      opacity->AddPoint(-1024, 0.0);
      opacity->AddPoint(-500, 0.0);
      opacity->AddPoint(-200, 0.02);
      opacity->AddPoint(-50, 0.06);
      opacity->AddPoint(60, 0.18);
      opacity->AddPoint(300, 0.35);
      opacity->AddPoint(1200, 0.8);
      color->AddRGBPoint(-500, 0.55, 0.25, 0.15);
      color->AddRGBPoint(-100, 0.85, 0.6, 0.45);
      color->AddRGBPoint(60, 0.8, 0.35, 0.3);
      color->AddRGBPoint(300, 0.95, 0.9, 0.8);
      color->AddRGBPoint(1200, 1.0, 1.0, 1.0);
      break;
    case VolumePreset::CtAngio:
      opacity->AddPoint(-1024, 0.0);
      opacity->AddPoint(120, 0.0);
      opacity->AddPoint(200, 0.25);
      opacity->AddPoint(450, 0.7);
      opacity->AddPoint(1500, 0.9);
      color->AddRGBPoint(120, 0.6, 0.05, 0.05);
      color->AddRGBPoint(300, 0.95, 0.3, 0.2);
      color->AddRGBPoint(700, 1.0, 0.95, 0.85);
      break;
    case VolumePreset::MrDefault:
      opacity->AddPoint(series_->minValue, 0.0);
      opacity->AddPoint(lo + 0.15 * (hi - lo), 0.0);
      opacity->AddPoint(lo + 0.5 * (hi - lo), 0.25);
      opacity->AddPoint(hi, 0.6);
      color->AddRGBPoint(lo, 0.2, 0.15, 0.1);
      color->AddRGBPoint(lo + 0.5 * (hi - lo), 0.8, 0.7, 0.6);
      color->AddRGBPoint(hi, 1.0, 1.0, 1.0);
      break;
    case VolumePreset::Mip: {
      mapper_->SetBlendModeToMaximumIntensity();
      property_->ShadeOff();
      const double a = wl_.center - wl_.width / 2, b = wl_.center + wl_.width / 2;
      color->AddRGBPoint(a, 0, 0, 0);
      color->AddRGBPoint(b, 1, 1, 1);
      opacity->AddPoint(a, 0.0);
      opacity->AddPoint(b, 1.0);
      break;
    }
  }
  property_->SetColor(color);
  property_->SetScalarOpacity(opacity);
  info_->SetInput((std::string("3D  ") + toString(preset_) + "  (" + renderModeName() + ")").c_str());
  update();
}

std::string VolumeView3D::renderModeName() const {
  // Before the first render the mapper reports what it was asked for.
  return mapper_->GetLastUsedRenderMode() == vtkSmartVolumeMapper::RayCastRenderMode ? "CPU ray cast" : "GPU ray cast";
}

void VolumeView3D::resetView() {
  if (!series_) return;
  renderer()->ResetCamera();
  vtkCamera* cam = renderer()->GetActiveCamera();
  double f[3];
  cam->GetFocalPoint(f);
  const double d = cam->GetDistance();
  // Patient facing the viewer: camera anterior (-P), superior up.
  cam->SetPosition(f[0], f[1] - d, f[2]);
  cam->SetViewUp(0, 0, 1);
  renderer()->ResetCamera();
  cam->Zoom(1.3);
  renderer()->ResetCameraClippingRange();
  update();
}

void VolumeView3D::setClippingBox(bool on) {
  renderer()->Modified();  // the box widget shown or hidden (sceneMTime)
  clipping_ = on && series_;
  if (!series_) return;
  if (clipping_) {
    double b[6];
    volume_->GetBounds(b);
    box_->GetRepresentation()->PlaceWidget(b);
    box_->On();
  } else {
    box_->Off();
    mapper_->RemoveAllClippingPlanes();
  }
  updateClipping();
  update();
}

void VolumeView3D::placeClippingBox(const double bounds[6]) {
  setClippingBox(true);
  if (!clipping_) return;
  double b[6];
  std::copy(bounds, bounds + 6, b);
  box_->GetRepresentation()->PlaceWidget(b);
  updateClipping();
}

bool VolumeView3D::clippingPlanes(std::vector<std::pair<Vec3, Vec3>>& out) const {
  out.clear();
  if (!clipping_) return false;
  auto planes = vtkSmartPointer<vtkPlanes>::New();
  static_cast<vtkBoxRepresentation*>(box_->GetRepresentation())->GetPlanes(planes);
  for (int i = 0; i < planes->GetNumberOfPlanes(); ++i) {
    double o[3], n[3];
    planes->GetPlane(i)->GetOrigin(o);
    planes->GetPlane(i)->GetNormal(n);
    out.push_back({Vec3{o[0], o[1], o[2]}, Vec3{n[0], n[1], n[2]}});
  }
  return true;
}

void VolumeView3D::updateClipping() {
  if (!clipping_) return;
  auto planes = vtkSmartPointer<vtkPlanes>::New();
  static_cast<vtkBoxRepresentation*>(box_->GetRepresentation())->GetPlanes(planes);
  mapper_->SetClippingPlanes(planes);
  update();
}

void VolumeView3D::setOverlay(std::shared_ptr<LabelOverlay> overlay) {
  for (auto& a : labelActors_) renderer()->RemoveActor(a);
  labelActors_.clear();
  labelValues_.clear();
  renderer()->Modified();  // removing a prop modifies nothing that sceneMTime sees
  overlay_ = std::move(overlay);
  vtkOverlay_ = {};
  if (overlay_ && overlay_->labels) {
    vtkOverlay_ = wrapForVtk(overlay_->labels);
    // One smoothed surface per label, placed by the label map's own matrix.
    for (const auto& e : overlay_->entries) {
      auto fe = vtkSmartPointer<vtkDiscreteFlyingEdges3D>::New();
      fe->SetInputData(vtkOverlay_.image);
      fe->SetValue(0, e.value);
      fe->ComputeNormalsOff();
      auto smooth = vtkSmartPointer<vtkWindowedSincPolyDataFilter>::New();
      smooth->SetInputConnection(fe->GetOutputPort());
      smooth->SetNumberOfIterations(12);
      smooth->NonManifoldSmoothingOn();
      smooth->NormalizeCoordinatesOn();
      auto mapper = vtkSmartPointer<vtkPolyDataMapper>::New();
      mapper->SetInputConnection(smooth->GetOutputPort());
      mapper->ScalarVisibilityOff();
      auto actor = vtkSmartPointer<vtkActor>::New();
      actor->SetMapper(mapper);
      actor->SetUserMatrix(vtkOverlay_.matrix);
      actor->GetProperty()->SetColor(e.color.r / 255.0, e.color.g / 255.0, e.color.b / 255.0);
      renderer()->AddActor(actor);
      labelActors_.push_back(actor);
      labelValues_.push_back(e.value);
    }
  }
  updateOverlayAppearance();
}

void VolumeView3D::updateOverlayAppearance() {
  if (!overlay_) return update();
  // Labels added or removed since the surfaces were built (the label editor): build again.
  std::vector<int> values;
  for (const auto& e : overlay_->entries) values.push_back(e.value);
  if (values != labelValues_) return setOverlay(overlay_);
  for (std::size_t i = 0; i < labelActors_.size(); ++i) {
    const auto& e = overlay_->entries[i];
    labelActors_[i]->SetVisibility(e.visible);
    labelActors_[i]->GetProperty()->SetColor(e.color.r / 255.0, e.color.g / 255.0, e.color.b / 255.0);
    labelActors_[i]->GetProperty()->SetOpacity(std::clamp(overlay_->opacity * 2.0, 0.2, 1.0) * e.opacity);
  }
  update();
}

void VolumeView3D::overlayVoxelsChanged() {
  if (!overlay_) return;
  markModified(vtkOverlay_);
  update();
}

void VolumeView3D::voxelsChanged() {
  markModified(vtkImage_);
  update();
}

void VolumeView3D::paintGL() {
  // Shading (a gradient and lighting at every sample) and uploading the whole volume into a
  // 3D texture are most of a first frame's cost under software OpenGL. The draft is an
  // unshaded copy subsampled 2 x 2 in-plane, shown early; the full frame follows at once.
  const bool draft = draftPending_ && series_ && property_->GetShade();
  if (draft) {
    auto shrink = vtkSmartPointer<vtkImageShrink3D>::New();
    shrink->SetInputData(vtkImage_.image);
    shrink->SetShrinkFactors(2, 2, 1);
    shrink->AveragingOff();
    shrink->Update();
    auto draftMapper = vtkSmartPointer<vtkSmartVolumeMapper>::New();
    draftMapper->SetRequestedRenderModeToDefault();
    draftMapper->SetInputData(shrink->GetOutput());
    draftVolume_->SetMapper(draftMapper);
    draftVolume_->SetUserMatrix(vtkImage_.matrix);
    draftVolume_->VisibilityOn();
    volume_->VisibilityOff();
    property_->ShadeOff();
  }
  VtkWidget::paintGL();
  if (draft) {
    draftVolume_->VisibilityOff();
    // The mapper goes, with its textures (the context is current here) and its copy.
    draftVolume_->GetMapper()->ReleaseGraphicsResources(renderWindow());
    draftVolume_->SetMapper(nullptr);
    volume_->VisibilityOn();
    property_->ShadeOn();
  }
  if (!lastPaintRendered()) return;
  if (draft) {
    draftPending_ = false;
    QTimer::singleShot(0, this, [this] { update(); });
    return;
  }
  draftPending_ = false;
  if (refinePending_) {
    refinePending_ = false;
    emit refined();
  }
}

vtkMTimeType VolumeView3D::sceneMTime() const {
  // Everything this view draws: the volume (mapper, input, property and its transfer
  // functions), label surfaces, the text, the clipping box, the camera, the renderer.
  vtkRenderer* r = renderer();
  vtkMTimeType t = std::max({r->GetMTime(), r->GetActiveCamera()->GetMTime(), volume_->GetRedrawMTime(), info_->GetMTime()});
  for (const auto& a : labelActors_) t = std::max(t, a->GetRedrawMTime());
  if (box_) t = std::max({t, box_->GetMTime(), box_->GetRepresentation()->GetMTime()});
  return t;
}

void VolumeView3D::mousePressEvent(QMouseEvent* e) {
  emit activated(this);
  VtkWidget::mousePressEvent(e);
}

}  // namespace lumen::gui
