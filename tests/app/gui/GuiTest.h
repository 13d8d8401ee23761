#pragma once
// What the GUI tests share: the test class (its slots are defined by area in
// GuiTest*.cpp, run in the order declared here), the window helpers and the
// picture and input helpers.


#include <QApplication>
#include <QBuffer>
#include <QPainter>
#include <QPdfWriter>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QDirIterator>
#include <QDropEvent>
#include <QProcess>
#include <QTextBrowser>
#include <QMimeData>
#include <QOpenGLContext>
#include <QOpenGLFunctions>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QThreadPool>
#include <QTemporaryDir>
#include <QAction>
#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QTableWidget>
#include <QProgressBar>
#include <QPushButton>
#include <QSlider>
#include <QSpinBox>
#include <QStatusBar>
#include <QMessageBox>
#include <QListWidget>
#include <QTreeWidget>
#include <QTest>
#include <QTimer>
#include <QToolButton>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "FindingsPanel.h"
#include "LabelPanel.h"
#include "MainWindow.h"
#include "MeasurementStore.h"
#include "NodesDialog.h"
#include "DeidDialog.h"
#include "PacsDialog.h"
#include "Receiver.h"
#include "ReportDialog.h"
#include "ResultViewer.h"
#include "SendDialog.h"
#include "SliceImage.h"
#include "SliceView.h"
#include "StudyBrowser.h"
#include "ViewportGrid.h"
#include "VolumeView3D.h"
#include "VtkWidget.h"
#include "lumen/core/Measurement.h"
#include "lumen/core/Sha256.h"
#include "lumen/imaging/Deidentify.h"
#include "lumen/imaging/Denoise.h"
#include "lumen/imaging/DicomPdf.h"
#include "lumen/imaging/DicomSeg.h"
#include "lumen/imaging/DicomSr.h"
#include "lumen/imaging/DicomScanner.h"
#include "lumen/imaging/Dimse.h"
#include "lumen/imaging/Nodes.h"
#include "lumen/imaging/LabelMapIO.h"
#include "lumen/imaging/ImageIO.h"
#include "lumen/imaging/VolumeLoader.h"
#include "lumen/imaging/VolumePlanner.h"
#include "lumen/imaging/StudyDatabase.h"

#include <vtkCamera.h>
#include <vtkRenderer.h>

using namespace lumen;
using namespace lumen::gui;

// The tests that need the optional full CT run as their own CTest test (gui_tests_full_ct),
// which CTest reports as skipped by name where the data is missing.
#define LUMEN_SKIP_UNLESS_FULL_CT_RUN()                                        \
  if (qEnvironmentVariableIsSet("LUMEN_GUI_FULL_CT_SEPARATELY"))             \
  QSKIP("needs the optional full CT: run as the CTest test gui_tests_full_ct")

// The AI tests, in a build without models/.
#ifdef LUMEN_WITH_AI
#define LUMEN_SKIP_WITHOUT_AI() \
  do {                          \
  } while (false)
#else
#define LUMEN_SKIP_WITHOUT_AI() QSKIP("built without models/ (LUMEN_BUILD_MODELS=OFF)")
#endif

namespace lumen::gui::test {

inline const QString kSample = QStringLiteral(LUMEN_SAMPLE_DIR);
// How long a model run may take before the test calls it hung: a guard against hangs, not a
// speed requirement (CI runs other suites beside this one on two cores).
inline constexpr int kRunGuardMs = 300000;
inline const QString kCorpus = QStringLiteral(LUMEN_TEST_WORK_DIR) + "/corpus";

// Voxel value at a continuous index (trilinear), for comparing with rendered pixels.
inline double interpolate(const Volume& v, const Vec3& ijk) {
  const auto& s = v.size();
  double acc = 0;
  const double fx = ijk.x - std::floor(ijk.x), fy = ijk.y - std::floor(ijk.y), fz = ijk.z - std::floor(ijk.z);
  for (int c = 0; c < 8; ++c) {
    long i = static_cast<long>(std::floor(ijk.x)) + (c & 1), j = static_cast<long>(std::floor(ijk.y)) + ((c >> 1) & 1),
         k = static_cast<long>(std::floor(ijk.z)) + ((c >> 2) & 1);
    i = std::clamp(i, 0L, static_cast<long>(s[0]) - 1);
    j = std::clamp(j, 0L, static_cast<long>(s[1]) - 1);
    k = std::clamp(k, 0L, static_cast<long>(s[2]) - 1);
    const double w = ((c & 1) ? fx : 1 - fx) * (((c >> 1) & 1) ? fy : 1 - fy) * (((c >> 2) & 1) ? fz : 1 - fz);
    acc += w * v.scalarAt(static_cast<std::size_t>(i), static_cast<std::size_t>(j), static_cast<std::size_t>(k));
  }
  return acc;
}

struct Match {
  double meanAbsDiff = 1e9;
  double correlation = 0;
  int samples = 0;
};

// Compares the rendered grey levels of a view with W/L applied to the voxels found at
// the same physical positions (through the view's own geometry).
inline Match compareWithVolume(SliceView* view) {
  const QImage img = view->grabFramebuffer().convertToFormat(QImage::Format_RGB888);
  const Volume& vol = *view->series()->volume;
  const WindowLevel wl = view->windowLevel();
  Match m;
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, sad = 0;
  // Stay away from the corners, where text is drawn.
  for (int y = img.height() / 6; y < img.height() * 5 / 6; y += 5) {
    for (int x = img.width() / 6; x < img.width() * 5 / 6; x += 5) {
      const Vec3 ijk = vol.geometry().lpsToIjk(view->worldAt(QPointF(x + 0.5, y + 0.5)));
      bool inside = true;
      for (int a = 0; a < 3; ++a) inside = inside && ijk[a] >= 0.5 && ijk[a] <= static_cast<double>(vol.size()[a]) - 1.5;
      if (!inside) continue;
      const double expected = std::clamp((interpolate(vol, ijk) - (wl.center - wl.width / 2)) / wl.width * 255.0, 0.0, 255.0);
      const double shown = qGray(img.pixel(x, y));
      sx += expected;
      sy += shown;
      sxx += expected * expected;
      syy += shown * shown;
      sxy += expected * shown;
      sad += std::fabs(expected - shown);
      ++m.samples;
    }
  }
  if (m.samples < 50) return m;
  const double n = m.samples;
  const double cov = sxy / n - sx / n * sy / n;
  const double vx = sxx / n - sx / n * sx / n, vy = syy / n - sy / n * sy / n;
  m.correlation = (vx > 0 && vy > 0) ? cov / std::sqrt(vx * vy) : 0;
  m.meanAbsDiff = sad / n;
  return m;
}

// Grey levels of the image area of a view (pixels whose position lies in the volume).
struct Picture {
  int samples = 0;
  double mean = 0, stddev = 0;
  double extremes = 0;  // share of pixels at black or white (<= 2, >= 253)
  double midGrey = 0;   // share between 10 and 245
};
inline Picture pictureOf(SliceView* view) {
  const QImage img = view->grabFramebuffer().convertToFormat(QImage::Format_Grayscale8);
  const Volume& vol = *view->series()->volume;
  Picture p;
  double s = 0, ss = 0, ext = 0, mid = 0;
  for (int y = img.height() / 8; y < img.height() * 7 / 8; y += 3)
    for (int x = img.width() / 8; x < img.width() * 7 / 8; x += 3) {
      const Vec3 ijk = vol.geometry().lpsToIjk(view->worldAt(QPointF(x + 0.5, y + 0.5)));
      bool inside = true;
      for (int a = 0; a < 3; ++a) inside = inside && ijk[a] >= -0.5 && ijk[a] <= static_cast<double>(vol.size()[a]) - 0.5;
      if (!inside) continue;
      const double g = qGray(img.pixel(x, y));
      s += g;
      ss += g * g;
      ext += g <= 2 || g >= 253;
      mid += g >= 10 && g <= 245;
      ++p.samples;
    }
  if (p.samples == 0) return p;
  p.mean = s / p.samples;
  p.stddev = std::sqrt(std::max(0.0, ss / p.samples - p.mean * p.mean));
  p.extremes = ext / p.samples;
  p.midGrey = mid / p.samples;
  return p;
}

// Bright pixels (grey > 150) on a 4-pixel grid: a 3D rendering of bone shows many.
inline int brightPixels(const QImage& rgb) {
  const QImage img = rgb.convertToFormat(QImage::Format_Grayscale8);
  int n = 0;
  for (int y = 0; y < img.height(); y += 4)
    for (int x = 0; x < img.width(); x += 4) n += qGray(img.pixel(x, y)) > 150;
  return n;
}

// Share of a slice's voxels that a window shows as black or white.
inline double saturatedShare(const Volume& v, std::size_t k, const WindowLevel& wl) {
  const double lo = wl.center - wl.width / 2, hi = wl.center + wl.width / 2;
  std::size_t sat = 0, n = 0;
  for (std::size_t j = 0; j < v.size()[1]; ++j)
    for (std::size_t i = 0; i < v.size()[0]; ++i, ++n) {
      const double x = v.scalarAt(i, j, k);
      sat += x <= lo || x >= hi;
    }
  return n ? static_cast<double>(sat) / static_cast<double>(n) : 1.0;
}

inline Volume loadDicom(const QString& path) {
  auto scan = dicom::scanInputs({path.toStdString()}, {});
  if (!scan) return {};
  auto plans = dicom::planVolumes(*scan);
  if (plans.empty()) return {};
  auto v = dicom::loadVolume(*scan, plans.front());
  return v ? std::move(*v) : Volume{};
}

// A TCP port free on loopback now (the kernel's choice), for a listener the test starts.
inline int freeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// Writes the trusted-models list of the GUI tests: every test bundle but `except`.
inline void trustTestModels(const QString& configDir, const QString& except) {
  const QDir models(qEnvironmentVariable("LUMEN_MODEL_PATH"));
  QString json = "{\"trusted\": [";
  bool first = true;
  for (const QString& b : models.entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
    if (b == except) continue;
    const auto sha = Sha256::hexOfFile((models.filePath(b) + "/models/model.ts").toStdString());
    if (!sha) continue;
    json += QString("%1{\"sha256\": \"%2\", \"name\": \"%3\"}").arg(first ? "" : ", ", QString::fromStdString(*sha), b);
    first = false;
  }
  json += "]}\n";
  QDir().mkpath(configDir);
  QFile f(configDir + "/trusted-models.json");
  if (f.open(QIODevice::WriteOnly | QIODevice::Truncate)) f.write(json.toUtf8());
}

// Points LUMEN_CONFIG_DIR (the nodes file, trusted models) elsewhere for one test.
class ConfigDir {
 public:
  explicit ConfigDir(const QByteArray& dir) : saved_(qgetenv("LUMEN_CONFIG_DIR")) { qputenv("LUMEN_CONFIG_DIR", dir); }
  ~ConfigDir() { qputenv("LUMEN_CONFIG_DIR", saved_); }
  ConfigDir(const ConfigDir&) = delete;
  ConfigDir& operator=(const ConfigDir&) = delete;

 private:
  QByteArray saved_;
};

// Mouse input as a person gives it: whole-pixel positions, the button held while moving.
inline QPointF pixel(const QPointF& p) { return {std::round(p.x()), std::round(p.y())}; }
inline void mouse(QWidget* w, QEvent::Type type, const QPointF& pos, Qt::MouseButton button, Qt::MouseButtons buttons) {
  QMouseEvent e(type, pos, w->mapToGlobal(pos), button, buttons, Qt::NoModifier);
  QApplication::sendEvent(w, &e);
}
inline void dragMouse(QWidget* w, QPointF a, QPointF b, int steps = 8) {
  a = pixel(a);
  b = pixel(b);
  mouse(w, QEvent::MouseButtonPress, a, Qt::LeftButton, Qt::LeftButton);
  for (int i = 1; i <= steps; ++i) mouse(w, QEvent::MouseMove, pixel(a + (b - a) * (double(i) / steps)), Qt::NoButton, Qt::LeftButton);
  mouse(w, QEvent::MouseButtonRelease, b, Qt::LeftButton, Qt::NoButton);
}
inline void clickMouse(QWidget* w, QPointF p, bool doubleClick = false) {
  p = pixel(p);
  mouse(w, QEvent::MouseMove, p, Qt::NoButton, Qt::NoButton);
  mouse(w, QEvent::MouseButtonPress, p, Qt::LeftButton, Qt::LeftButton);
  mouse(w, QEvent::MouseButtonRelease, p, Qt::LeftButton, Qt::NoButton);
  if (!doubleClick) return;
  mouse(w, QEvent::MouseButtonDblClick, p, Qt::LeftButton, Qt::LeftButton);
  mouse(w, QEvent::MouseButtonRelease, p, Qt::LeftButton, Qt::NoButton);
}
// Millimetres per screen pixel of a view.
inline double mmPerPixelOf(SliceView* v) { return (v->worldAt({1, 0}) - v->worldAt({0, 0})).norm(); }

inline std::vector<Measurement> measurementsOf(MainWindow* w, SliceView* v) {
  return w->measurements()->listFor(*v->series())->items();
}

}  // namespace lumen::gui::test

using namespace lumen::gui::test;

class GuiTest : public QObject {
  Q_OBJECT

 private:
  std::unique_ptr<QTemporaryDir> dataDir_;
  std::unique_ptr<MainWindow> window_;

  MainWindow* openWindow() {
    MainWindow::Options o;
    o.dataDir = dataDir_->path();
    o.rememberSettings = false;
    window_ = std::make_unique<MainWindow>(o);
    window_->resize(1400, 900);
    window_->show();
    if (!QTest::qWaitForWindowExposed(window_.get())) return nullptr;
    return window_.get();
  }

  bool load(MainWindow* w, const QStringList& paths) {
    QSignalSpy loaded(w, &MainWindow::seriesLoaded);
    QSignalSpy failed(w, &MainWindow::loadFailed);
    w->openPaths(paths);
    for (int i = 0; i < 600 && loaded.isEmpty() && failed.isEmpty(); ++i) QTest::qWait(50);
    QTest::qWait(100);  // let the views draw
    return !loaded.isEmpty();
  }

  // A window showing `path` with the AI panel loaded and its model list made (both happen
  // off the GUI thread after start-up).
  bool openWithAiPanel(const QString& path, MainWindow*& w, QWidget*& panel) {
    w = openWindow();
    QSignalSpy ready(w, &MainWindow::aiReady);
    if (!load(w, {path}) || (ready.isEmpty() && !ready.wait(30000))) return false;
    if (!ready.first().at(0).toBool()) {
      qWarning() << w->messages().join("\n");
      return false;
    }
    panel = w->aiPanel();
    const auto discovering = [panel] {
      bool d = true;
      QMetaObject::invokeMethod(panel, "discovering", Q_RETURN_ARG(bool, d));
      return d;
    };
    QElapsedTimer t;
    t.start();
    while (panel && discovering() && t.elapsed() < 60000) QTest::qWait(20);
    return panel && !discovering();
  }

  // The AI tests' window: one on `path` with the AI panel ready, and a spy on the panel's
  // runs (its runFinished). w is null when it could not be made.
  struct AiWindow {
    MainWindow* w;
    QWidget* panel;
    QSignalSpy& finished;
  };
  AiWindow openAi(const QString& path) {
    MainWindow* w = nullptr;
    aiPanel_ = nullptr;
    if (!openWithAiPanel(path, w, aiPanel_)) w = nullptr;
    aiRuns_ = w ? std::make_unique<QSignalSpy>(aiPanel_, SIGNAL(runFinished(bool, QString)))
                : std::make_unique<QSignalSpy>(this, SIGNAL(destroyed()));
    return {w, aiPanel_, *aiRuns_};
  }

  // Runs `model` from the AI panel of openAi() and waits for its end; true when it ended well.
  bool run(const char* model) {
    aiRuns_->clear();
    bool started = false;
    QMetaObject::invokeMethod(aiPanel_, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, model));
    return started && aiRuns_->wait(kRunGuardMs) && aiRuns_->first().at(0).toBool();
  }
  QWidget* aiPanel_ = nullptr;
  std::unique_ptr<QSignalSpy> aiRuns_;

 private slots:
  void init() {
    dataDir_ = std::make_unique<QTemporaryDir>();
    QVERIFY(dataDir_->isValid());
  }
  void cleanup() {
    aiRuns_.reset();
    aiPanel_ = nullptr;
    window_.reset();
  }

  // In the order they run; each defined in GuiTest<Area>.cpp.
  void queryAndRetrieveFromAPacs();  // Network
  void aSearchOfASilentNodeCanBeStopped();  // Network
  void theListenersTlsIsSetInTheWorkstation();  // Network
  void nodesAreEditedInTheWorkstation();  // Network
  void opensTheRealCtAndShowsTheMiddleSlice();  // Views
  void aCoronalNiftiIsShownSuperiorUp();  // Views
  void scrollingShowsTheNextSlices();  // Views
  void softwareOpenGlDrawsSingleSampledWithTheSamePixels();  // Views
  void windowLevelPresetsAndMouseDrag();  // Views
  void layoutsSwitch();  // Views
  void the3dViewDraftsThenRefinesAndAGrabReusesAnUnchangedFrame();  // Views
  void crosshairClickMovesTheOtherPlanes();  // Views
  void slabMipIsBrighterThanASlice();  // Views
  void overlayShowsLabelsInColour();  // Views
  void aDrawnDistanceIsThePhysicalDistance();  // Editing
  void measurementToolsOnAPhantom();  // Editing
  void measurementsAreEditedUndoneAndKept();  // Editing
  void labelMapIsSavedInTheBackground();  // Editing
  void segmentEditorPaintsGrowsInterpolatesAndSaves();  // Editing
  void reportDialogMakesThePdfAReaderSees();  // Reports
  void sendsASeriesToANodeLosslesslyCompressed();  // Network
  void receivesStudiesAndListsThemAsTheyArrive();  // Network
  void reportsOpenAgainInTheWorkstation();  // Reports
  void deidentifiedExportOfTheStudyOnScreen();  // Reports
  void unsavedLabelEditsSurviveAsAnAutosave();  // Editing
  void obliqueSeriesHasObliqueOrientationMarkers();  // Views
  void hidingPatientInformationAndProbe();  // Views
  void badInputGivesAReadableMessage();  // Browser
  void loadingRunsInTheBackgroundAndCanBeCancelled();  // Browser
  void studyBrowserImportsAndSearches();  // Browser
  void droppingASeriesOnAViewportLoadsItThere();  // Browser
  void cinePlaysATimeSeries();  // Views
  void aiPanelRunsModelsOnTheCurrentSeries();  // Ai
  void aiPanelShowsTheEstimateAndNoGuessOutsideItsRange();  // Ai
  void aiPanelRecommendsADenoiserAndRunsTheClassicalFilter();  // Ai
  void everyImageOpensWithASanePicture();  // Views
  void jobsAreTrackedApartAndModelsWaitForTheWholeSeries();  // Ai
  void modelFoldersAreReadInTheBackgroundAndBadOnesReported();  // Ai
  void untrustedModelsAskFirst();  // Ai
  void deleteRemovesTheStudyAskedAboutEvenIfTheListChanged();  // Browser
  void closingDuringAnImportCancelsIt();  // Browser
  void settingsAreRemembered();  // Browser
};
