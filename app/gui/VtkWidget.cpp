#include "VtkWidget.h"

#include <QKeyEvent>
#include <QMouseEvent>
#include <QOpenGLContext>
#include <QOpenGLFunctions>
#include <QSurfaceFormat>
#include <QWheelEvent>

#include <vtkCallbackCommand.h>
#include <vtkCommand.h>
#include <vtkGenericOpenGLRenderWindow.h>
#include <vtkGenericRenderWindowInteractor.h>
#include <vtkInteractorStyleTrackballCamera.h>
#include <vtkRenderer.h>

namespace lumen::gui {

void VtkWidget::configureDefaultSurfaceFormat() {
  QSurfaceFormat f;
  f.setRenderableType(QSurfaceFormat::OpenGL);
  f.setVersion(3, 2);
  f.setProfile(QSurfaceFormat::CoreProfile);
  f.setDepthBufferSize(24);
  f.setStencilBufferSize(8);
  f.setSamples(0);
  QSurfaceFormat::setDefaultFormat(f);
}

VtkWidget::VtkWidget(QWidget* parent) : QOpenGLWidget(parent) {
  window_ = vtkSmartPointer<vtkGenericOpenGLRenderWindow>::New();
  renderer_ = vtkSmartPointer<vtkRenderer>::New();
  // Opaque: with VTK's default alpha of 0, Qt would compose the view as transparent.
  renderer_->SetBackgroundAlpha(1.0);
  window_->AddRenderer(renderer_);
  interactor_ = vtkSmartPointer<vtkGenericRenderWindowInteractor>::New();
  interactor_->SetRenderWindow(window_);
  // VTK must not render outside paintGL: its render requests become Qt updates.
  interactor_->EnableRenderOff();
  auto* onRender = vtkCallbackCommand::New();
  onRender->SetClientData(this);
  onRender->SetCallback([](vtkObject*, unsigned long, void* self, void*) { static_cast<VtkWidget*>(self)->update(); });
  interactor_->AddObserver(vtkCommand::RenderEvent, onRender);
  onRender->Delete();
  // VTK asks for its context to be current: make the widget's context current, without
  // QOpenGLWidget::makeCurrent(), which would also rebind Qt's framebuffer in the middle
  // of VTK's rendering.
  auto* makeCurrent = vtkCallbackCommand::New();
  makeCurrent->SetClientData(this);
  makeCurrent->SetCallback([](vtkObject*, unsigned long, void* self, void*) {
    auto* w = static_cast<VtkWidget*>(self);
    if (QOpenGLContext* c = w->context(); c && QOpenGLContext::currentContext() != c) c->makeCurrent(c->surface());
  });
  window_->AddObserver(vtkCommand::WindowMakeCurrentEvent, makeCurrent);
  makeCurrent->Delete();
  setFocusPolicy(Qt::StrongFocus);
  setMouseTracking(true);
  setMinimumSize(64, 64);
}

VtkWidget::~VtkWidget() {
  makeCurrent();
  window_->Finalize();
  doneCurrent();
}

vtkGenericOpenGLRenderWindow* VtkWidget::renderWindow() const { return window_; }
vtkGenericRenderWindowInteractor* VtkWidget::interactor() const { return interactor_; }
vtkRenderer* VtkWidget::renderer() const { return renderer_; }
int VtkWidget::multiSamples() const { return window_->GetMultiSamples(); }

int VtkWidget::requestedSamples_ = -1;

void VtkWidget::setRequestedMultiSamples(int samples) { requestedSamples_ = samples; }

bool VtkWidget::isSoftwareRenderer(const char* glRenderer) {
  if (!glRenderer) return false;
  const QByteArray r = QByteArray(glRenderer).toLower();
  return r.contains("llvmpipe") || r.contains("softpipe") || r.contains("swrast") || r.contains("software rasterizer") ||
         r.contains("swiftshader");
}

void VtkWidget::initializeGL() {
  // VTK draws into a multisampled framebuffer by default (8 samples asked for, as many as
  // the driver offers: 4 under llvmpipe). A software rasteriser pays
  // for every sample (measured: a 512 x 512 slice view's frame 16.7 ms with, 6.0 ms
  // without, Mesa llvmpipe on two cores), so there the views draw single-sampled and only
  // the edges of lines lose their smoothing; texture pixels are the same either way.
  if (requestedSamples_ >= 0)
    window_->SetMultiSamples(requestedSamples_);
  else if (isSoftwareRenderer(reinterpret_cast<const char*>(context()->functions()->glGetString(GL_RENDERER))))
    window_->SetMultiSamples(0);
  // PLATFORM.md's recipe: VTK renders into its framebuffer and blits into the one Qt
  // bound for this widget.
  window_->SetOwnContext(false);
  window_->SetFrameBlitModeToBlitToCurrent();
  window_->SetIsCurrent(true);
  window_->OpenGLInitContext();
  window_->SetReadyForRendering(true);
  initialized_ = true;
  hasFrame_ = false;  // a new context has a new, empty framebuffer
}

void VtkWidget::resizeGL(int w, int h) {
  const qreal dpr = devicePixelRatioF();
  interactor_->UpdateSize(static_cast<int>(w * dpr), static_cast<int>(h * dpr));
}

void VtkWidget::paintEvent(QPaintEvent* e) {
  mustRender_ = true;
  QOpenGLWidget::paintEvent(e);
  mustRender_ = false;
}

void VtkWidget::paintGL() {
  lastPaintRendered_ = false;
  if (!initialized_) return;
  const qreal dpr = devicePixelRatioF();
  const QSize px(static_cast<int>(width() * dpr), static_cast<int>(height() * dpr));
  // A grab (screenshot) asks for a frame outside a paint event. When nothing drawn has
  // changed since the last frame, that frame is still in the framebuffer (PartialUpdate)
  // and is used as it is: under software OpenGL a 3D view takes seconds to render again.
  const vtkMTimeType scene = mustRender_ ? 0 : sceneMTime();
  if (scene != 0 && hasFrame_ && px == framePx_ && scene == frameMTime_) return;
  window_->SetSize(px.width(), px.height());
  window_->SetIsCurrent(true);
  window_->Render();
  hasFrame_ = true;
  framePx_ = px;
  frameMTime_ = sceneMTime();  // after the frame: rendering itself modifies (clipping range)
  lastPaintRendered_ = true;
  emit frameRendered();
}

void VtkWidget::renderNow() {
  // Draw into the widget's framebuffer now and wait for the GPU (Mesa: the CPU) to
  // finish, so that a caller can time it; the window is updated by the next paint.
  makeCurrent();
  mustRender_ = true;
  paintGL();
  mustRender_ = false;
  context()->functions()->glFinish();
  doneCurrent();
  update();
}

QPointF VtkWidget::toVtk(const QPointF& p) const {
  const qreal dpr = devicePixelRatioF();
  return {p.x() * dpr, (height() - p.y()) * dpr - 1};
}

void VtkWidget::forwardMouse(QMouseEvent* e, unsigned long event) {
  const QPointF p = toVtk(e->position());
  interactor_->SetEventInformation(static_cast<int>(p.x()), static_cast<int>(p.y()),
                                   (e->modifiers() & Qt::ControlModifier) ? 1 : 0,
                                   (e->modifiers() & Qt::ShiftModifier) ? 1 : 0, 0, 0);
  interactor_->SetAltKey((e->modifiers() & Qt::AltModifier) ? 1 : 0);
  interactor_->InvokeEvent(event, e);
}

void VtkWidget::mousePressEvent(QMouseEvent* e) {
  if (!forward_) return QOpenGLWidget::mousePressEvent(e);
  switch (e->button()) {
    case Qt::LeftButton: forwardMouse(e, vtkCommand::LeftButtonPressEvent); break;
    case Qt::MiddleButton: forwardMouse(e, vtkCommand::MiddleButtonPressEvent); break;
    case Qt::RightButton: forwardMouse(e, vtkCommand::RightButtonPressEvent); break;
    default: break;
  }
}

void VtkWidget::mouseReleaseEvent(QMouseEvent* e) {
  if (!forward_) return QOpenGLWidget::mouseReleaseEvent(e);
  switch (e->button()) {
    case Qt::LeftButton: forwardMouse(e, vtkCommand::LeftButtonReleaseEvent); break;
    case Qt::MiddleButton: forwardMouse(e, vtkCommand::MiddleButtonReleaseEvent); break;
    case Qt::RightButton: forwardMouse(e, vtkCommand::RightButtonReleaseEvent); break;
    default: break;
  }
}

void VtkWidget::mouseMoveEvent(QMouseEvent* e) {
  if (!forward_) return QOpenGLWidget::mouseMoveEvent(e);
  forwardMouse(e, vtkCommand::MouseMoveEvent);
}

void VtkWidget::wheelEvent(QWheelEvent* e) {
  if (!forward_) return QOpenGLWidget::wheelEvent(e);
  const QPointF p = toVtk(e->position());
  interactor_->SetEventInformation(static_cast<int>(p.x()), static_cast<int>(p.y()),
                                   (e->modifiers() & Qt::ControlModifier) ? 1 : 0,
                                   (e->modifiers() & Qt::ShiftModifier) ? 1 : 0);
  interactor_->InvokeEvent(e->angleDelta().y() > 0 ? vtkCommand::MouseWheelForwardEvent
                                                   : vtkCommand::MouseWheelBackwardEvent,
                           e);
}

void VtkWidget::keyPressEvent(QKeyEvent* e) {
  if (!forward_) return QOpenGLWidget::keyPressEvent(e);
  const QString t = e->text();
  const char c = t.isEmpty() ? 0 : t.at(0).toLatin1();
  interactor_->SetKeyEventInformation((e->modifiers() & Qt::ControlModifier) ? 1 : 0,
                                      (e->modifiers() & Qt::ShiftModifier) ? 1 : 0, c, 1, t.toUtf8().constData());
  interactor_->InvokeEvent(vtkCommand::KeyPressEvent, e);
  interactor_->InvokeEvent(vtkCommand::CharEvent, e);
}

void VtkWidget::keyReleaseEvent(QKeyEvent* e) {
  if (!forward_) return QOpenGLWidget::keyReleaseEvent(e);
  interactor_->InvokeEvent(vtkCommand::KeyReleaseEvent, e);
}

void VtkWidget::enterEvent(QEnterEvent* e) {
  if (forward_) interactor_->InvokeEvent(vtkCommand::EnterEvent, e);
  QOpenGLWidget::enterEvent(e);
}

void VtkWidget::leaveEvent(QEvent* e) {
  if (forward_) interactor_->InvokeEvent(vtkCommand::LeaveEvent, e);
  QOpenGLWidget::leaveEvent(e);
}

}  // namespace lumen::gui
