#pragma once
// The one bridge between Qt 6 and VTK. Debian's VTK 9.1 ships its Qt widget for Qt 5
// only, so VTK renders through vtkGenericOpenGLRenderWindow into this QOpenGLWidget's
// context (recipe in PLATFORM.md). Subclasses either handle input themselves (2D views)
// or let VTK's interactor have it (3D view: setForwardInputToVtk(true)).

#include <QOpenGLWidget>

#include <vtkNew.h>
#include <vtkSmartPointer.h>
#include <vtkType.h>

class vtkGenericOpenGLRenderWindow;
class vtkGenericRenderWindowInteractor;
class vtkRenderer;

namespace lumen::gui {

class VtkWidget : public QOpenGLWidget {
  Q_OBJECT
 public:
  /// The OpenGL context VTK needs (3.2+ core, depth buffer). Call before QApplication.
  static void configureDefaultSurfaceFormat();

  explicit VtkWidget(QWidget* parent = nullptr);
  ~VtkWidget() override;

  vtkGenericOpenGLRenderWindow* renderWindow() const;
  vtkGenericRenderWindowInteractor* interactor() const;
  vtkRenderer* renderer() const;

  /// Send mouse, wheel and key events to VTK's interactor (camera styles, widgets).
  void setForwardInputToVtk(bool on) { forward_ = on; }

  /// Renders now and waits for the GPU (benchmarks, screenshots).
  void renderNow();

  /// Whether an OpenGL renderer string names a software rasteriser (Mesa llvmpipe, ...).
  static bool isSoftwareRenderer(const char* glRenderer);
  /// Samples per pixel for views created from now on: -1 (default) VTK's choice, or none
  /// under a software rasteriser; 0 none; 2..16 that many (at most what the driver offers).
  static void setRequestedMultiSamples(int samples);
  /// Samples per pixel of this view's framebuffer (0: not multisampled).
  int multiSamples() const;

 signals:
  /// Emitted after each frame was drawn (first image timing, tests).
  void frameRendered();

 protected:
  void initializeGL() override;
  void resizeGL(int w, int h) override;
  void paintGL() override;
  void paintEvent(QPaintEvent* e) override;
  /// Whether the last paintGL drew a new frame (false: it kept the previous one).
  bool lastPaintRendered() const { return lastPaintRendered_; }
  /// For views that are expensive to draw: the newest modification time of everything they
  /// draw. A grab of such a view reuses its last frame when this has not changed (the view
  /// must keep its framebuffer: setUpdateBehavior(PartialUpdate)). 0 (the default): always
  /// draw again.
  virtual vtkMTimeType sceneMTime() const { return 0; }

  void mousePressEvent(QMouseEvent* e) override;
  void mouseReleaseEvent(QMouseEvent* e) override;
  void mouseMoveEvent(QMouseEvent* e) override;
  void wheelEvent(QWheelEvent* e) override;
  void keyPressEvent(QKeyEvent* e) override;
  void keyReleaseEvent(QKeyEvent* e) override;
  void enterEvent(QEnterEvent* e) override;
  void leaveEvent(QEvent* e) override;

  /// Device-pixel position with VTK's origin (bottom left).
  QPointF toVtk(const QPointF& logical) const;

 private:
  void forwardMouse(QMouseEvent* e, unsigned long event);

  vtkSmartPointer<vtkGenericOpenGLRenderWindow> window_;
  vtkSmartPointer<vtkGenericRenderWindowInteractor> interactor_;
  vtkSmartPointer<vtkRenderer> renderer_;
  bool forward_ = false;
  bool initialized_ = false;
  bool mustRender_ = false;  // a paint event or renderNow: never reuse the last frame
  bool lastPaintRendered_ = false;
  bool hasFrame_ = false;
  QSize framePx_;
  vtkMTimeType frameMTime_ = 0;
  static int requestedSamples_;
};

}  // namespace lumen::gui
