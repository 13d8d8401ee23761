// The workstation tested as a person uses it, under Xvfb: open the real CT, scroll,
// change window/level, switch layouts, move the MPR crosshair, load an overlay; the
// assertions are on what the viewports show (their rendered pixels) and say.

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

namespace {

const QString kSample = QStringLiteral(LUMEN_SAMPLE_DIR);
// How long a model run may take before the test calls it hung: a guard against hangs, not a
// speed requirement (CI runs other suites beside this one on two cores).
constexpr int kRunGuardMs = 300000;
const QString kCorpus = QStringLiteral(LUMEN_TEST_WORK_DIR) + "/corpus";

// Voxel value at a continuous index (trilinear), for comparing with rendered pixels.
double interpolate(const Volume& v, const Vec3& ijk) {
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
Match compareWithVolume(SliceView* view) {
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
Picture pictureOf(SliceView* view) {
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
int brightPixels(const QImage& rgb) {
  const QImage img = rgb.convertToFormat(QImage::Format_Grayscale8);
  int n = 0;
  for (int y = 0; y < img.height(); y += 4)
    for (int x = 0; x < img.width(); x += 4) n += qGray(img.pixel(x, y)) > 150;
  return n;
}

// Share of a slice's voxels that a window shows as black or white.
double saturatedShare(const Volume& v, std::size_t k, const WindowLevel& wl) {
  const double lo = wl.center - wl.width / 2, hi = wl.center + wl.width / 2;
  std::size_t sat = 0, n = 0;
  for (std::size_t j = 0; j < v.size()[1]; ++j)
    for (std::size_t i = 0; i < v.size()[0]; ++i, ++n) {
      const double x = v.scalarAt(i, j, k);
      sat += x <= lo || x >= hi;
    }
  return n ? static_cast<double>(sat) / static_cast<double>(n) : 1.0;
}

Volume loadDicom(const QString& path) {
  auto scan = dicom::scanInputs({path.toStdString()}, {});
  if (!scan) return {};
  auto plans = dicom::planVolumes(*scan);
  if (plans.empty()) return {};
  auto v = dicom::loadVolume(*scan, plans.front());
  return v ? std::move(*v) : Volume{};
}

// A TCP port free on loopback now (the kernel's choice), for a listener the test starts.
int freeLoopbackPort() {
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
void trustTestModels(const QString& configDir, const QString& except) {
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
QPointF pixel(const QPointF& p) { return {std::round(p.x()), std::round(p.y())}; }
void mouse(QWidget* w, QEvent::Type type, const QPointF& pos, Qt::MouseButton button, Qt::MouseButtons buttons) {
  QMouseEvent e(type, pos, w->mapToGlobal(pos), button, buttons, Qt::NoModifier);
  QApplication::sendEvent(w, &e);
}
void dragMouse(QWidget* w, QPointF a, QPointF b, int steps = 8) {
  a = pixel(a);
  b = pixel(b);
  mouse(w, QEvent::MouseButtonPress, a, Qt::LeftButton, Qt::LeftButton);
  for (int i = 1; i <= steps; ++i) mouse(w, QEvent::MouseMove, pixel(a + (b - a) * (double(i) / steps)), Qt::NoButton, Qt::LeftButton);
  mouse(w, QEvent::MouseButtonRelease, b, Qt::LeftButton, Qt::NoButton);
}
void clickMouse(QWidget* w, QPointF p, bool doubleClick = false) {
  p = pixel(p);
  mouse(w, QEvent::MouseMove, p, Qt::NoButton, Qt::NoButton);
  mouse(w, QEvent::MouseButtonPress, p, Qt::LeftButton, Qt::LeftButton);
  mouse(w, QEvent::MouseButtonRelease, p, Qt::LeftButton, Qt::NoButton);
  if (!doubleClick) return;
  mouse(w, QEvent::MouseButtonDblClick, p, Qt::LeftButton, Qt::LeftButton);
  mouse(w, QEvent::MouseButtonRelease, p, Qt::LeftButton, Qt::NoButton);
}
// Millimetres per screen pixel of a view.
double mmPerPixelOf(SliceView* v) { return (v->worldAt({1, 0}) - v->worldAt({0, 0})).norm(); }

std::vector<Measurement> measurementsOf(MainWindow* w, SliceView* v) {
  return w->measurements()->listFor(*v->series())->items();
}

}  // namespace

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

 private slots:
  void init() {
    dataDir_ = std::make_unique<QTemporaryDir>();
    QVERIFY(dataDir_->isValid());
  }
  void cleanup() { window_.reset(); }

  // File > Query / Retrieve against a real PACS (Orthanc, started by tests/app/gui_pacs.py
  // in a private network namespace): search a DIMSE and a DICOMweb node as a reader would,
  // retrieve the study through each, find it in the database and the browser.
  void queryAndRetrieveFromAPacs() {
    const QString study = qEnvironmentVariable("LUMEN_TEST_PACS_STUDY");
    if (study.isEmpty()) QSKIP("needs a PACS: run as the CTest test gui_pacs");
    const QString patientName = qEnvironmentVariable("LUMEN_TEST_PACS_PATIENT");  // e.g. DOE^JOHN
    // The nodes gui_pacs.py configured (main() points LUMEN_CONFIG_DIR at the test models').
    const ConfigDir config(qgetenv("LUMEN_TEST_PACS_CONFIG"));
    MainWindow* w = openWindow();
    QVERIFY(w);
    PacsDialog* d = w->showPacsDialog();
    QVERIFY(QTest::qWaitForWindowExposed(d));
    auto* node = d->findChild<QComboBox*>("node");
    auto* id = d->findChild<QLineEdit*>("patientId");
    auto* name = d->findChild<QLineEdit*>("patientName");
    auto* table = d->findChild<QTableWidget*>("results");
    auto* search = d->findChild<QPushButton*>("search");
    auto* retrieve = d->findChild<QPushButton*>("retrieve");
    QVERIFY(node && id && name && table && search && retrieve);
    QCOMPARE(node->count(), 2);  // the DIMSE node and the DICOMweb one
    for (int n = 0; n < 2; ++n) {
      node->setCurrentIndex(n);
      QSignalSpy done(d, &PacsDialog::searchFinished);
      id->setText("NO-SUCH-PATIENT");
      QTest::mouseClick(search, Qt::LeftButton);
      QVERIFY(done.wait(30000));
      QCOMPARE(done.takeFirst().at(0).toInt(), 0);
      QCOMPARE(table->rowCount(), 0);
      QVERIFY(!retrieve->isEnabled());
      id->clear();
      name->setText(patientName.section('^', 0, 0) + "*");  // the family name, as a reader types it
      QTest::mouseClick(search, Qt::LeftButton);
      QVERIFY(done.wait(30000));
      QCOMPARE(done.takeFirst().at(0).toInt(), 1);
      QCOMPARE(table->item(0, 0)->data(Qt::UserRole).toString(), study);
      QCOMPARE(table->item(0, 1)->text(), prettyName(patientName.toStdString()));  // as the browser shows it
      QCOMPARE(table->item(0, 7)->text(), QString("32"));
      table->selectRow(0);
      QVERIFY(retrieve->isEnabled());
      QSignalSpy fetched(w, &MainWindow::retrieveFinished);
      // The browser lists the study while it arrives: seen before the retrieve ends (C-GET
      // from Orthanc takes over a second for 32 instances; the list follows within 0.3 s).
      auto* tree = w->browser()->findChild<QTreeWidget*>();
      QVERIFY(tree);
      bool listedEarly = false;
      // Over DIMSE the reader also opens the series while it arrives (a double-click in the
      // browser): it is shown at once, grows in place and ends complete.
      auto* seriesList = w->browser()->findChild<QListWidget*>();
      QVERIFY(seriesList);
      bool opened = false;
      struct Shown {
        bool complete, retrieveOver, aiCanUse;
        int slices;
        double positionMm;
        WindowLevel wl;
      };
      std::vector<Shown> shown;
      SliceView* v = w->grid()->activeSliceView();
      const WindowLevel readersWindow{123.0, 456.0};
      double readersPositionMm = NAN, readersZoom = NAN;
      auto conn = connect(w, &MainWindow::seriesLoaded, this, [&](std::shared_ptr<LoadedSeries> s) {
        shown.push_back({s->complete, !fetched.isEmpty(), w->currentSeries() != nullptr,
                         static_cast<int>(s->volume->size()[2]), v->navigator().positionMm(), v->windowLevel()});
        // After the first picture the reader scrolls to its first slice and sets a window:
        // neither may change as the series grows.
        if (shown.size() == 1 && !s->complete) {
          v->setSliceIndex(0);
          v->setWindowLevel(readersWindow);
          v->zoomBy(1.5);
          readersPositionMm = v->navigator().positionMm();
          readersZoom = v->zoomPercent();
        }
      });
      QTimer poll;
      connect(&poll, &QTimer::timeout, this, [&] {
        if (fetched.isEmpty() && tree->topLevelItemCount() == 1) listedEarly = true;
        if (n == 0 && !opened && fetched.isEmpty() && seriesList->count() == 1) {
          opened = true;
          emit seriesList->itemDoubleClicked(seriesList->item(0));
        }
      });
      poll.start(20);
      QTest::mouseClick(retrieve, Qt::LeftButton);
      QCOMPARE(w->runningJobs(), 1);  // a job of its own, with progress and cancel
      QVERIFY(fetched.wait(120000));
      poll.stop();
      if (n == 0) {
        QVERIFY(listedEarly);
        QVERIFY(opened);
        QTRY_VERIFY_WITH_TIMEOUT(!shown.empty() && shown.back().complete, 30000);
        QVERIFY2(shown.size() >= 2, qPrintable(QString("%1 load(s)").arg(shown.size())));
        const Shown first = shown.front(), last = shown.back();
        // The first picture came before the retrieve ended, from part of the series, and
        // nothing could compute on it (the AI panel sees no series).
        QVERIFY(!first.retrieveOver);
        QVERIFY(!first.complete);
        QVERIFY(!first.aiCanUse);
        QVERIFY2(first.slices < 32, qPrintable(QString("%1 slices at first").arg(first.slices)));
        QCOMPARE(last.slices, 32);
        QVERIFY(last.aiCanUse);
        // The reader's place (in millimetres: the slice index may shift as slices arrive)
        // and window stayed.
        QVERIFY(std::isfinite(readersPositionMm));
        QVERIFY2(std::abs(last.positionMm - readersPositionMm) < 0.5 * v->navigator().stepMm(),
                 qPrintable(QString("position %1 mm, was %2 mm").arg(last.positionMm).arg(readersPositionMm)));
        QCOMPARE(v->zoomPercent(), readersZoom);
        QCOMPARE(last.wl.width, readersWindow.width);
        QCOMPARE(last.wl.center, readersWindow.center);
        QCOMPARE(v->series()->volume->size()[2], std::size_t(32));
        // What is on screen at the end is the series, voxel for voxel.
        const Volume want = loadDicom(kSample);
        QCOMPARE(v->series()->volume->byteSize(), want.byteSize());
        QVERIFY(std::memcmp(v->series()->volume->bytes(), want.bytes(), want.byteSize()) == 0);
        QVERIFY(w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-pacs-growing.png"));
      }
      disconnect(conn);
      QVERIFY2(fetched.first().at(0).toBool(), qPrintable(fetched.first().at(2).toString()));
      QCOMPARE(fetched.first().at(1).toInt(), 32);
      QCOMPARE(w->runningJobs(), 0);
      auto db = db::StudyDatabase::open(dataDir_->path().toStdString());
      QVERIFY(db);
      auto instances = (*db)->instancesOfStudy(study.toStdString());
      QVERIFY(instances);
      QCOMPARE(instances->size(), std::size_t(32));
      QCOMPARE(tree->topLevelItemCount(), 1);
    }
    const QString out = QStringLiteral(LUMEN_TEST_WORK_DIR);
    QVERIFY(d->grab().save(out + "/gui-pacs-dialog.png"));
    QVERIFY(w->grab().save(out + "/gui-pacs-window.png"));
  }

  // A search of a node that never answers (it takes the connection, then says nothing) is
  // stopped by the reader: the dialog is free at once and the search's worker ends too,
  // long before the node's 30 s timeout would have ended it.
  void aSearchOfASilentNodeCanBeStopped() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    QVERIFY(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    QVERIFY(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd, 8) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    const int port = ntohs(a.sin_port);
    QTemporaryDir config;
    net::NodeConfig nodes;
    net::WebNode silent;
    silent.name = "silent";
    silent.baseUrl = "http://127.0.0.1:" + std::to_string(port) + "/dicom-web";
    nodes.web.push_back(silent);
    QVERIFY(net::saveNodes(config.path().toStdString() + "/nodes.json", nodes));
    const ConfigDir use(config.path().toUtf8());
    MainWindow* w = openWindow();
    QVERIFY(w);
    PacsDialog* d = w->showPacsDialog();
    auto* search = d->findChild<QPushButton*>("search");
    auto* stop = d->findChild<QPushButton*>("stopSearch");
    auto* status = d->findChild<QLabel*>("status");
    QVERIFY(search && stop && status);
    QVERIFY(!stop->isEnabled());
    QSignalSpy done(d, &PacsDialog::searchFinished);
    for (int round = 0; round < 2; ++round) {  // and a new search may start at once
      QTest::mouseClick(search, Qt::LeftButton);
      QVERIFY(!search->isEnabled());
      QVERIFY(stop->isEnabled());
      QTest::qWait(400);
      QCOMPARE(done.count(), round);  // the node is silent
      QTest::mouseClick(stop, Qt::LeftButton);
      QCOMPARE(done.count(), round + 1);
      QCOMPARE(done.last().at(0).toInt(), -1);
      QVERIFY(search->isEnabled());
      QVERIFY(!stop->isEnabled());
      QCOMPARE(status->text(), QString("Search stopped."));
    }
    QElapsedTimer t;
    t.start();
    QVERIFY(QThreadPool::globalInstance()->waitForDone(10000));
    QVERIFY2(t.elapsed() < 5000, qPrintable(QString("the stopped searches ended after %1 ms").arg(t.elapsed())));
    QTest::qWait(100);
    QCOMPARE(done.count(), 2);  // their late ends are not reported
    ::close(fd);
  }

  // The listener's DICOM TLS set in Nodes... (not only with `lumen-cli nodes local`): saved
  // in the nodes file, checked before it is saved, and what File > Receive studies uses: a
  // TLS caller is filed, a plain one refused.
  void theListenersTlsIsSetInTheWorkstation() {
    if (QStandardPaths::findExecutable("storescu").isEmpty() || QStandardPaths::findExecutable("openssl").isEmpty())
      QSKIP("needs dcmtk's storescu and openssl");
    QTemporaryDir config;
    const QString cert = config.path() + "/server.crt", key = config.path() + "/server.key";
    QProcess openssl;
    openssl.start("openssl", {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                              "-subj", "/CN=127.0.0.1"});
    QVERIFY(openssl.waitForFinished(60000) && openssl.exitCode() == 0);
    net::NodeConfig nodes;
    nodes.local.aeTitle = "LUMENTLS";
    nodes.local.port = freeLoopbackPort();
    nodes.local.minFreeMegabytes = 0;
    QVERIFY(net::saveNodes(config.path().toStdString() + "/nodes.json", nodes));
    const ConfigDir use(config.path().toUtf8());
    MainWindow* w = openWindow();
    QVERIFY(w);
    auto* d = new NodesDialog(w);
    d->show();
    auto* certField = d->findChild<QLineEdit*>("localTlsCert");
    auto* keyField = d->findChild<QLineEdit*>("localTlsKey");
    auto* save = d->findChild<QPushButton*>("saveLocal");
    auto* status = d->findChild<QLabel*>("status");
    QVERIFY(certField && keyField && save && status);
    QVERIFY(certField->text().isEmpty());
    // A certificate without its key is refused, and nothing is saved.
    certField->setText(cert);
    QTest::mouseClick(save, Qt::LeftButton);
    QVERIFY2(status->text().startsWith("DICOM TLS:"), qPrintable(status->text()));
    QVERIFY(!net::loadNodes(config.path().toStdString() + "/nodes.json")->local.tls);
    keyField->setText(config.path() + "/no-such.key");  // and a key that is not there
    QTest::mouseClick(save, Qt::LeftButton);
    QVERIFY2(status->text().contains("cannot read"), qPrintable(status->text()));
    QVERIFY(!net::loadNodes(config.path().toStdString() + "/nodes.json")->local.tls);
    keyField->setText(key);
    QTest::mouseClick(save, Qt::LeftButton);
    auto saved = net::loadNodes(config.path().toStdString() + "/nodes.json");
    QVERIFY(saved && saved->local.tls);
    QCOMPARE(QString::fromStdString(saved->local.tls->certFile), cert);
    QCOMPARE(QString::fromStdString(saved->local.tls->keyFile), key);
    QVERIFY(saved->local.tls->caFile.empty());
    QCOMPARE(QString::fromStdString(saved->local.aeTitle), QString("LUMENTLS"));  // the rest kept
    QVERIFY(w->setReceiving(true));
    QVERIFY(w->receiver()->describe().contains("(TLS)"));
    const QString file = QDir(kSample).entryList(QDir::Files, QDir::Name).first();
    const auto storescu = [&](const QStringList& tls) {
      QProcess p;
      p.start("storescu", tls + QStringList{"-aec", "LUMENTLS", "127.0.0.1", QString::number(nodes.local.port), kSample + "/" + file});
      p.waitForFinished(60000);
      return p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
    };
    QVERIFY(!storescu({}));  // plain DICOM: refused
    QVERIFY(storescu({"+tla", "+cf", cert}));
    QTRY_COMPARE_WITH_TIMEOUT(w->receiver()->received(), quint64(1), 10000);
    QVERIFY(w->setReceiving(false));
    // Cleared: the listener speaks plain DICOM again.
    certField->clear();
    keyField->clear();
    QTest::mouseClick(save, Qt::LeftButton);
    QVERIFY(!net::loadNodes(config.path().toStdString() + "/nodes.json")->local.tls);
    QThreadPool::globalInstance()->waitForDone();
  }

  // Nodes added, tested and removed in the workstation land in the same file lumen-cli
  // reads, private to the user, with the password never shown.
  void nodesAreEditedInTheWorkstation() {
    QTemporaryDir config;
    const ConfigDir use(config.path().toUtf8());
    MainWindow* w = openWindow();
    QVERIFY(w);
    PacsDialog* pacs = w->showPacsDialog();
    QCOMPARE(pacs->findChild<QComboBox*>("node")->count(), 0);
    QTest::mouseClick(pacs->findChild<QPushButton*>("editNodes"), Qt::LeftButton);
    auto* d = pacs->findChild<NodesDialog*>();
    QVERIFY(d);
    QVERIFY(QTest::qWaitForWindowExposed(d));
    const auto edit = [d](const char* name) { return d->findChild<QLineEdit*>(name); };
    auto* list = d->findChild<QListWidget*>("nodes");
    auto* status = d->findChild<QLabel*>("status");
    auto* add = d->findChild<QPushButton*>("add");
    // A DIMSE node; a bad AE title first.
    QTest::keyClicks(edit("name"), "pacs");
    QTest::keyClicks(edit("aeTitle"), "MUCH_TOO_LONG_AE_TITLE");
    QTest::keyClicks(edit("host"), "127.0.0.1");
    d->findChild<QSpinBox*>("port")->setValue(4999);  // nobody listens there
    QTest::mouseClick(add, Qt::LeftButton);
    QVERIFY(status->text().contains("1 to 16 characters"));
    QCOMPARE(list->count(), 0);
    edit("aeTitle")->setText("ORTHANC");
    QTest::mouseClick(add, Qt::LeftButton);
    QCOMPARE(list->count(), 1);
    // A DICOMweb node with basic auth.
    d->findChild<QComboBox*>("kind")->setCurrentIndex(1);
    edit("name")->setText("web");
    QTest::keyClicks(edit("url"), "https://pacs.example.org/dicom-web");
    d->findChild<QComboBox*>("auth")->setCurrentText("basic");
    QTest::keyClicks(edit("user"), "reader");
    QTest::keyClicks(edit("secret"), "s3cret-pw");
    QVERIFY(edit("secret")->displayText() != "s3cret-pw");  // typed in a password field
    QTest::mouseClick(add, Qt::LeftButton);
    QCOMPARE(list->count(), 2);
    for (int i = 0; i < list->count(); ++i) QVERIFY(!list->item(i)->text().contains("s3cret"));
    QVERIFY(!status->text().contains("s3cret"));
    // The same file lumen-cli uses: readable by the user only, with both nodes.
    const std::string file = (config.path() + "/nodes.json").toStdString();
    auto cfg = net::loadNodes(file);
    QVERIFY(cfg);
    QCOMPARE(cfg->dimse.size(), std::size_t(1));
    QCOMPARE(cfg->dimse[0].port, 4999);
    QVERIFY(cfg->findWeb("web") && cfg->findWeb("web")->password == "s3cret-pw");
    namespace fs = std::filesystem;
    QCOMPARE(fs::status(file).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
    QCOMPARE(pacs->findChild<QComboBox*>("node")->count(), 2);  // Query / Retrieve sees them at once
    // Test: nobody answers on that port, and the message says so.
    list->setCurrentRow(0);
    QSignalSpy tested(d, &NodesDialog::testFinished);
    QTest::mouseClick(d->findChild<QPushButton*>("test"), Qt::LeftButton);
    QVERIFY(tested.wait(30000));
    QVERIFY(!tested.first().at(0).toBool());
    QVERIFY2(tested.first().at(1).toString().contains("refused"), qPrintable(tested.first().at(1).toString()));
    // Remove.
    list->setCurrentRow(0);
    QTest::mouseClick(d->findChild<QPushButton*>("remove"), Qt::LeftButton);
    QCOMPARE(list->count(), 1);
    QCOMPARE(net::loadNodes(file)->dimse.size(), std::size_t(0));
    QCOMPARE(pacs->findChild<QComboBox*>("node")->count(), 1);
    // This workstation's identity: a bad AE title is refused, a good one saved.
    edit("localAe")->setText("BACK\\SLASH");
    QTest::mouseClick(d->findChild<QPushButton*>("saveLocal"), Qt::LeftButton);
    QVERIFY(status->text().contains("backslash"));
    edit("localAe")->setText("READING1");
    d->findChild<QSpinBox*>("localPort")->setValue(11999);
    edit("localAllow")->setText("PACS, CT1");
    QTest::mouseClick(d->findChild<QPushButton*>("saveLocal"), Qt::LeftButton);
    auto local = net::loadNodes(file)->local;
    QCOMPARE(QString::fromStdString(local.aeTitle), QString("READING1"));
    QCOMPARE(local.port, 11999);
    QCOMPARE(local.allowedAe, (std::vector<std::string>{"PACS", "CT1"}));
    QVERIFY(d->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-nodes-dialog.png"));
  }

  void opensTheRealCtAndShowsTheMiddleSlice() {
    MainWindow* w = openWindow();
    QVERIFY(w);
    QVERIFY(load(w, {kSample}));
    SliceView* v = w->grid()->activeSliceView();
    QVERIFY(v->hasSeries());
    QCOMPARE(v->sliceCount(), 32);
    QCOMPARE(v->sliceIndex(), 16);
    QVERIFY(QString::fromStdString(v->cornerTexts().bottomLeft).contains("Im 17/32"));
    const Match m = compareWithVolume(v);
    QVERIFY2(m.samples > 1000, qPrintable(QString::number(m.samples)));
    QVERIFY2(m.correlation > 0.98, qPrintable(QString("correlation %1").arg(m.correlation)));
    QVERIFY2(m.meanAbsDiff < 4.0, qPrintable(QString("mean |difference| %1 grey levels").arg(m.meanAbsDiff)));
    // Radiological orientation of an axial CT.
    const auto e = v->edgeTexts();
    QCOMPARE(QString::fromStdString(e[0]), QString("R"));
    QCOMPARE(QString::fromStdString(e[1]), QString("L"));
    QCOMPARE(QString::fromStdString(e[2]), QString("A"));
    QCOMPARE(QString::fromStdString(e[3]), QString("P"));
  }

  void aCoronalNiftiIsShownSuperiorUp() {
    // A volume stored like a RAS NIfTI of coronal slices (KmeansTest T1: rows running
    // inferior to superior, slices posterior to anterior), bright in its superior half.
    ImageGeometry g;
    g.size = {40, 30, 20};
    g.spacingMm = {2.0, 2.0, 3.0};
    g.direction = Mat3::fromColumns({1, 0, 0}, {0, 0, 1}, {0, -1, 0});
    auto vol = Volume::zeros(PixelType::UInt8, g);
    QVERIFY(vol);
    for (std::size_t k = 0; k < 20; ++k)
      for (std::size_t j = 0; j < 30; ++j)
        for (std::size_t i = 0; i < 40; ++i) vol->data<std::uint8_t>()[(k * 30 + j) * 40 + i] = j >= 15 ? 200 : 20;
    const QString path = dataDir_->path() + "/coronal_ras.nii.gz";
    QVERIFY(io::writeImage(*vol, path.toStdString()));
    MainWindow* w = openWindow();
    QVERIFY(load(w, {path}));
    SliceView* v = w->grid()->activeSliceView();
    QCOMPARE(QString::fromStdString(v->cornerTexts().bottomLeft).left(7), QString("Coronal"));
    const auto e = v->edgeTexts();
    QCOMPARE(QString::fromStdString(e[0]), QString("R"));
    QCOMPARE(QString::fromStdString(e[1]), QString("L"));
    QCOMPARE(QString::fromStdString(e[2]), QString("S"));
    QCOMPARE(QString::fromStdString(e[3]), QString("I"));
    // What a person sees: the bright (superior) half at the top of the picture.
    const QImage img = v->grabFramebuffer().convertToFormat(QImage::Format_Grayscale8);
    const int cx = img.width() / 2, cy = img.height() / 2;
    const int above = qGray(img.pixel(cx, cy - img.height() / 8)), below = qGray(img.pixel(cx, cy + img.height() / 8));
    QVERIFY2(above > below + 100, qPrintable(QString("grey above the centre %1, below %2").arg(above).arg(below)));

    // In MPR the 3D view picks the MR preset itself; the toolbar's box says so.
    auto* preset3d = w->findChild<QComboBox*>("Preset3D");
    QVERIFY(preset3d);
    w->setLayoutMode(Layout::Mpr);
    QCOMPARE(preset3d->currentText(), QString("MR default"));
    QVERIFY(w->applyPresetByName("MIP"));
    QCOMPARE(preset3d->currentText(), QString("MIP"));
  }

  void scrollingShowsTheNextSlices() {
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kSample}));
    SliceView* v = w->grid()->activeSliceView();
    const QImage before = v->grabFramebuffer();
    for (int i = 0; i < 3; ++i) QTest::keyClick(v, Qt::Key_Up);
    QCOMPARE(v->sliceIndex(), 19);
    QTest::keyClick(v, Qt::Key_PageDown);
    QCOMPARE(v->sliceIndex(), 9);
    QWheelEvent wheel(QPointF(100, 100), v->mapToGlobal(QPointF(100, 100)), {}, QPoint(0, 240), Qt::NoButton, Qt::NoModifier,
                      Qt::NoScrollPhase, false);
    QApplication::sendEvent(v, &wheel);
    QCOMPARE(v->sliceIndex(), 11);
    QVERIFY(QString::fromStdString(v->cornerTexts().bottomLeft).contains("Im 12/32"));
    const QImage after = v->grabFramebuffer();
    QVERIFY(before != after);
    const Match m = compareWithVolume(v);
    QVERIFY2(m.correlation > 0.98, qPrintable(QString("correlation %1").arg(m.correlation)));
  }

  // Under a software rasteriser the views draw single-sampled: a 4x multisampled frame
  // takes about three times as long in llvmpipe. The image's pixels must not change.
  void softwareOpenGlDrawsSingleSampledWithTheSamePixels() {
    QVERIFY(VtkWidget::isSoftwareRenderer("llvmpipe (LLVM 15.0.6, 256 bits)"));
    QVERIFY(VtkWidget::isSoftwareRenderer("softpipe"));
    QVERIFY(!VtkWidget::isSoftwareRenderer("NVIDIA H200/PCIe/SSE2"));
    QVERIFY(!VtkWidget::isSoftwareRenderer("Mesa Intel(R) UHD Graphics 620 (KBL GT2)"));
    QVERIFY(!VtkWidget::isSoftwareRenderer(nullptr));
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kSample}));
    SliceView* v = w->grid()->activeSliceView();
    v->makeCurrent();
    const QByteArray renderer(reinterpret_cast<const char*>(v->context()->functions()->glGetString(GL_RENDERER)));
    v->doneCurrent();
    QVERIFY2(VtkWidget::isSoftwareRenderer(renderer.constData()), renderer.constData());  // CI runs Mesa llvmpipe
    QCOMPARE(v->multiSamples(), 0);
    const QImage single = v->grabFramebuffer().convertToFormat(QImage::Format_RGB32);
    window_.reset();

    VtkWidget::setRequestedMultiSamples(4);
    w = openWindow();
    VtkWidget::setRequestedMultiSamples(-1);
    QVERIFY(w);
    QVERIFY(load(w, {kSample}));
    v = w->grid()->activeSliceView();
    QCOMPARE(v->multiSamples(), 4);
    const QImage multi = v->grabFramebuffer().convertToFormat(QImage::Format_RGB32);
    QCOMPARE(multi.size(), single.size());
    // The middle of the view holds only the image (annotations are at its edges).
    int differ = 0, bright = 0;
    for (int y = single.height() / 4; y < 3 * single.height() / 4; ++y)
      for (int x = single.width() / 4; x < 3 * single.width() / 4; ++x) {
        differ += single.pixel(x, y) != multi.pixel(x, y);
        bright += qGray(single.pixel(x, y)) > 60;
      }
    QVERIFY2(bright > single.width() * single.height() / 40, qPrintable(QString("%1 bright pixels").arg(bright)));
    QVERIFY2(differ == 0, qPrintable(QString("%1 pixels differ").arg(differ)));
  }

  void windowLevelPresetsAndMouseDrag() {
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kSample}));
    SliceView* v = w->grid()->activeSliceView();
    QVERIFY(w->applyPresetByName("bone"));
    QCOMPARE(v->windowLevel().width, 1800.0);
    QCOMPARE(v->windowLevel().center, 400.0);
    Match m = compareWithVolume(v);
    QVERIFY2(m.meanAbsDiff < 4.0, qPrintable(QString("bone window: %1").arg(m.meanAbsDiff)));
    QVERIFY(w->applyPresetByName("brain"));
    QCOMPARE(v->windowLevel().width, 80.0);
    m = compareWithVolume(v);
    QVERIFY2(m.meanAbsDiff < 6.0, qPrintable(QString("brain window: %1").arg(m.meanAbsDiff)));
    // Dragging right widens the window, dragging down raises the level.
    const WindowLevel start = v->windowLevel();
    const QPoint c = v->rect().center();
    QTest::mousePress(v, Qt::LeftButton, {}, c);
    QMouseEvent move(QEvent::MouseMove, QPointF(c + QPoint(60, 40)), v->mapToGlobal(QPointF(c + QPoint(60, 40))),
                     Qt::NoButton, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(v, &move);
    QTest::mouseRelease(v, Qt::LeftButton, {}, c + QPoint(60, 40));
    QVERIFY(v->windowLevel().width > start.width);
    QVERIFY(v->windowLevel().center > start.center);
    QVERIFY(QString::fromStdString(v->cornerTexts().bottomRight).contains(QString("W %1").arg(std::lround(v->windowLevel().width))));
    // Invert: the same pixels, mirrored grey.
    const QImage plain = v->grabFramebuffer().convertToFormat(QImage::Format_Grayscale8);
    v->setInverted(true);
    const QImage inv = v->grabFramebuffer().convertToFormat(QImage::Format_Grayscale8);
    const QPoint p = c + QPoint(10, 10);
    QVERIFY(std::abs(qGray(plain.pixel(p)) + qGray(inv.pixel(p)) - 255) <= 3);
  }

  void layoutsSwitch() {
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kSample}));
    w->setLayoutMode(Layout::TwoByTwo);
    QTest::qWait(50);
    for (int i = 0; i < 4; ++i) QVERIFY(w->grid()->sliceView(i)->isVisible());
    QVERIFY(!w->grid()->volumeView()->isVisible());
    w->setLayoutMode(Layout::OneByTwo);
    QTest::qWait(50);
    QVERIFY(w->grid()->sliceView(1)->isVisible());
    QVERIFY(!w->grid()->sliceView(2)->isVisible());
    w->setLayoutMode(Layout::Mpr);
    QTest::qWait(100);
    QVERIFY(w->grid()->volumeView()->isVisible());
    QCOMPARE(w->grid()->sliceView(0)->plane(), Plane::Axial);
    QCOMPARE(w->grid()->sliceView(1)->plane(), Plane::Coronal);
    QCOMPARE(w->grid()->sliceView(2)->plane(), Plane::Sagittal);
    for (int i = 0; i < 3; ++i) QVERIFY(w->grid()->sliceView(i)->hasSeries());
    QVERIFY(w->grid()->volumeView()->series() != nullptr);
    QCOMPARE(w->findChild<QComboBox*>("Preset3D")->currentText(), QString("CT bone"));
    // Coronal and sagittal markers.
    auto e = w->grid()->sliceView(1)->edgeTexts();
    QCOMPARE(QString::fromStdString(e[2]), QString("S"));
    QCOMPARE(QString::fromStdString(e[0]), QString("R"));
    e = w->grid()->sliceView(2)->edgeTexts();
    QCOMPARE(QString::fromStdString(e[0]), QString("A"));
    QCOMPARE(QString::fromStdString(e[1]), QString("P"));
    // The MPR planes show the volume where they say they are.
    for (int i = 1; i < 3; ++i) {
      const Match m = compareWithVolume(w->grid()->sliceView(i));
      QVERIFY2(m.correlation > 0.95, qPrintable(QString("view %1 correlation %2").arg(i).arg(m.correlation)));
    }
    // The 3D view renders the volume (bright skull on dark background).
    const int bright = brightPixels(w->grid()->volumeView()->grabFramebuffer());
    QVERIFY2(bright > 50, qPrintable(QString("bright pixels in 3D: %1").arg(bright)));
    QCOMPARE(QString::fromStdString(w->grid()->volumeView()->renderModeName()), QString("GPU ray cast"));
  }

  void the3dViewDraftsThenRefinesAndAGrabReusesAnUnchangedFrame() {
    MainWindow* w = openWindow();
    QVERIFY(w);
    w->setLayoutMode(Layout::Mpr);
    VolumeView3D* v = w->grid()->volumeView();
    QSignalSpy frames(v, &VtkWidget::frameRendered);
    QSignalSpy refined(v, &VolumeView3D::refined);
    int framesBeforeSeries = -1;  // frames drawn before the whole series was shown
    connect(w, &MainWindow::seriesLoaded, this, [&] { framesBeforeSeries = static_cast<int>(frames.size()); },
            Qt::SingleShotConnection);
    QVERIFY(load(w, {kSample}));
    // A hang guard, not a speed requirement.
    for (int i = 0; i < kRunGuardMs / 50 && refined.isEmpty(); ++i) QTest::qWait(50);
    QCOMPARE(refined.size(), 1);
    QVERIFY(!v->refining());
    // The draft and the full-quality frame, both of the series.
    QVERIFY(framesBeforeSeries >= 0);
    QVERIFY2(frames.size() - framesBeforeSeries >= 2, qPrintable(QString("%1 of %2").arg(framesBeforeSeries).arg(frames.size())));
    // Nothing changed: a grab uses the frame on screen instead of rendering again.
    const int before = static_cast<int>(frames.size());
    const QImage same = v->grabFramebuffer();
    QCOMPARE(static_cast<int>(frames.size()), before);
    const int bright = brightPixels(same);
    QVERIFY2(bright > 50, qPrintable(QString("bright pixels in 3D: %1").arg(bright)));
    // A change (another preset) is rendered by the grab itself, and shows.
    v->setPreset(VolumePreset::Mip);
    const QImage mip = v->grabFramebuffer();
    QCOMPARE(static_cast<int>(frames.size()), before + 1);
    QVERIFY(mip != same);
    // So is a camera move.
    v->resetView();
    v->renderer()->GetActiveCamera()->Azimuth(90);
    const QImage turned = v->grabFramebuffer();
    QCOMPARE(static_cast<int>(frames.size()), before + 2);
    QVERIFY(turned != mip);
  }

  void crosshairClickMovesTheOtherPlanes() {
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kSample}));
    w->setLayoutMode(Layout::Mpr);
    QTest::qWait(100);
    SliceView* axial = w->grid()->sliceView(0);
    SliceView* coronal = w->grid()->sliceView(1);
    SliceView* sagittal = w->grid()->sliceView(2);
    const QPoint click = axial->rect().center() + QPoint(40, -30);
    const Vec3 target = axial->worldAt(click);
    QTest::mouseClick(axial, Qt::LeftButton, {}, click);
    QTest::qWait(50);
    const Vec3 c = w->grid()->crosshair();
    QVERIFY((c - target).norm() < 0.5);
    // Coronal now cuts through the clicked A/P position, sagittal through its L/R one.
    QVERIFY(std::fabs(coronal->navigator().focal().y - target.y) <= coronal->navigator().stepMm());
    QVERIFY(std::fabs(sagittal->navigator().focal().x - target.x) <= sagittal->navigator().stepMm());
    // The crosshair is drawn: a red (axial plane) line crosses the coronal view where the
    // crosshair is.
    const QImage img = coronal->grabFramebuffer().convertToFormat(QImage::Format_RGB888);
    const QPointF at = coronal->widgetPos(c);
    int red = 0;
    for (int x = 10; x < img.width() - 10; x += 3) {
      for (int dy = -1; dy <= 1; ++dy) {
        const QRgb px = img.pixel(x, std::clamp(static_cast<int>(std::lround(at.y())) + dy, 0, img.height() - 1));
        // The line may fall between two pixel rows and be spread over both.
        if (qRed(px) - qGreen(px) > 60 && qRed(px) - qBlue(px) > 60) {
          ++red;
          break;
        }
      }
    }
    QVERIFY2(red > img.width() / 6, qPrintable(QString("red line pixels %1").arg(red)));
    // Oblique: rotating in the axial view turns the coronal plane, not the axial one.
    const Vec3 axialNormal = axial->navigator().axes().normal;
    w->grid()->rotateMpr(0.3, Plane::Axial);
    QVERIFY((axial->navigator().axes().normal - axialNormal).norm() < 1e-9);
    QVERIFY(std::fabs(coronal->navigator().axes().normal.dot({0, 1, 0}) - std::cos(0.3)) < 1e-6);
    QVERIFY(std::fabs(coronal->navigator().axes().normal.dot(sagittal->navigator().axes().normal)) < 1e-9);
  }

  void slabMipIsBrighterThanASlice() {
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kSample}));
    SliceView* v = w->grid()->activeSliceView();
    auto mean = [](const QImage& i) {
      const QImage g = i.convertToFormat(QImage::Format_Grayscale8);
      double s = 0;
      for (int y = 0; y < g.height(); y += 3)
        for (int x = 0; x < g.width(); x += 3) s += qGray(g.pixel(x, y));
      return s;
    };
    const double plain = mean(v->grabFramebuffer());
    w->grid()->setSlab(SlabMode::Max, 10.0);
    const double mip = mean(v->grabFramebuffer());
    w->grid()->setSlab(SlabMode::Min, 10.0);
    const double minip = mean(v->grabFramebuffer());
    QVERIFY2(mip > plain * 1.02, qPrintable(QString("%1 vs %2").arg(mip).arg(plain)));
    QVERIFY(minip < plain);
    QVERIFY(QString::fromStdString(v->cornerTexts().bottomLeft).contains("MinIP slab 10 mm"));
  }

  void overlayShowsLabelsInColour() {
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kSample}));
    SliceView* v = w->grid()->activeSliceView();
    // Label 1 where the CT is bone (> 300 HU), on the CT's grid.
    const Volume& ct = *v->series()->volume;
    auto labels = Volume::zeros(PixelType::UInt8, ct.geometry());
    QVERIFY(labels);
    for (std::size_t i = 0; i < ct.voxelCount(); ++i) labels->data<std::uint8_t>()[i] = ct.data<std::int16_t>()[i] > 300;
    const QString path = dataDir_->path() + "/bone.nii.gz";
    QVERIFY(io::writeImage(*labels, path.toStdString()));
    QSignalSpy loaded(w, &MainWindow::overlayLoaded);
    w->openOverlay(path);
    QVERIFY(loaded.wait(20000));
    QTest::qWait(100);
    QVERIFY(w->labelPanel()->overlay() != nullptr);
    QCOMPARE(static_cast<int>(w->labelPanel()->overlay()->entries.size()), 1);
    const QImage img = v->grabFramebuffer().convertToFormat(QImage::Format_RGB888);
    int reddish = 0, bone = 0, greyOutside = 0, outside = 0;
    for (int y = img.height() / 6; y < img.height() * 5 / 6; y += 4) {
      for (int x = img.width() / 6; x < img.width() * 5 / 6; x += 4) {
        const Vec3 ijk = ct.geometry().lpsToIjk(v->worldAt(QPointF(x + 0.5, y + 0.5)));
        const long i = std::lround(ijk.x), j = std::lround(ijk.y), k = std::lround(ijk.z);
        if (i < 1 || j < 1 || i >= 511 || j >= 511) continue;
        const QRgb px = img.pixel(x, y);
        const bool red = qRed(px) > qGreen(px) + 25;
        // Use voxels whose neighbours agree, away from label borders.
        bool all = true, none = true;
        for (int dj = -1; dj <= 1; ++dj)
          for (int di = -1; di <= 1; ++di) {
            const bool b = ct.scalarAt(static_cast<std::size_t>(i + di), static_cast<std::size_t>(j + dj), static_cast<std::size_t>(k)) > 300;
            all = all && b;
            none = none && !b;
          }
        if (all) {
          ++bone;
          reddish += red;
        } else if (none) {
          ++outside;
          greyOutside += !red;
        }
      }
    }
    QVERIFY(bone > 100);
    QVERIFY2(reddish > bone * 9 / 10, qPrintable(QString("%1 of %2 bone samples coloured").arg(reddish).arg(bone)));
    QVERIFY2(greyOutside > outside * 9 / 10, qPrintable(QString("%1 of %2 others grey").arg(greyOutside).arg(outside)));
    // Hiding the label removes the colour.
    w->labelPanel()->overlay()->entries[0].visible = false;
    w->grid()->overlayAppearanceChanged();
    const QImage hidden = v->grabFramebuffer().convertToFormat(QImage::Format_RGB888);
    int stillRed = 0;
    for (int y = 0; y < hidden.height(); y += 4)
      for (int x = 0; x < hidden.width(); x += 4) stillRed += qRed(hidden.pixel(x, y)) > qGreen(hidden.pixel(x, y)) + 25;
    QVERIFY(stillRed < 10);
  }

  // A distance drawn with the mouse between two voxel centres measures their physical
  // distance within half a voxel: on the real CT and on an oblique, anisotropic series.
  void aDrawnDistanceIsThePhysicalDistance() {
    for (const QString& path : {kSample, kCorpus + "/ramp/oblique"}) {
      MainWindow* w = openWindow();
      QVERIFY(load(w, {path}));
      w->setMeasureTool(MeasureTool::Distance);
      SliceView* v = w->grid()->activeSliceView();
      while (mmPerPixelOf(v) > 0.1) v->zoomBy(1.25);  // whole pixels then err by < 0.08 mm
      QTest::qWait(50);
      const ImageGeometry& g = v->series()->volume->geometry();
      auto voxelNear = [&](double fx, double fy) {
        Vec3 ijk = g.lpsToIjk(v->worldAt({v->width() * fx, v->height() * fy}));
        for (std::size_t a = 0; a < 3; ++a) ijk[a] = std::round(ijk[a]);
        return g.ijkToLps(ijk);
      };
      const Vec3 a = voxelNear(0.3, 0.35), b = voxelNear(0.7, 0.6);
      dragMouse(v, v->widgetPos(a), v->widgetPos(b));
      const auto items = measurementsOf(w, v);
      QCOMPARE(items.size(), std::size_t(1));
      QCOMPARE(items[0].kind, MeasurementKind::Distance);
      const double halfVoxel = 0.5 * std::min(g.spacingMm.x, g.spacingMm.y);
      const double expected = (b - a).norm();
      QVERIFY2(expected > 5.0, qPrintable(QString::number(expected)));
      QVERIFY2(std::fabs(lengthMm(items[0]) - expected) < halfVoxel,
               qPrintable(QString("%1: drawn %2 mm, true %3 mm").arg(path).arg(lengthMm(items[0])).arg(expected)));
      // The view labels it with that length.
      const auto shown = v->shownMeasurements();
      QCOMPARE(shown.size(), std::size_t(1));
      QCOMPARE(QString::fromStdString(shown[0].text), QString::fromStdString(describe(items[0], nullptr, {})));
      window_.reset();
    }
  }

  // Each tool driven with the mouse on an anisotropic phantom (a 50 HU box in air, voxels
  // 0.6 x 0.8 x 2.5 mm): ROI statistics are the phantom's values, areas and the angle are
  // what was drawn; a distance along x shows in the axial and coronal MPR planes that
  // contain it and not in the sagittal one.
  void measurementToolsOnAPhantom() {
    QVERIFY2(QDir(kCorpus + "/phantom/box").exists(), "test corpus missing: ctest builds it first (corpus_setup)");
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kCorpus + "/phantom/box"}));
    SliceView* v = w->grid()->activeSliceView();
    const ImageGeometry& g = v->series()->volume->geometry();
    v->setSliceIndex(12);  // z = 0, through the box
    QTest::qWait(50);
    const double z = v->navigator().focal().z;
    QVERIFY2(std::fabs(z) < 1e-6, qPrintable(QString::number(z)));
    auto at = [&](double x, double y) { return v->widgetPos({x, y, z}); };
    const double px = mmPerPixelOf(v);
    QVERIFY2(px < 0.2, qPrintable(QString::number(px)));

    w->setMeasureTool(MeasureTool::Ellipse);
    dragMouse(v, at(-10, -8), at(10, 8));
    w->setMeasureTool(MeasureTool::Rectangle);
    dragMouse(v, at(-25, -5), at(-15, 5));
    w->setMeasureTool(MeasureTool::Polygon);
    clickMouse(v, at(0, 0));
    clickMouse(v, at(10, 0));
    clickMouse(v, at(0, 10), true);
    {  // a freehand circle, drawn in one stroke
      const QPointF c = pixel(at(6, -6));
      const double r = 6.0 / px;
      mouse(v, QEvent::MouseButtonPress, pixel(c + QPointF(r, 0)), Qt::LeftButton, Qt::LeftButton);
      for (int i = 1; i <= 72; ++i) {
        const double t = 2 * M_PI * i / 72;
        mouse(v, QEvent::MouseMove, pixel(c + QPointF(r * std::cos(t), r * std::sin(t))), Qt::NoButton, Qt::LeftButton);
      }
      mouse(v, QEvent::MouseButtonRelease, pixel(c + QPointF(r, 0)), Qt::LeftButton, Qt::NoButton);
    }
    w->setMeasureTool(MeasureTool::Angle);
    clickMouse(v, at(-10, 12));
    clickMouse(v, at(-18, 12));
    clickMouse(v, at(-18, 4));
    w->setMeasureTool(MeasureTool::Point);
    clickMouse(v, at(15, 10));
    w->setMeasureTool(MeasureTool::Distance);
    const double yRow = g.ijkToLps({0, 49, 0}).y;  // a voxel row: the coronal planes hold it exactly
    dragMouse(v, at(-12, yRow), at(12, yRow));

    const auto items = measurementsOf(w, v);
    QCOMPARE(items.size(), std::size_t(7));
    MeasurementStore* store = w->measurements();
    const LoadedSeries& s = *v->series();
    const double tol = 2 * px;  // whole-pixel input
    // Ellipse inside the box: 50 HU exactly, no spread; area pi*10*8.
    QCOMPARE(items[0].kind, MeasurementKind::Ellipse);
    const RoiStatistics* e = store->statistics(s, items[0]);
    QVERIFY(e);
    QVERIFY(e->onVoxels);
    QCOMPARE(e->mean, 50.0);
    QCOMPARE(e->sd, 0.0);
    QCOMPARE(e->min, 50.0);
    QCOMPARE(e->max, 50.0);
    QVERIFY2(std::fabs(e->areaMm2 - M_PI * 80) < M_PI * (10 + 8) * tol, qPrintable(QString::number(e->areaMm2)));
    QVERIFY2(std::fabs(static_cast<double>(e->samples) - M_PI * 80 / (0.6 * 0.8)) < 20, qPrintable(QString::number(e->samples)));
    // Rectangle across the box's edge at x = -20: air and box, half each.
    const RoiStatistics* r = store->statistics(s, items[1]);
    QVERIFY(r);
    QCOMPARE(r->min, -1000.0);
    QCOMPARE(r->max, 50.0);
    QVERIFY2(std::fabs(r->mean - (-475.0)) < 60, qPrintable(QString::number(r->mean)));
    QVERIFY2(std::fabs(r->areaMm2 - 100) < 20 * tol, qPrintable(QString::number(r->areaMm2)));
    // Polygon (clicked triangle) and freehand circle.
    QCOMPARE(items[2].kind, MeasurementKind::Polygon);
    QCOMPARE(items[2].points.size(), std::size_t(3));
    QVERIFY2(std::fabs(areaMm2(items[2]) - 50) < 30 * tol, qPrintable(QString::number(areaMm2(items[2]))));
    QCOMPARE(items[3].kind, MeasurementKind::Polygon);
    QVERIFY(items[3].points.size() > 30);
    QVERIFY2(std::fabs(areaMm2(items[3]) - M_PI * 36) < 0.03 * M_PI * 36, qPrintable(QString::number(areaMm2(items[3]))));
    QCOMPARE(store->statistics(s, items[3])->mean, 50.0);
    // A right angle, the point, and the distance.
    QCOMPARE(items[4].kind, MeasurementKind::Angle);
    QVERIFY2(std::fabs(angleDeg(items[4]) - 90) < 1, qPrintable(QString::number(angleDeg(items[4]))));
    QCOMPARE(items[5].kind, MeasurementKind::Point);
    QCOMPARE(items[6].kind, MeasurementKind::Distance);
    QVERIFY(std::fabs(lengthMm(items[6]) - 24) < 2 * tol);
    QCOMPARE(v->shownMeasurements().size(), std::size_t(7));
    QCOMPARE(w->findingsPanel()->findChild<QTableWidget*>("FindingsTable")->rowCount(), 7);
    // The phantom has a series UID: saved with it.
    QVERIFY(w->findingsPanel()->findChild<QLabel*>("FindingsNote")->text().startsWith("Saved"));
    w->setMeasureTool(MeasureTool::None);
    QTest::qWait(100);
    QVERIFY(w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-measurements.png"));  // for a person to look at

    // Another slice does not show them.
    v->scrollBy(2);
    QCOMPARE(v->shownMeasurements().size(), std::size_t(0));

    // MPR: clicking the distance in the Findings list puts the crosshair on it; the axial
    // and coronal planes contain it, the sagittal one does not.
    w->setLayoutMode(Layout::Mpr);
    QTest::qWait(100);
    auto* table = w->findingsPanel()->findChild<QTableWidget*>("FindingsTable");
    QCOMPARE(table->rowCount(), 7);
    QTest::mouseClick(table->viewport(), Qt::LeftButton, {}, table->visualItemRect(table->item(6, 2)).center());
    QTest::qWait(100);
    auto shows = [&](int view, int id) {
      for (const auto& m : w->grid()->sliceView(view)->shownMeasurements())
        if (m.id == id) return true;
      return false;
    };
    const int distanceId = items[6].id, ellipseId = items[0].id;
    QVERIFY(shows(0, distanceId));   // axial
    QVERIFY(shows(0, ellipseId));
    QVERIFY(shows(1, distanceId));   // coronal
    QVERIFY(!shows(1, ellipseId));
    QVERIFY(!shows(2, distanceId));  // sagittal
    QVERIFY(w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-measurements-mpr.png"));
  }

  // Edit a measurement by its handle, undo and redo, delete and undo, label it, jump back
  // to it from the Findings list, export it, and find it again after a restart.
  void measurementsAreEditedUndoneAndKept() {
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kSample}));
    SliceView* v = w->grid()->activeSliceView();
    const int slice = v->sliceIndex();
    const Vec3 f = v->navigator().focal();
    const Vec3 right = v->navigator().axes().right, up = v->navigator().axes().up;
    const Vec3 p = f - right * 20.0, q = f + right * 20.0, r = f + right * 20.0 + up * 30.0;
    w->setMeasureTool(MeasureTool::Distance);
    dragMouse(v, v->widgetPos(p), v->widgetPos(q));
    w->setMeasureTool(MeasureTool::None);
    QCOMPARE(measurementsOf(w, v).size(), std::size_t(1));
    const double first = lengthMm(measurementsOf(w, v)[0]);
    QVERIFY(std::fabs(first - 40) < 1);
    // The end at q dragged to r (the tool is off: handles still edit).
    dragMouse(v, v->widgetPos(q), v->widgetPos(r));
    const double edited = lengthMm(measurementsOf(w, v)[0]);
    QVERIFY2(std::fabs(edited - 50) < 1, qPrintable(QString::number(edited)));
    QVERIFY(w->undoMeasurement());
    QCOMPARE(lengthMm(measurementsOf(w, v)[0]), first);
    QVERIFY(w->redoMeasurement());
    QCOMPARE(lengthMm(measurementsOf(w, v)[0]), edited);
    // Selected by the edit: Delete removes it, undo brings it back.
    QCOMPARE(v->selectedMeasurement(), measurementsOf(w, v)[0].id);
    v->setFocus();
    QTest::keyClick(v, Qt::Key_Delete);
    QCOMPARE(measurementsOf(w, v).size(), std::size_t(0));
    QVERIFY(w->undoMeasurement());
    QCOMPARE(measurementsOf(w, v).size(), std::size_t(1));
    // A label typed in the Findings list.
    auto* table = w->findingsPanel()->findChild<QTableWidget*>("FindingsTable");
    QCOMPARE(table->rowCount(), 1);
    table->item(0, 3)->setText("lesion A");
    QTRY_COMPARE(QString::fromStdString(measurementsOf(w, v)[0].text), QString("lesion A"));
    QVERIFY(QString::fromStdString(v->shownMeasurements()[0].text).startsWith("lesion A: "));
    // Away and back through the list.
    v->scrollBy(5);
    QCOMPARE(v->shownMeasurements().size(), std::size_t(0));
    QTest::mouseClick(table->viewport(), Qt::LeftButton, {}, table->visualItemRect(table->item(0, 1)).center());
    QCOMPARE(v->sliceIndex(), slice);
    QCOMPARE(v->shownMeasurements().size(), std::size_t(1));
    // Export.
    const QString csv = dataDir_->path() + "/m.csv";
    QString error;
    QVERIFY2(w->findingsPanel()->exportTo(csv, true, &error), qPrintable(error));
    QFile fc(csv);
    QVERIFY(fc.open(QIODevice::ReadOnly));
    const QStringList lines = QString::fromUtf8(fc.readAll()).split("\r\n", Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), 2);
    QVERIFY2(lines[1].startsWith(QString("%1,distance,lesion A,%2").arg(measurementsOf(w, v)[0].id).arg(edited, 0, 'g', 6)),
             qPrintable(lines[1]));
    const Measurement saved = measurementsOf(w, v)[0];

    // Restart: the measurement comes back from the study database, exactly.
    window_->close();
    window_.reset();
    w = openWindow();
    QVERIFY(load(w, {kSample}));
    v = w->grid()->activeSliceView();
    const auto back = measurementsOf(w, v);
    QCOMPARE(back.size(), std::size_t(1));
    QCOMPARE(QString::fromStdString(back[0].text), QString("lesion A"));
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t c = 0; c < 3; ++c) QCOMPARE(back[0].points[i][c], saved.points[i][c]);
    QCOMPARE(v->sliceIndex(), slice);
    QCOMPARE(v->shownMeasurements().size(), std::size_t(1));
    QCOMPARE(w->findingsPanel()->findChild<QTableWidget*>("FindingsTable")->rowCount(), 1);
  }

  // The segment editor driven with the mouse on the box phantom: a brushed sphere has the
  // voxels of a sphere, a stroke is one undo step and undo is voxel-exact, the eraser
  // erases, region growing fills the box, interpolation fills the slices between two discs,
  // statistics are the phantom's, the map saves and loads with its names, and an AI-like
  // result on the grid opens editable.
  // Save... writes the label map as a job of its own, from a copy of the voxels: the reader
  // paints on meanwhile, and what is painted after the save began stays unsaved, not lost.
  void labelMapIsSavedInTheBackground() {
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kCorpus + "/phantom/box"}));
    SliceView* v = w->grid()->activeSliceView();
    v->setSliceIndex(12);  // z = 0
    QTest::qWait(50);
    LabelPanel* lp = w->labelPanel();
    QVERIFY(lp->newLabelMap());
    lp->setBrushDiameterMm(10);
    lp->setBrushSphere(true);
    lp->setTool(PaintTool::Brush);
    clickMouse(v, pixel(v->widgetPos({-25, 20, 0})));
    const auto labels = lp->overlay()->labels;
    const std::vector<std::uint8_t> atSave(labels->data<std::uint8_t>(), labels->data<std::uint8_t>() + labels->voxelCount());
    QVERIFY(std::count(atSave.begin(), atSave.end(), 1) > 0);
    const QString file = dataDir_->path() + "/background.nii.gz";
    QSignalSpy saved(w, &MainWindow::labelMapSaved);
    emit lp->saveRequested(file);  // what Save... does once the reader chose a file
    QCOMPARE(w->runningJobs(), 1);
    clickMouse(v, pixel(v->widgetPos({25, 20, 0})));  // painting goes on
    QVERIFY(saved.wait(30000));
    QVERIFY(saved.first().at(0).toBool());
    QVERIFY(lp->hasUnsavedChanges());  // the second dab is not in the file
    auto back = io::readLabelMap(file.toStdString());
    QVERIFY(back.ok());
    QCOMPARE(back->labels->voxelCount(), atSave.size());
    QVERIFY(std::memcmp(back->labels->bytes(), atSave.data(), atSave.size()) == 0);  // as it was when the save began
    // A DICOM SEG the same way: then nothing is left unsaved, and the study database has it.
    QSignalSpy imported(w->browser(), &StudyBrowser::importFinished);
    emit lp->saveRequested(dataDir_->path() + "/background-seg.dcm");
    QVERIFY(saved.wait(30000));
    QVERIFY(saved.at(1).at(0).toBool());
    QVERIFY(!lp->hasUnsavedChanges());
    QVERIFY(imported.wait(30000));
    // A file that cannot be written: said so, and the edits stay unsaved.
    clickMouse(v, pixel(v->widgetPos({0, 20, 0})));
    emit lp->saveRequested("/proc/no-such-folder/labels.nii.gz");
    QVERIFY(saved.wait(30000));
    QVERIFY(!saved.at(2).at(0).toBool());
    QVERIFY(lp->hasUnsavedChanges());
    QVERIFY(w->messages().join('\n').contains("error: "));
  }

  void segmentEditorPaintsGrowsInterpolatesAndSaves() {
    MainWindow::Options o;
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kCorpus + "/phantom/box"}));
    SliceView* v = w->grid()->activeSliceView();
    v->setSliceIndex(12);  // z = 0
    QTest::qWait(50);
    const ImageGeometry g = v->series()->volume->geometry();  // a copy: the series is reloaded below
    LabelPanel* lp = w->labelPanel();
    QVERIFY(lp->newLabelMap());
    QVERIFY(lp->editing());
    const auto labels = lp->overlay()->labels;
    auto count = [&](int value) {
      std::size_t n = 0;
      for (std::size_t i = 0; i < labels->voxelCount(); ++i) n += labels->data<std::uint8_t>()[i] == value;
      return n;
    };
    auto snapshot = [&] { return std::vector<std::uint8_t>(labels->data<std::uint8_t>(), labels->data<std::uint8_t>() + labels->voxelCount()); };
    auto same = [&](const std::vector<std::uint8_t>& c) { return std::memcmp(labels->data<std::uint8_t>(), c.data(), c.size()) == 0; };

    // A 10 mm sphere dab where the reader clicks, in air (x = -25 mm).
    lp->setBrushDiameterMm(10);
    lp->setBrushSphere(true);
    lp->setTool(PaintTool::Brush);
    QCOMPARE(v->paintTool(), PaintTool::Brush);
    const QPointF at = pixel(v->widgetPos({-25, 20, 0}));
    const QImage before = v->grabFramebuffer();
    clickMouse(v, at);
    const Vec3 c = v->worldAt(at);
    std::size_t sphere = 0;
    for (std::size_t k = 0; k < g.size[2]; ++k)
      for (std::size_t j = 0; j < g.size[1]; ++j)
        for (std::size_t i = 0; i < g.size[0]; ++i) sphere += (g.ijkToLps({double(i), double(j), double(k)}) - c).norm() <= 5.0;
    QCOMPARE(count(1), sphere);
    QTest::qWait(50);
    const QImage after = v->grabFramebuffer();
    QVERIFY2(after.pixel(at.toPoint()) != before.pixel(at.toPoint()), "the painted label is not drawn");
    const auto afterDab = snapshot();

    // A 2D stroke: one undo step; undo and redo are voxel-exact.
    lp->setBrushSphere(false);
    lp->setBrushDiameterMm(4);
    dragMouse(v, v->widgetPos({-26, -30, 0}), v->widgetPos({-26, 30, 0}), 20);
    const auto afterStroke = snapshot();
    QVERIFY(count(1) > sphere + 100);
    QVERIFY(w->undoLast());
    QVERIFY(same(afterDab));
    QVERIFY(w->redoLast());
    QVERIFY(same(afterStroke));
    // The eraser takes the label away under it.
    lp->setTool(PaintTool::Eraser);
    clickMouse(v, at);
    const auto centre = g.lpsToIjk(c);
    QCOMPARE(int(labels->data<std::uint8_t>()[labels->linearIndex(std::size_t(std::lround(centre.x)), std::size_t(std::lround(centre.y)), 12)]), 0);

    // Region growing in the box: every 50 HU voxel joins label 2 (none was labelled).
    QCOMPARE(lp->addLabel(), 2);
    lp->setIntensityLimit(true, 0, 100);
    lp->setTool(PaintTool::Grow);
    clickMouse(v, v->widgetPos({5, 5, 0}));
    std::size_t box = 0;
    for (std::size_t i = 0; i < v->series()->volume->voxelCount(); ++i) box += v->series()->volume->data<std::int16_t>()[i] == 50;
    QCOMPARE(count(2), box);
    QVERIFY(lp->waitForMeasures(20000));
    const LabelMeasures* m2 = nullptr;
    for (const auto& m : lp->measures())
      if (m.label == 2) m2 = &m;
    QVERIFY(m2);
    QCOMPARE(m2->mean, 50.0);
    QCOMPARE(m2->sd, 0.0);
    QVERIFY(std::fabs(m2->volumeMl - double(box) * 0.6 * 0.8 * 2.5 / 1000) < 1e-9);
    auto* table = lp->findChild<QTableWidget*>("LabelTable");
    QCOMPARE(table->rowCount(), 2);
    QCOMPARE(table->item(1, 3)->text(), QString("50.0 \u00b1 0.0"));

    // Two discs in air, 8 slices apart, and interpolation between them.
    QCOMPARE(lp->addLabel(), 3);
    lp->setIntensityLimit(false, 0, 0);
    lp->setTool(PaintTool::Brush);
    lp->setBrushDiameterMm(12);
    v->setSliceIndex(4);  // z = -20
    clickMouse(v, v->widgetPos({0, -28, -20}));
    v->setSliceIndex(12);
    lp->setBrushDiameterMm(6);
    clickMouse(v, v->widgetPos({0, -28, 0}));
    const std::size_t discs = count(3);
    lp->setWorkingNormal(v->navigator().axes().normal);
    QVERIFY(lp->interpolate());
    const double voxel = 0.6 * 0.8 * 2.5;
    const double frustum = M_PI * 20.0 / 3 * (36 + 18 + 9) + (M_PI * 36 + M_PI * 9) * 1.25;
    const double got = double(count(3)) * voxel;
    QVERIFY2(std::fabs(got - frustum) < 0.1 * frustum, qPrintable(QString("%1 mm3 vs %2 (discs %3 voxels)").arg(got).arg(frustum).arg(discs)));
    // Edit > Undo takes the latest change first, whether a measurement or a label edit.
    const auto interpolated = snapshot();
    w->setMeasureTool(MeasureTool::Distance);
    QCOMPARE(v->paintTool(), PaintTool::None);  // one tool owns the left button
    dragMouse(v, v->widgetPos({-10, 25, 0}), v->widgetPos({10, 25, 0}));
    QCOMPARE(measurementsOf(w, v).size(), std::size_t(1));
    QVERIFY(w->undoLast());
    QCOMPARE(measurementsOf(w, v).size(), std::size_t(0));
    QVERIFY(same(interpolated));
    QVERIFY(w->undoLast());
    QCOMPARE(count(3), discs);
    QVERIFY(w->redoLast());
    QVERIFY(same(interpolated));
    QVERIFY(w->redoLast());
    QCOMPARE(measurementsOf(w, v).size(), std::size_t(1));
    w->setMeasureTool(MeasureTool::None);
    lp->setTool(PaintTool::None);
    QTest::qWait(100);
    QVERIFY(w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-segment-editor.png"));  // for a person to look at

    // Saved with names and codes, read back identical; no unsaved edits left.
    lp->overlay()->entries[1].name = "Box";
    lp->setActiveLabel(2);
    QVERIFY(!lp->setLabelCode({"91723000", "SCT", "Anatomical Structure"}, {"123", "", "Phantom box"}));  // no scheme
    QVERIFY(lp->setLabelCode({"91723000", "SCT", "Anatomical Structure"}, {"L-0001", "99LUMEN", "Phantom box"}));
    lp->findChild<QSlider*>("LabelOpacity")->setValue(40);  // the selected label's own slider
    QVERIFY(lp->findChild<QComboBox*>("LabelCode")->currentText().contains("Phantom box"));
    QVERIFY(lp->hasUnsavedChanges());
    const QString file = dataDir_->path() + "/labels.nii.gz";
    QString error;
    QVERIFY2(lp->saveTo(file, &error), qPrintable(error));
    QVERIFY(!lp->hasUnsavedChanges());
    auto back = io::readLabelMap(file.toStdString());
    QVERIFY(back.ok());
    QVERIFY(std::memcmp(back->labels->bytes(), labels->bytes(), labels->byteSize()) == 0);
    QCOMPARE(QString::fromStdString(back->infos[1].name), QString("Box"));
    QCOMPARE(QString::fromStdString(back->infos[1].type.scheme), QString("99LUMEN"));
    QCOMPARE(back->infos[1].opacity, 0.4);
    // And as a DICOM SEG of the series: hand-made, so MANUAL; opened again over the series,
    // the same voxels, names and codes.
    const QString segFile = dataDir_->path() + "/labels-seg.dcm";
    QSignalSpy segImported(w->browser(), &StudyBrowser::importFinished);
    QVERIFY2(lp->saveTo(segFile, &error), qPrintable(error));
    QVERIFY(segImported.wait(30000));  // a saved SEG goes into the study database by itself
    QVERIFY2(segImported.at(0).at(1).toStringList().isEmpty(), qPrintable(segImported.at(0).at(1).toStringList().join("; ")));
    auto seg = dicom::readSegmentation(segFile.toStdString(), g);
    QVERIFY2(seg.ok(), seg ? "" : qPrintable(QString::fromStdString(seg.error().toString())));
    QVERIFY(std::memcmp(seg->labels->bytes(), labels->bytes(), labels->byteSize()) == 0);
    QCOMPARE(QString::fromStdString(seg->algorithmType), QString("MANUAL"));
    QCOMPARE(QString::fromStdString(seg->infos[1].type.meaning), QString("Phantom box"));
    w->clearOverlay();
    QSignalSpy segLoaded(w, &MainWindow::overlayLoaded);
    w->openOverlay(segFile);
    QVERIFY(segLoaded.wait(20000));
    QVERIFY(lp->editing());
    QVERIFY(std::memcmp(lp->overlay()->labels->bytes(), labels->bytes(), labels->byteSize()) == 0);
    QCOMPARE(QString::fromStdString(lp->overlay()->entries[1].name), QString("Box"));
    // Imported, the SEG is a series of its study in the browser; opening it opens the
    // series it segments with its labels over it.
    w->clearOverlay();
    QSignalSpy imported(w->browser(), &StudyBrowser::importFinished);
    w->browser()->importPaths({kCorpus + "/phantom/box"}, false);
    QVERIFY(imported.wait(30000));
    QVERIFY2(imported.at(0).at(1).toStringList().isEmpty(), qPrintable(imported.at(0).at(1).toStringList().join("; ")));
    // In the browser the SEG's tile says what it is (it has no image of its own).
    w->browser()->selectStudy(0);
    auto* seriesList = w->browser()->findChild<QListWidget*>();
    QVERIFY(seriesList);
    QListWidgetItem* segItem = nullptr;
    for (int i = 0; i < seriesList->count(); ++i)
      if (seriesList->item(i)->text().startsWith("SEG")) segItem = seriesList->item(i);
    QVERIFY(segItem);
    const QImage tile = segItem->icon().pixmap(96, 96).toImage().convertToFormat(QImage::Format_RGB888);
    int bright = 0;
    for (int y = 0; y < tile.height(); ++y)
      for (int x = 0; x < tile.width(); ++x) bright += qGray(tile.pixel(x, y)) > 180;
    QVERIFY2(bright > 40, qPrintable(QString("the SEG tile has %1 bright pixels").arg(bright)));  // its name, in white
    QVERIFY(w->browser()->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-browser-results.png"));  // for a person to look at
    QSignalSpy reopened(w, &MainWindow::overlayLoaded);
    w->openPaths({segFile});
    QVERIFY(reopened.wait(30000));
    QCOMPARE(w->grid()->activeSliceView()->series()->info.series.description, std::string("measurement phantom"));
    QTest::qWait(200);
    QVERIFY(w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-seg-reopened.png"));  // for a person to look at
    QVERIFY(std::memcmp(lp->overlay()->labels->bytes(), labels->bytes(), labels->byteSize()) == 0);

    // A result on the series grid (as the AI engine gives) opens editable with statistics;
    // saved unchanged as SEG it names the model as an AUTOMATIC algorithm.
    w->clearOverlay();
    QVERIFY(!lp->editing());
    w->showLabelMap(back->labels, {{2, "box (model)", std::nullopt}}, "model", {"box_model", "0.3", std::string(64, 'c')});
    QVERIFY(lp->editing());
    QVERIFY(lp->waitForMeasures(20000));
    QCOMPARE(lp->measures().size(), std::size_t(3));
    QSignalSpy aiSegImported(w->browser(), &StudyBrowser::importFinished);
    QVERIFY2(lp->saveTo(segFile, &error), qPrintable(error));
    QVERIFY(aiSegImported.wait(30000));
    auto aiSeg = dicom::readSegmentation(segFile.toStdString(), g);
    QVERIFY2(aiSeg.ok(), aiSeg ? "" : qPrintable(QString::fromStdString(aiSeg.error().toString())));
    QCOMPARE(QString::fromStdString(aiSeg->algorithmType), QString("AUTOMATIC"));

    // Crop to the 3D view's clipping box: label 3 (the cone, z -20..0) keeps z >= -12 only.
    const auto& map = *lp->overlay()->labels;
    auto countIn = [&](int value, double zMin) {
      std::size_t n = 0;
      for (std::size_t k = 0; k < g.size[2]; ++k)
        for (std::size_t j = 0; j < g.size[1]; ++j)
          for (std::size_t i = 0; i < g.size[0]; ++i)
            n += map.data<std::uint8_t>()[map.linearIndex(i, j, k)] == value && g.ijkToLps({double(i), double(j), double(k)}).z >= zMin;
      return n;
    };
    const std::size_t upper = countIn(3, -12), ones = countIn(1, -1e9);
    QVERIFY(upper > 0 && upper < countIn(3, -1e9));
    w->setLayoutMode(Layout::Mpr);
    QTest::qWait(200);
    // The map being edited stays on screen in every plane after the layout change.
    for (int i = 0; i < 3; ++i) QCOMPARE(w->grid()->sliceView(i)->overlay(), lp->overlay());
    const double clipBox[6] = {-40, 40, -45, 45, -12, 40};
    w->grid()->volumeView()->placeClippingBox(clipBox);
    lp->setActiveLabel(3);
    emit lp->cropRequested();
    QCOMPARE(countIn(3, -1e9), upper);
    QTest::qWait(600);  // the 3D surfaces follow the edit once painting pauses
    QVERIFY(w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-segment-editor-mpr.png"));
    // Merge label 1 into 3, then delete 3: voxels to background, the row gone.
    QVERIFY(lp->mergeIntoActive(1));
    QCOMPARE(countIn(1, -1e9), std::size_t(0));
    QCOMPARE(countIn(3, -1e9), upper + ones);
    QVERIFY(lp->deleteActiveLabel());
    QCOMPARE(countIn(3, -1e9), std::size_t(0));
    for (const auto& e : lp->overlay()->entries) QVERIFY(e.value != 3);
    QVERIFY(w->undoLast());  // the deletion's voxels come back, and their row
    QCOMPARE(countIn(3, -1e9), upper + ones);
    QVERIFY(std::any_of(lp->overlay()->entries.begin(), lp->overlay()->entries.end(), [](auto& e) { return e.value == 3; }));
    lp->setActiveLabel(3);
    // Combined with another map: intersect keeps label 3 where that map has labels.
    auto halfMask = Volume::zeros(PixelType::UInt8, g);
    for (std::size_t k = 0; k < g.size[2]; ++k)
      for (std::size_t j = 0; j < g.size[1]; ++j)
        for (std::size_t i = 0; i < g.size[0]; ++i)
          if (g.ijkToLps({double(i), double(j), double(k)}).z >= -5) halfMask->data<std::uint8_t>()[halfMask->linearIndex(i, j, k)] = 9;
    const QString maskFile = dataDir_->path() + "/upper.nii.gz";
    QVERIFY(io::writeImage(*halfMask, maskFile.toStdString()));
    const std::size_t upper3 = countIn(3, -5);
    QVERIFY(lp->combineWithFile(maskFile, LabelEditor::LogicalOp::Intersect));
    QCOMPARE(countIn(3, -1e9), upper3);
    QVERIFY(lp->combineWithFile(maskFile, LabelEditor::LogicalOp::Subtract));
    QCOMPARE(countIn(3, -1e9), std::size_t(0));
  }

  // Unsaved label edits are never lost silently: clearing the map keeps them in the
  // autosave (and says so), a new window offers them back, saving to a file retires it.
  // The report dialog: findings typed, the view as shown taken as a key image, a PDF whose
  // text and pictures are what the reader chose, stored in the study as Encapsulated PDF.
  void reportDialogMakesThePdfAReaderSees() {
    MainWindow* w = openWindow();
    QSignalSpy imported(w->browser(), &StudyBrowser::importFinished);
    w->browser()->importPaths({kCorpus + "/phantom/box"}, false);
    QVERIFY(imported.wait(30000));
    QVERIFY(load(w, {kCorpus + "/phantom/box"}));
    SliceView* v = w->grid()->activeSliceView();
    v->setSliceIndex(12);  // z = 0
    w->setMeasureTool(MeasureTool::Distance);
    dragMouse(v, v->widgetPos({-10, 0, 0}), v->widgetPos({20, 0, 0}));
    w->setMeasureTool(MeasureTool::None);
    QCOMPARE(measurementsOf(w, v).size(), std::size_t(1));
    QTest::qWait(100);
    // A classifier's answer on this series (as the AI panel hands it over) is in the report.
    w->classified(*v->series(), {"dose_grader", "2.0", std::string(64, 'e'), "cpu", "high",
                                 "Research use only: trained on simulated noise.", {{"low", 0.1}, {"high", 0.9}}, "noise SD 21.5 HU"});
    ReportDialog* d = w->showReportDialog();
    QVERIFY(d);
    d->setInstitution("Lumen Test Hospital", "");
    d->setReader("Doe^Jane");
    d->setFindings("A box of uniform density.");
    d->setImpression("Phantom as expected.");
    d->addCurrentView();
    QCOMPARE(d->keyImageCount(), 1);
    QTest::qWait(500);  // the preview follows the typing
    QVERIFY(d->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-report-dialog.png"));  // for a person to look at
    auto* preview = d->findChild<QTextBrowser*>("ReportPreview");
    QVERIFY(preview->toPlainText().contains("A box of uniform density."));
    QVERIFY(preview->toPlainText().contains("30.0 mm"));

    const QString pdf = dataDir_->path() + "/report.pdf";
    QSignalSpy stored(d, &ReportDialog::stored);
    imported.clear();
    QString error;
    QVERIFY2(d->savePdf(pdf, &error), qPrintable(error));
    QCOMPARE(stored.count(), 1);
    QVERIFY(imported.wait(30000));
    QVERIFY2(imported.at(0).at(1).toStringList().isEmpty(), qPrintable(imported.at(0).at(1).toStringList().join("; ")));
    QProcess text;
    text.start("pdftotext", {"-layout", pdf, "-"});
    QVERIFY(text.waitForFinished(30000));
    const QString t = QString::fromUtf8(text.readAllStandardOutput());
    for (const char* want : {"Lumen Test Hospital", "PHANTOM, RAMP", "A box of uniform density.", "Phantom as expected.",
                             "30.0 mm", "Doe, Jane", "image 13", "dose_grader", "high (p = 0.90); noise SD 21.5 HU",
                             "Research use only: trained on simulated noise."})
      QVERIFY2(t.contains(want), want);
    // The key image is the view as shown: the yellowish measurement line is in the PDF's pixels.
    QProcess pages;
    pages.start("pdftoppm", {"-png", "-r", "100", pdf, dataDir_->path() + "/report-page"});
    QVERIFY(pages.waitForFinished(30000));
    int coloured = 0;
    for (const QString& f : QDir(dataDir_->path()).entryList({"report-page*.png"})) {
      const QImage page(dataDir_->path() + "/" + f);
      for (int y = 0; y < page.height(); ++y)
        for (int x = 0; x < page.width(); ++x) {
          const QColor c = page.pixelColor(x, y);
          coloured += std::abs(c.red() - c.green()) + std::abs(c.green() - c.blue()) > 60;
        }
    }
    QVERIFY2(coloured > 20, qPrintable(QString::number(coloured)));
    d->close();
  }

  // File > Send to node: the series selected in the browser goes to a DICOM node (here a
  // second study database behind Lumen's own listener on loopback) as JPEG-LS, as a job
  // with progress; the node holds every instance, re-encoded, with the same voxels.
  void sendsASeriesToANodeLosslesslyCompressed() {
    QTemporaryDir peerDir, config;
    auto peerDb = db::StudyDatabase::open(peerDir.path().toStdString());
    QVERIFY(peerDb);
    net::InstanceFiler filer(**peerDb);
    net::LocalNode peer;
    peer.aeTitle = "PEER";
    peer.port = freeLoopbackPort();
    peer.minFreeMegabytes = 0;
    QVERIFY(peer.port > 0);
    auto server = net::StorageServer::start(peer, filer);
    QVERIFY2(server, server ? "" : server.error().toString().c_str());
    net::NodeConfig nodes;
    nodes.dimse.push_back(net::DimseNode{"peer", "PEER", "127.0.0.1", peer.port, std::nullopt});
    QVERIFY(net::saveNodes(config.path().toStdString() + "/nodes.json", nodes));
    const ConfigDir use(config.path().toUtf8());

    MainWindow* w = openWindow();
    QVERIFY(!w->showSendDialog());  // nothing open, nothing selected: said so
    QVERIFY(w->messages().last().contains("to send it"));
    QSignalSpy imported(w->browser(), &StudyBrowser::importFinished);
    w->browser()->importPaths({kCorpus + "/phantom/box"}, false);
    QVERIFY(imported.wait(30000));
    QVERIFY(load(w, {kCorpus + "/phantom/box"}));
    w->browser()->selectStudy(0);
    w->browser()->selectSeries(0);
    QVERIFY(w->browser()->selectedSeries());
    const std::string seriesUid = w->browser()->selectedSeries()->info.seriesInstanceUid;
    SendDialog* d = w->showSendDialog();
    QVERIFY(d);
    QVERIFY(QTest::qWaitForWindowExposed(d));
    auto* what = d->findChild<QComboBox*>("SendWhat");
    QCOMPARE(what->count(), 3);  // the selected series, the series on screen, its study
    QVERIFY(what->itemText(0).startsWith("Selected series: "));
    QVERIFY(what->itemText(0).contains("(24 files)"));
    QVERIFY(d->selectNode("peer"));
    QVERIFY(!d->selectCompression("jpeg-lossy"));
    QVERIFY(d->selectCompression("jpeg-ls"));
    QVERIFY(d->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-send-dialog.png"));  // for a person to look at
    QSignalSpy sent(w, &MainWindow::sendFinished);
    QTest::mouseClick(d->findChild<QPushButton*>("SendButton"), Qt::LeftButton);
    QCOMPARE(w->runningJobs(), 1);  // a job of its own, with progress and cancel
    QVERIFY(sent.wait(60000));
    QVERIFY2(sent.first().at(0).toBool(), qPrintable(sent.first().at(2).toString()));
    QCOMPARE(sent.first().at(1).toInt(), 24);
    QVERIFY(sent.first().at(2).toString().contains("as jpeg-ls"));
    auto rows = (*peerDb)->instancesOfSeries(seriesUid);
    QVERIFY(rows);
    QCOMPARE(rows->size(), std::size_t(24));
    std::vector<std::filesystem::path> received;
    for (const auto& r : *rows) {
      auto info = dicom::readFileInfo(r.path);
      QVERIFY(info);
      QCOMPARE(QString::fromStdString(info->transferSyntaxUid), QString("1.2.840.10008.1.2.4.80"));  // JPEG-LS lossless
      received.emplace_back(r.path);
    }
    auto scan = dicom::scanInputs(received, {});
    QVERIFY(scan);
    auto plans = dicom::planVolumes(*scan);
    QCOMPARE(plans.size(), std::size_t(1));
    auto got = dicom::loadVolume(*scan, plans.front());
    QVERIFY(got);
    const Volume want = loadDicom(kCorpus + "/phantom/box");
    QCOMPARE(got->byteSize(), want.byteSize());
    QVERIFY(std::memcmp(got->bytes(), want.bytes(), want.byteSize()) == 0);  // bit for bit
  }

  // File > Receive studies: the workstation's own listener (off until asked for) files what
  // a PACS sends, and the browser lists it as it arrives: a partial series with its count,
  // then the whole one, the reader's selection kept; callers not on the allow-list are
  // turned away.
  void receivesStudiesAndListsThemAsTheyArrive() {
    if (QStandardPaths::findExecutable("storescu").isEmpty()) QSKIP("dcmtk's storescu is not installed");
    QTemporaryDir config;
    net::NodeConfig nodes;
    nodes.local.aeTitle = "LUMENGUI";
    nodes.local.port = freeLoopbackPort();
    nodes.local.minFreeMegabytes = 0;
    nodes.local.allowedAe = {"SENDER"};
    QVERIFY(nodes.local.port > 0);
    QVERIFY(net::saveNodes(config.path().toStdString() + "/nodes.json", nodes));
    const ConfigDir use(config.path().toUtf8());
    MainWindow* w = openWindow();
    auto* action = w->findChild<QAction*>("ReceiveAction");
    QVERIFY(action);
    QVERIFY(!action->isChecked());
    QVERIFY(!w->receiver());  // nothing listens unless asked
    action->trigger();
    QVERIFY(action->isChecked());
    QVERIFY(w->receiver() && w->receiver()->running());
    QVERIFY(w->messages().last().contains(QString("Receiving as LUMENGUI on port %1 (allow-list)").arg(nodes.local.port)));
    QCOMPARE(w->browser()->studyCount(), 0);
    QStringList files;
    for (const auto& f : QDir(kCorpus + "/phantom/box").entryList(QDir::Files, QDir::Name)) files << kCorpus + "/phantom/box/" + f;
    QCOMPARE(files.size(), 24);
    const auto storescu = [&](const QString& callingAe, const QStringList& send) {
      QProcess p;
      p.start("storescu", QStringList{"-aet", callingAe, "-aec", "LUMENGUI", "127.0.0.1", QString::number(nodes.local.port)} + send);
      p.waitForFinished(60000);
      return p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
    };
    // Not on the allow-list: refused, nothing filed.
    QVERIFY(!storescu("INTRUDER", files.mid(0, 1)));
    QTest::qWait(800);
    QCOMPARE(w->browser()->studyCount(), 0);
    auto* seriesList = w->browser()->findChild<QListWidget*>();
    QVERIFY(seriesList);
    QVERIFY(storescu("SENDER", files.mid(0, 5)));
    QTRY_COMPARE_WITH_TIMEOUT(w->browser()->studyCount(), 1, 10000);  // no refresh asked for
    QTRY_COMPARE_WITH_TIMEOUT(seriesList->count(), 1, 10000);
    QTRY_VERIFY_WITH_TIMEOUT(seriesList->item(0)->text().endsWith("5 image(s)"), 10000);
    QTest::qWait(500);  // the thumbnail of the first 5 instances is in place
    const qint64 iconOfFirst = seriesList->item(0)->icon().cacheKey();
    w->browser()->selectSeries(0);
    QVERIFY(w->browser()->selectedSeries());
    const std::string uid = w->browser()->selectedSeries()->info.seriesInstanceUid;
    // The reader opens the series with its first 5 instances; it grows on screen as the
    // rest arrives, and is complete once the listener has been quiet for a while.
    std::vector<std::pair<bool, std::size_t>> loads;  // complete, slices
    auto conn = connect(w, &MainWindow::seriesLoaded, this,
                        [&](std::shared_ptr<LoadedSeries> s) { loads.emplace_back(s->complete, s->volume->size()[2]); });
    emit seriesList->itemDoubleClicked(seriesList->item(0));
    QTRY_VERIFY_WITH_TIMEOUT(!loads.empty(), 10000);
    QCOMPARE(loads.front().second, std::size_t(5));
    QVERIFY(storescu("SENDER", files.mid(5)));
    QTRY_VERIFY_WITH_TIMEOUT(seriesList->item(0)->text().endsWith("24 image(s)"), 10000);
    // The series more than doubled: its thumbnail is made again from the instances now in.
    QTRY_VERIFY_WITH_TIMEOUT(seriesList->item(0)->icon().cacheKey() != iconOfFirst, 10000);
    QVERIFY(w->browser()->selectedSeries());  // still the reader's selection
    QCOMPARE(w->browser()->selectedSeries()->info.seriesInstanceUid, uid);
    QTRY_VERIFY_WITH_TIMEOUT(loads.back().first && loads.back().second == 24, 15000);
    disconnect(conn);
    QVERIFY(std::any_of(loads.begin(), loads.end(), [](const auto& l) { return !l.first; }));  // shown as arriving
    {
      SliceView* v = w->grid()->activeSliceView();
      const Volume want = loadDicom(kCorpus + "/phantom/box");
      QCOMPARE(v->series()->volume->byteSize(), want.byteSize());
      QVERIFY(std::memcmp(v->series()->volume->bytes(), want.bytes(), want.byteSize()) == 0);
      QVERIFY(w->currentSeries());  // complete: measurements and AI may use it
    }
    // Another series of the study arrives: listed beside it, the first one's thumbnail kept
    // (not decoded again) and still selected.
    QTRY_VERIFY_WITH_TIMEOUT(!seriesList->item(0)->icon().isNull(), 10000);
    QTest::qWait(500);  // the thumbnail decoded from the pool is in place
    const qint64 iconBefore = seriesList->item(0)->icon().cacheKey();
    QStringList odd;
    for (const auto& f : QDir(kCorpus + "/phantom/odd").entryList(QDir::Files, QDir::Name)) odd << kCorpus + "/phantom/odd/" + f;
    QVERIFY(storescu("SENDER", odd));
    QTRY_COMPARE_WITH_TIMEOUT(seriesList->count(), 2, 10000);
    QVERIFY(w->browser()->selectedSeries());
    QCOMPARE(w->browser()->selectedSeries()->info.seriesInstanceUid, uid);
    for (int i = 0; i < 2; ++i)
      if (seriesList->item(i)->text().endsWith("24 image(s)")) QCOMPARE(seriesList->item(i)->icon().cacheKey(), iconBefore);
    QTRY_COMPARE_WITH_TIMEOUT(w->receiver()->received(), quint64(24 + 7), 10000);
    auto* label = w->findChild<QLabel*>("ReceiveStatus");
    QVERIFY(label && label->isVisible());
    QVERIFY(label->text().endsWith(": 31 received"));
    QVERIFY(w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-receive.png"));  // for a person to look at
    // What arrived is what was sent, voxel for voxel, and opens from the browser.
    auto db = db::StudyDatabase::open(dataDir_->path().toStdString());
    QVERIFY(db);
    auto rows = (*db)->instancesOfSeries(uid);
    QVERIFY(rows);
    QCOMPARE(rows->size(), std::size_t(24));
    // The managed store keeps a series in a folder of its own.
    const QString folder = QString::fromStdString(std::filesystem::path(rows->front().path).parent_path().string());
    const Volume got = loadDicom(folder), want = loadDicom(kCorpus + "/phantom/box");
    QCOMPARE(got.byteSize(), want.byteSize());
    QVERIFY(std::memcmp(got.bytes(), want.bytes(), want.byteSize()) == 0);
    // Off again: at once for the window; the port is free once the listener has wound down.
    action->trigger();
    QVERIFY(!w->receiver()->running());
    QVERIFY(!label->isVisible());
    QThreadPool::globalInstance()->waitForDone();
    QVERIFY(!storescu("SENDER", files.mid(0, 1)));
  }

  // Reports are results too: a structured report and an Encapsulated PDF open again in
  // the workstation (as a browser double-click opens them), the SR as text with its
  // measurement, the PDF page by page, and Save PDF... gives the same bytes back.
  void reportsOpenAgainInTheWorkstation() {
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kCorpus + "/phantom/box"}));
    const auto series = w->grid()->activeSliceView()->series();
    QVERIFY(series->segReference);
    dicom::SrInput in;
    in.images = *series->segReference;
    in.units = "HU";
    Measurement m;
    m.kind = MeasurementKind::Distance;
    m.points = {{-10, 0, 0}, {20, 0, 0}};
    m.text = "box width";
    in.measurements.push_back({m, std::nullopt});
    const QString sr = dataDir_->path() + "/sr.dcm";
    auto written = dicom::writeMeasurementReport(in, sr.toStdString());
    QVERIFY2(written, written ? "" : written.error().toString().c_str());

    QByteArray pdfBytes;
    {
      QBuffer buffer(&pdfBytes);
      buffer.open(QIODevice::WriteOnly);
      QPdfWriter writer(&buffer);
      QPainter p(&writer);
      p.drawText(QPointF(200, 200), "First page");
      writer.newPage();
      p.drawText(QPointF(200, 200), "Second page");
    }
    const QString doc = dataDir_->path() + "/report-pdf.dcm";
    dicom::EncapsulatedPdfOptions po;
    auto stored = dicom::writeEncapsulatedPdf(pdfBytes.toStdString(), series->info.files.front(), po, doc.toStdString());
    QVERIFY2(stored, stored ? "" : stored.error().toString().c_str());

    QVERIFY(ResultViewer::handles(sr));
    QVERIFY(ResultViewer::handles(doc));
    QVERIFY(!ResultViewer::handles(QString::fromStdString(series->info.files.front())));
    w->openPaths({sr});
    w->openPaths({doc});
    const auto viewers = w->findChildren<ResultViewer*>();
    QCOMPARE(viewers.size(), 2);
    ResultViewer* text = viewers[0]->pageCount() == 0 ? viewers[0] : viewers[1];
    ResultViewer* pages = text == viewers[0] ? viewers[1] : viewers[0];
    QVERIFY2(text->text().contains("box width"), qPrintable(text->text().left(2000)));
    QVERIFY(text->text().contains("30 mm") || text->text().contains("30 [mm]") || text->text().contains("30 millimeter"));
    QCOMPARE(pages->pageCount(), 2);
    const QString out = dataDir_->path() + "/back.pdf";
    QString error;
    QVERIFY2(pages->savePdf(out, &error), qPrintable(error));
    QFile back(out);
    QVERIFY(back.open(QIODevice::ReadOnly));
    QCOMPARE(back.readAll(), pdfBytes);
    QVERIFY(QTest::qWaitForWindowExposed(pages));
    QTest::qWait(300);
    const QString work = QStringLiteral(LUMEN_TEST_WORK_DIR);
    QVERIFY(text->grab().save(work + "/gui-sr-viewer.png"));  // for a person to look at
    const QImage shown = pages->grab().toImage();
    QVERIFY(shown.save(work + "/gui-pdf-viewer.png"));
    int white = 0, ink = 0;  // a white page with black text on it: the PDF was drawn
    for (int y = 0; y < shown.height(); ++y)
      for (int x = 0; x < shown.width(); ++x) {
        const int g = qGray(shown.pixel(x, y));
        white += g > 250;
        ink += g < 60 && shown.pixelColor(x, y).saturation() < 30 && x > 20 && x < shown.width() - 40 && y < 200;
      }
    QVERIFY2(white > shown.width() * shown.height() / 3, qPrintable(QString::number(white)));
    QVERIFY2(ink > 10, qPrintable(QString::number(ink)));
    // Not a report: said so, nothing opened.
    const QString bogus = dataDir_->path() + "/bogus.dcm";
    QFile f(bogus);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(QByteArray(300, 'x'));
    f.close();
    QVERIFY(!ResultViewer::handles(bogus));
    QVERIFY(!ResultViewer::open(bogus, w, &error));
    QVERIFY(error.contains("bogus.dcm"));
  }

  // Export de-identified from the workstation: the whole study in the database, off the
  // GUI thread, into a folder with the log; no original name or UID in what was written.
  void deidentifiedExportOfTheStudyOnScreen() {
    MainWindow* w = openWindow();
    QSignalSpy imported(w->browser(), &StudyBrowser::importFinished);
    w->browser()->importPaths({kCorpus + "/phantom/box"}, false);
    QVERIFY(imported.wait(30000));
    QVERIFY(load(w, {kCorpus + "/phantom/box"}));
    DeidDialog* d = w->showDeidDialog();
    QVERIFY(d);
    QVERIFY(!d->start());  // no key, no folder: said so, nothing started
    QVERIFY(d->resultText().contains("project key"));
    const QString key = dataDir_->path() + "/project.key";
    QVERIFY(deid::Key::create(key.toStdString()));
    const QString out = dataDir_->path() + "/export";
    d->setKeyFile(key);
    d->setOutputFolder(out);
    QVERIFY(d->setOption("retain-patient-characteristics", true));
    QVERIFY(!d->setOption("no-such-option", true));
    QSignalSpy done(d, &DeidDialog::exportFinished);
    QVERIFY(d->start());
    QVERIFY(d->running());
    QVERIFY(done.wait(60000));
    QCOMPARE(done.at(0).at(0).toInt(), 24);  // every slice of the study
    QCOMPARE(done.at(0).at(2).toInt(), 0);
    QVERIFY(QFile::exists(out + "/deidentification-log.tsv"));
    QVERIFY(d->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-deid-dialog.png"));  // for a person to look at
    const auto series = w->grid()->activeSliceView()->series();
    int files = 0;
    for (QDirIterator it(out, {"*.dcm"}, QDir::Files, QDirIterator::Subdirectories); it.hasNext();) {
      QFile f(it.next());
      QVERIFY(f.open(QIODevice::ReadOnly));
      const QByteArray bytes = f.readAll();
      for (const std::string& secret : {series->info.patient.name, series->info.patient.patientId,
                                        series->info.study.studyInstanceUid, series->info.series.seriesInstanceUid})
        QVERIFY2(!bytes.contains(QByteArray::fromStdString(secret)), secret.c_str());
      ++files;
    }
    QCOMPARE(files, 24);
    d->close();
  }

  void unsavedLabelEditsSurviveAsAnAutosave() {
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kCorpus + "/phantom/box"}));
    SliceView* v = w->grid()->activeSliceView();
    LabelPanel* lp = w->labelPanel();
    QVERIFY(lp->newLabelMap());
    lp->setTool(PaintTool::Brush);
    clickMouse(v, v->widgetPos(v->navigator().focal()));
    QVERIFY(lp->hasUnsavedChanges());
    const auto painted = std::vector<std::uint8_t>(lp->overlay()->labels->data<std::uint8_t>(),
                                                   lp->overlay()->labels->data<std::uint8_t>() + lp->overlay()->labels->voxelCount());
    const QString autosave = lp->autosavePath(*v->series());
    QVERIFY(!QFileInfo::exists(autosave));
    w->clearOverlay();
    QVERIFY(QFileInfo::exists(autosave));
    QVERIFY(w->messages().join("\n").contains("Unsaved label edits were kept"));
    auto* restore = lp->findChild<QPushButton*>("RestoreLabels");
    QVERIFY(restore && restore->isVisibleTo(lp));
    window_.reset();

    w = openWindow();
    QVERIFY(load(w, {kCorpus + "/phantom/box"}));
    lp = w->labelPanel();
    QVERIFY(lp->findChild<QPushButton*>("RestoreLabels")->isVisibleTo(lp));
    QVERIFY(lp->restoreAutosave());
    QVERIFY(lp->editing());
    QVERIFY(lp->hasUnsavedChanges());
    QVERIFY(std::memcmp(lp->overlay()->labels->bytes(), painted.data(), painted.size()) == 0);
    QString error;
    QVERIFY2(lp->saveTo(dataDir_->path() + "/kept.nrrd", &error), qPrintable(error));
    QVERIFY(!QFileInfo::exists(autosave));
    QVERIFY(!lp->findChild<QPushButton*>("RestoreLabels")->isVisibleTo(lp));
  }

  void obliqueSeriesHasObliqueOrientationMarkers() {
    QVERIFY2(QDir(kCorpus + "/ramp/oblique").exists(), "test corpus missing: ctest builds it first (corpus_setup)");
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kCorpus + "/ramp/oblique"}));
    SliceView* v = w->grid()->activeSliceView();
    const auto e = v->edgeTexts();
    // Rows run 30 degrees from L towards P, columns tilted 20 degrees towards S.
    QCOMPARE(QString::fromStdString(e[0]), QString("RA"));
    QCOMPARE(QString::fromStdString(e[1]), QString("LP"));
    QCOMPARE(QString::fromStdString(e[2]), QString("ALI"));
    QCOMPARE(QString::fromStdString(e[3]), QString("PRS"));
    QVERIFY(QString::fromStdString(v->cornerTexts().bottomLeft).startsWith("Oblique"));
    // Values at their physical place: the ramp phantom holds 2x+3y+5z+1000 everywhere.
    w->applyPresetByName("auto");
    const Match m = compareWithVolume(v);
    QVERIFY2(m.correlation > 0.98, qPrintable(QString("correlation %1").arg(m.correlation)));
  }

  void hidingPatientInformationAndProbe() {
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kSample}));
    SliceView* v = w->grid()->activeSliceView();
    QVERIFY(QString::fromStdString(v->cornerTexts().topLeft).contains("CAMITK"));
    w->setHidePatient(true);
    QVERIFY(!QString::fromStdString(v->cornerTexts().topLeft).contains("CAMITK"));
    QVERIFY(QString::fromStdString(v->cornerTexts().topLeft).contains("SINUS"));
    QTest::mouseMove(v, v->rect().center());
    QMouseEvent move(QEvent::MouseMove, QPointF(v->rect().center()), v->mapToGlobal(QPointF(v->rect().center())),
                     Qt::NoButton, Qt::NoButton, Qt::NoModifier);
    QApplication::sendEvent(v, &move);
    QVERIFY2(QString::fromStdString(v->cornerTexts().bottomLeft).contains("HU "),
             v->cornerTexts().bottomLeft.c_str());
  }

  void badInputGivesAReadableMessage() {
    QVERIFY2(QDir(kCorpus + "/bad").exists(), "test corpus missing: ctest builds it first (corpus_setup)");
    MainWindow* w = openWindow();
    QSignalSpy failed(w, &MainWindow::loadFailed);
    w->openPaths({kCorpus + "/bad/truncated-pixels.dcm"});
    QVERIFY(failed.wait(20000));
    const QString msg = failed.first().first().toString();
    QVERIFY2(msg.contains("truncated-pixels.dcm") && msg.contains("truncated"), qPrintable(msg));
    QVERIFY(!msg.contains('\n'));
    QVERIFY(w->messages().join("\n").contains("truncated-pixels.dcm"));
  }

  void loadingRunsInTheBackgroundAndCanBeCancelled() {
    MainWindow* w = openWindow();
    QSignalSpy failed(w, &MainWindow::loadFailed);
    QSignalSpy loaded(w, &MainWindow::seriesLoaded);
    w->openPaths({kSample});
    QVERIFY(w->loading());
    QCOMPARE(w->runningJobs(), 1);
    // Cancel in the same turn of the event loop: the worker cannot have read 32 files yet.
    auto* cancel = w->findChild<QToolButton*>();
    QVERIFY(cancel);
    QVERIFY(cancel->isVisible());
    cancel->click();
    QTRY_VERIFY_WITH_TIMEOUT(!failed.isEmpty() || !loaded.isEmpty(), 20000);
    QVERIFY2(loaded.isEmpty(), "the load finished although it was cancelled");
    QVERIFY2(failed.first().first().toString().contains("cancelled"), qPrintable(failed.first().first().toString()));
    QVERIFY(!w->loading());
    QCOMPARE(w->runningJobs(), 0);
    // The event loop kept running while the loader worked: a load of the same series now
    // completes with a timer firing meanwhile.
    bool ticked = false;
    QTimer::singleShot(1, [&] { ticked = true; });
    QVERIFY(load(w, {kSample}));
    QVERIFY(ticked);
  }

  void studyBrowserImportsAndSearches() {
    MainWindow* w = openWindow();
    StudyBrowser* b = w->browser();
    QSignalSpy done(b, &StudyBrowser::importFinished);
    b->importPaths({kSample}, false);
    QVERIFY(done.wait(30000));
    QVERIFY2(done.first().first().toString().contains("32 new"), qPrintable(done.first().first().toString()));
    QCOMPARE(b->studyCount(), 1);
    b->selectStudy(0);
    QCOMPARE(b->seriesCount(), 1);
    QCOMPARE(b->seriesFiles(0).size(), 32);
    b->setSearchText("nothing like this");
    QCOMPARE(b->studyCount(), 0);
    b->setSearchText("camitk");
    QCOMPARE(b->studyCount(), 1);
    // Opening a series from the browser loads it into the viewer.
    QSignalSpy loaded(w, &MainWindow::seriesLoaded);
    emit b->openSeries(b->seriesFiles(0));
    QVERIFY(loaded.wait(30000));
    QCOMPARE(w->grid()->activeSliceView()->sliceCount(), 32);
  }

  void droppingASeriesOnAViewportLoadsItThere() {
    MainWindow* w = openWindow();
    w->setLayoutMode(Layout::TwoByTwo);
    QTest::qWait(50);
    SliceView* target = w->grid()->sliceView(2);
    QWidget* frame = target->parentWidget();
    QStringList files;
    for (const auto& f : QDir(kSample).entryList(QDir::Files)) files << kSample + "/" + f;
    auto* mime = new QMimeData;
    mime->setData(kSeriesMimeType, files.join('\n').toUtf8());
    QSignalSpy loaded(w, &MainWindow::seriesLoaded);
    QSignalSpy failed(w, &MainWindow::loadFailed);
    // As a drag would: enter, then drop (Qt delivers a drop only to the drag's target).
    QDragEnterEvent enter(QPoint(20, 20), Qt::CopyAction, mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(frame, &enter);
    QVERIFY(enter.isAccepted());
    QDropEvent drop(QPointF(20, 20), Qt::CopyAction, mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(frame, &drop);
    QVERIFY(drop.isAccepted());
    for (int i = 0; i < 600 && loaded.isEmpty() && failed.isEmpty(); ++i) QTest::qWait(50);
    QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().first().toString()));
    QVERIFY(!loaded.isEmpty());
    QVERIFY(target->hasSeries());
    QVERIFY(!w->grid()->sliceView(0)->hasSeries());
    QCOMPARE(target->sliceCount(), 32);
    delete mime;
  }

  void cinePlaysATimeSeries() {
    QVERIFY2(QDir(kCorpus + "/cine").exists(), "test corpus missing: ctest builds it first (corpus_setup)");
    MainWindow* w = openWindow();
    QVERIFY(load(w, {kCorpus + "/cine/XA_CINE.dcm"}));
    SliceView* v = w->grid()->activeSliceView();
    QCOMPARE(v->sliceCount(), 5);
    QAction* cine = nullptr;
    for (QAction* a : w->findChildren<QAction*>())
      if (a->text() == "Cine") cine = a;
    QVERIFY(cine);
    QSignalSpy frames(v, &SliceView::sliceChanged);
    cine->trigger();  // on: 33.3 ms per frame, from the header
    QCOMPARE(w->findChild<QSpinBox*>("CineFps")->value(), 30);  // the header's frame rate
    // However slow the machine, the frames advance in order and wrap around.
    QTRY_VERIFY_WITH_TIMEOUT(frames.count() >= 7, 30000);
    for (int i = 1; i < 7; ++i)
      QCOMPARE(frames.at(i).first().toInt(), (frames.at(i - 1).first().toInt() + 1) % 5);
    cine->trigger();  // off
    QVERIFY(!cine->isChecked());
    const int stopped = v->sliceIndex();
    frames.clear();
    QTest::qWait(200);  // six frame times: a running cine would have moved
    QCOMPARE(frames.count(), 0);
    QCOMPARE(v->sliceIndex(), stopped);
    QVERIFY(QString::fromStdString(v->cornerTexts().bottomLeft).contains("/5"));
    // No anatomical markers on an image without patient geometry.
    for (const auto& e : v->edgeTexts()) QVERIFY(e.empty());
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

  // Runs `model` from the AI panel and waits for its end (`finished`: the panel's
  // runFinished); true when it ended well.
  static bool runAiModel(QWidget* panel, QSignalSpy& finished, const char* model) {
    finished.clear();
    bool started = false;
    QMetaObject::invokeMethod(panel, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, model));
    return started && finished.wait(kRunGuardMs) && finished.first().at(0).toBool();
  }

  // The AI panel (a plug-in loaded after start-up) runs models on the series in view: a
  // segmentation becomes a coloured overlay with its volume, an enhancement a derived series
  // to compare with the original at the same slice, a classification probabilities with a
  // saliency map and the bundle's suggestion; a run can be cancelled.
  void aiPanelRunsModelsOnTheCurrentSeries() {
#ifndef LUMEN_WITH_AI
    QSKIP("built without models/ (LUMEN_BUILD_MODELS=OFF)");
#endif
    MainWindow* w = nullptr;
    QWidget* panel = nullptr;
    QVERIFY(openWithAiPanel(kSample, w, panel));
    QSignalSpy finished(panel, SIGNAL(runFinished(bool, QString)));
    const auto run = [&](const char* model) { return runAiModel(panel, finished, model); };
    SliceView* v = w->grid()->activeSliceView();
    const auto original = v->series();

    // Segmentation: label 1 where the CT is above 300 HU, drawn in the bundle's colour.
    QVERIFY2(run("gui_segment"), qPrintable(w->messages().join("\n")));
    QTest::qWait(100);
    const auto o = w->labelPanel()->overlay();
    QVERIFY(o);
    QCOMPARE(static_cast<int>(o->entries.size()), 1);
    QCOMPARE(QString::fromStdString(o->entries[0].name), QString("bone"));
    QVERIFY(sameGrid(o->labels->geometry(), original->volume->geometry()));
    const Volume& ct = *original->volume;
    std::size_t agree = 0;
    for (std::size_t i = 0; i < ct.voxelCount(); ++i)
      agree += (ct.data<std::int16_t>()[i] > 300) == (o->labels->data<std::uint8_t>()[i] == 1);
    QVERIFY2(agree > ct.voxelCount() * 999 / 1000, qPrintable(QString::number(agree)));
    const QImage img = v->grabFramebuffer().convertToFormat(QImage::Format_RGB888);
    int green = 0;
    for (int y = 0; y < img.height(); y += 4)
      for (int x = 0; x < img.width(); x += 4) green += qGreen(img.pixel(x, y)) > qRed(img.pixel(x, y)) + 40;
    QVERIFY2(green > 200, qPrintable(QString("%1 green samples").arg(green)));
    auto* volumes = panel->findChild<QLabel*>("AiLabelVolumes");
    QVERIFY(volumes && volumes->text().contains("bone:") && volumes->text().contains("mL"));
    QVERIFY2(volumes->text().contains("uncertainty 0."), qPrintable(volumes->text()));
    // The uncertainty in place of the labels: the test network's logits (0.5 - x, x - 0.5),
    // x = (HU + 100) / 800 clipped, give an entropy of 1 at 300 HU (band 8 of the heat
    // overlay) and 0.840 in air (x = 0: band 1 + (0.840 - 0.2) / 0.1 = 7).
    auto* unsure = panel->findChild<QCheckBox*>("AiShowUncertainty");
    QVERIFY(unsure);
    unsure->setChecked(true);
    const auto heat = w->labelPanel()->overlay();
    QVERIFY(heat && heat != o);
    QVERIFY(QString::fromStdString(heat->entries.front().name).startsWith("uncertainty"));
    int checkedAir = 0, checkedEdge = 0;
    for (std::size_t i = 0; i < ct.voxelCount(); i += 7) {
      const int hu = ct.data<std::int16_t>()[i], band = heat->labels->data<std::uint8_t>()[i];
      if (hu <= -900 && checkedAir < 50) {
        QCOMPARE(band, 7);
        ++checkedAir;
      } else if (hu >= 295 && hu <= 305 && checkedEdge < 50) {
        QCOMPARE(band, 8);
        ++checkedEdge;
      }
    }
    QVERIFY(checkedAir > 10 && checkedEdge > 10);
    unsure->setChecked(false);  // the labels again
    QCOMPARE(QString::fromStdString(w->labelPanel()->overlay()->entries.front().name), QString("bone"));

    // Enhancement: a derived series replaces the original in place (same slice), and back.
    v->setSliceIndex(7);
    QVERIFY(run("gui_enhance"));
    QTest::qWait(100);
    QVERIFY(v->series() != original);
    QCOMPARE(v->sliceIndex(), 7);
    QVERIFY(QString::fromStdString(v->series()->info.series.description).contains("Identity enhancement (test)"));
    QCOMPARE(v->series()->volume->pixelType(), PixelType::Int16);  // the input's type
    QCOMPARE(v->series()->volume->scalarAt(200, 300, 7), original->volume->scalarAt(200, 300, 7));
    auto* showOriginal = panel->findChild<QCheckBox*>("AiShowOriginal");
    QVERIFY(showOriginal);
    showOriginal->setChecked(true);
    QCOMPARE(v->series(), original);
    QCOMPARE(v->sliceIndex(), 7);
    showOriginal->setChecked(false);
    // Stored as a derived DICOM series of the study: in the database and the browser, each
    // instance naming its source, the voxels read back as shown.
    const auto enhanced = v->series();
    auto* store = panel->findChild<QPushButton*>("AiStoreDerived");
    QVERIFY(store && store->isEnabled());
    QSignalSpy stored(w, &MainWindow::derivedSeriesStored);
    QTest::mouseClick(store, Qt::LeftButton);
    QVERIFY(!store->isEnabled());  // once
    QVERIFY(stored.wait(60000));
    QVERIFY2(stored.first().at(0).toBool(), qPrintable(stored.first().at(1).toString()));
    QVERIFY(stored.first().at(1).toString().contains("(32 images) as a new series of its study"));
    {
      auto db = db::StudyDatabase::open(dataDir_->path().toStdString());
      QVERIFY(db);
      auto studies = (*db)->studies();
      QVERIFY(studies && studies->size() == 1);
      auto series = (*db)->series(studies->front().id);
      QVERIFY(series && series->size() == 1);
      QCOMPARE(series->front().instanceCount, 32);
      QVERIFY(series->front().info.seriesInstanceUid != original->info.series.seriesInstanceUid);
      auto rows = (*db)->instances(series->front().id);
      QVERIFY(rows && rows->size() == 32);
      auto info = dicom::readFileInfo(rows->front().path);
      QVERIFY(info);
      QVERIFY(info->imageType.size() >= 2);
      QCOMPARE(QString::fromStdString(info->imageType[0] + "\\" + info->imageType[1]), QString("DERIVED\\SECONDARY"));
      QFile file(QString::fromStdString(rows->front().path));
      QVERIFY(file.open(QIODevice::ReadOnly));
      QVERIFY(file.readAll().contains("Made by the AI model gui_enhance"));  // its Derivation Description
      const Volume back = loadDicom(QString::fromStdString(std::filesystem::path(rows->front().path).parent_path().string()));
      QCOMPARE(back.byteSize(), enhanced->volume->byteSize());
      QVERIFY(std::memcmp(back.bytes(), enhanced->volume->bytes(), back.byteSize()) == 0);
    }
    QTRY_COMPARE_WITH_TIMEOUT(w->browser()->studyCount(), 1, 5000);

    // Classification: probabilities, a saliency overlay, the suggested follow-up model.
    QVERIFY(run("classifier2d"));
    auto* probs = panel->findChild<QWidget*>("AiProbabilities");
    QVERIFY(probs);
    QCOMPARE(static_cast<int>(probs->findChildren<QProgressBar*>().size()), 2);
    auto* saliency = panel->findChild<QCheckBox*>("AiShowSaliency");
    QVERIFY(saliency);
    saliency->setChecked(true);
    QVERIFY(w->labelPanel()->overlay());
    QVERIFY(QString::fromStdString(w->labelPanel()->overlay()->entries.front().name).startsWith("saliency"));
    auto* suggestion = panel->findChild<QPushButton*>("AiSuggestion");
    QVERIFY(suggestion);
    QCOMPARE(suggestion->text(), QString("Enhance this series"));
    QTest::qWait(100);
    w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/ai-panel.png");  // for a person to look at
    finished.clear();
    suggestion->click();
    QVERIFY(finished.wait(kRunGuardMs));
    QVERIFY(finished.first().at(0).toBool());

    // Cancel: the run stops and says so; nothing is replaced.
    const auto before = v->series();
    bool started = false;
    finished.clear();
    QMetaObject::invokeMethod(panel, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, "gui_enhance"));
    QVERIFY(started);
    auto* cancel = w->findChildren<QToolButton*>().last();
    for (QToolButton* b : w->findChildren<QToolButton*>())
      if (b->text() == "Cancel") cancel = b;
    QVERIFY(cancel->isVisible());
    cancel->click();
    QVERIFY(finished.wait(kRunGuardMs));
    QVERIFY(!finished.first().at(0).toBool());
    QCOMPARE(v->series(), before);
    QVERIFY(w->messages().join("\n").contains("cancelled"));
  }

  // A classifier with an estimate (the CT dose grader's kind): the panel shows the estimate
  // with the range the model knows next to the class; outside that range it shows why there
  // is no class, and no probabilities (they would be a guess).
  void aiPanelShowsTheEstimateAndNoGuessOutsideItsRange() {
#ifndef LUMEN_WITH_AI
    QSKIP("built without models/ (LUMEN_BUILD_MODELS=OFF)");
#endif
    MainWindow* w = nullptr;
    QWidget* panel = nullptr;
    QVERIFY(openWithAiPanel(kSample, w, panel));
    QSignalSpy finished(panel, SIGNAL(runFinished(bool, QString)));
    const auto run = [&](const char* model) { return runAiModel(panel, finished, model); };
    // gui_grader reads 100 x the SD of each slice scaled by 0.4 / 2000: the sample's
    // slices, whose HU vary by some hundreds, read 3-30.
    QVERIFY2(run("gui_grader"), qPrintable(w->messages().join("\n")));
    auto* estimate = panel->findChild<QLabel*>("AiEstimate");
    QVERIFY(estimate);
    QVERIFY(!panel->findChild<QLabel*>("AiNotGraded"));
    const Volume& ct = *w->grid()->activeSliceView()->series()->volume;
    const std::size_t perSlice = ct.geometry().size[0] * ct.geometry().size[1];
    double logSum = 0;
    for (std::size_t k = 0; k < ct.geometry().size[2]; ++k) {
      double s = 0, s2 = 0;
      for (std::size_t i = 0; i < perSlice; ++i) {
        const double x = ct.data<std::int16_t>()[k * perSlice + i] * 0.4 / 2000.0;
        s += x;
        s2 += x * x;
      }
      const double mean = s / static_cast<double>(perSlice);
      logSum += std::log(std::sqrt(s2 / static_cast<double>(perSlice) - mean * mean) * 100);
    }
    const double expected = std::exp(logSum / static_cast<double>(ct.geometry().size[2]));
    QVERIFY2(expected > 3 && expected < 30, qPrintable(QString::number(expected)));
    QCOMPARE(estimate->text(), QString("noise SD %1 HU (the model reads 3-30 HU)").arg(expected, 0, 'g', 3));
    QVERIFY(panel->findChild<QWidget*>("AiProbabilities"));

    // grader2d reads the same slices unscaled: thousands, far above its 3-30.
    QVERIFY2(run("grader2d"), qPrintable(w->messages().join("\n")));
    QTRY_VERIFY(!panel->findChild<QLabel*>("AiEstimate"));  // the first result, deleted later
    auto* notGraded = panel->findChild<QLabel*>("AiNotGraded");
    QVERIFY(notGraded);
    QVERIFY2(notGraded->text().startsWith("not graded: outside the range the model knows (3-30 HU): noise SD about "),
             qPrintable(notGraded->text()));
    QVERIFY(!panel->findChild<QWidget*>("AiProbabilities"));
    QVERIFY(!panel->findChild<QPushButton*>("AiSuggestion"));
    QTest::qWait(100);
    w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/ai-not-graded.png");  // for a person to look at
    bool inStatusBar = false;  // the job's end, as the status bar shows it
    for (QLabel* l : w->statusBar()->findChildren<QLabel*>())
      inStatusBar |= l->text().startsWith("grader2d: not graded: outside the range the model knows");
    QVERIFY(inStatusBar);
  }

  // A denoiser whose card compares it with the bilateral filter: the panel measures the
  // series' noise, recommends what the card found better at that noise (gui_enhance's test
  // card: the filter, at its 40 HU level), and runs the filter with the card's setting.
  void aiPanelRecommendsADenoiserAndRunsTheClassicalFilter() {
#ifndef LUMEN_WITH_AI
    QSKIP("built without models/ (LUMEN_BUILD_MODELS=OFF)");
#endif
    MainWindow* w = nullptr;
    QWidget* panel = nullptr;
    QVERIFY(openWithAiPanel(kSample, w, panel));
    SliceView* v = w->grid()->activeSliceView();
    const auto original = v->series();
    const auto estimate = imaging::estimateNoiseSd(*original->volume);
    QVERIFY2(estimate, estimate ? "" : estimate.error().message.c_str());
    QVERIFY2(*estimate > 30 && *estimate < 70, qPrintable(QString::number(*estimate)));  // the sinus scan's bone kernel

    auto* list = panel->findChild<QListWidget*>("AiModelList");
    auto* advice = panel->findChild<QLabel*>("AiDenoiseAdvice");
    auto* classical = panel->findChild<QPushButton*>("AiRunClassical");
    auto* runButton = panel->findChild<QPushButton*>("AiRun");
    QVERIFY(list && advice && classical && runButton);
    QSignalSpy advised(panel, SIGNAL(adviceShown()));
    auto select = [&](const QString& name) {
      for (int i = 0; i < list->count(); ++i)
        if (list->item(i)->data(Qt::UserRole).toString() == name) list->setCurrentRow(i);
    };
    select("gui_segment");  // no card: no advice, no filter
    QVERIFY(!advice->isVisibleTo(panel) && !classical->isVisibleTo(panel));
    select("gui_enhance");
    QVERIFY2(advised.wait(60000), qPrintable(advice->text()));
    QVERIFY(advice->isVisibleTo(panel) && classical->isVisibleTo(panel));
    QVERIFY2(advice->text().contains(QString("about %1 HU").arg(*estimate, 0, 'f', 1)), qPrintable(advice->text()));
    QVERIFY2(advice->text().contains("the network at 38.0 dB and the bilateral filter at 39.5 dB"), qPrintable(advice->text()));
    QVERIFY(advice->text().contains("the bilateral filter is</b> recommended"));
    QVERIFY2(classical->text().endsWith("(recommended)"), qPrintable(classical->text()));
    QVERIFY(!runButton->text().contains("recommended"));
    // The same card measured at 1 mm pixels says nothing about the sample's 0.31 mm ones.
    advised.clear();
    select("gui_enhance_1mm");
    QVERIFY(advised.wait(60000));
    QVERIFY2(advice->text().contains("measured at 1.00 mm pixels and this series has 0.31 mm ones"), qPrintable(advice->text()));
    QVERIFY(!classical->text().contains("recommended") && !runButton->text().contains("recommended"));
    advised.clear();
    select("gui_enhance");
    QVERIFY(advised.wait(60000));
    QVERIFY(classical->text().endsWith("(recommended)"));

    // The filter at the card's 40 HU setting: 2 mm, range 1.5 x the level's true SD (50 HU),
    // scaled by the series' reading over the level's (40 HU).
    QSignalSpy finished(panel, SIGNAL(runFinished(bool, QString)));
    QVERIFY(classical->isEnabled());
    QTest::mouseClick(classical, Qt::LeftButton);
    QVERIFY(finished.wait(kRunGuardMs));
    QVERIFY2(finished.first().at(0).toBool(), qPrintable(finished.first().at(1).toString()));
    QTest::qWait(50);
    const auto filtered = v->series();
    QVERIFY(filtered != original);
    QVERIFY(QString::fromStdString(filtered->info.series.description).contains("bilateral filter"));
    QCOMPARE(filtered->volume->pixelType(), PixelType::Int16);
    auto expected = imaging::bilateralDenoise(*original->volume, 2.0, 1.5 * 50.0 * *estimate / 40.0);
    QVERIFY(expected);
    std::size_t compared = 0;
    for (std::size_t i = 0; i < expected->voxelCount(); i += 97, ++compared) {
      const long e = std::clamp(std::lround(expected->data<float>()[i]), -32768L, 32767L);
      QCOMPARE(static_cast<long>(filtered->volume->data<std::int16_t>()[i]), e);
    }
    QVERIFY(compared > 10000);
    const auto after = imaging::estimateNoiseSd(*filtered->volume);
    QVERIFY2(after && *after < 0.6 * *estimate, qPrintable(after ? QString::number(*after) : QString()));
    auto* showOriginal = panel->findChild<QCheckBox*>("AiShowOriginal");
    QVERIFY(showOriginal);
    showOriginal->setChecked(true);
    QCOMPARE(v->series(), original);

    // Another series on screen: the advice follows it (the ramp phantom has no soft tissue),
    // told by the window as the load ends, not found later by looking.
    advised.clear();
    QString adviceAtLoad;
    auto atLoad = connect(w, &MainWindow::seriesLoaded, this, [&] { adviceAtLoad = advice->text(); });
    QVERIFY(load(w, {kCorpus + "/ramp/axial-shuffled"}));
    disconnect(atLoad);
    QCOMPARE(adviceAtLoad, QString("Measuring the noise of the series..."));
    QVERIFY(!advised.isEmpty() || advised.wait(10000));  // the ramp is measured in moments
    QVERIFY2(advice->text().startsWith("No recommendation for this series") && advice->text().contains("soft tissue"),
             qPrintable(advice->text()));
  }


  // Every image opens with a window that shows it: not blank, not saturated. The first
  // picture (from the first decoded slice) and the finished one; headers without window
  // tags, with placeholder windows, DICOM of every kind in the pydicom corpus, NIfTI, NRRD.
  void everyImageOpensWithASanePicture() {
    QVERIFY2(QDir(kCorpus + "/no-window").exists(), "test corpus missing: ctest builds it first (corpus_setup)");
    MainWindow* w = openWindow();
    // The real CT as NIfTI and NRRD: no modality, no window tags.
    const Volume l = loadDicom(kSample);
    QVERIFY(!l.empty());
    QStringList inputs = {kCorpus + "/no-window/XA_8bit_baseline.dcm", kCorpus + "/no-window/mr-oblique",
                          kCorpus + "/ramp/axial-shuffled", kCorpus + "/enhanced", kCorpus + "/photometric/mono2.dcm", kCorpus + "/photometric/highbit.dcm"};
    for (const char* ext : {".nii.gz", ".nrrd"}) {
      const QString path = dataDir_->path() + "/ct" + ext;
      QVERIFY(io::writeImage(l, path.toStdString()));
      inputs << path;
    }
    for (const QString& f : QDir(kCorpus + "/pydicom").entryList(QDir::Files)) inputs << kCorpus + "/pydicom/" + f;
    int checked = 0;
    int reports = 0;
    for (const QString& path : inputs) {
      if (ResultViewer::handles(path)) {  // a report opens in its own viewer, not in a view
        const int before = static_cast<int>(w->findChildren<ResultViewer*>().size());
        QSignalSpy failed(w, &MainWindow::loadFailed);
        w->openPaths({path});
        const QStringList messages = w->messages();
        QVERIFY2(static_cast<int>(w->findChildren<ResultViewer*>().size()) == before + 1 ||
                     (!messages.isEmpty() && messages.last().contains(QFileInfo(path).fileName())),
                 qPrintable(path + ": a report neither shown nor refused"));
        ++reports;
        continue;
      }
      SliceView* v = w->grid()->activeSliceView();
      QList<WindowLevel> windows;
      auto conn = connect(v, &SliceView::windowLevelChanged, this, [&](const WindowLevel& wl) { windows << wl; });
      QSignalSpy failed(w, &MainWindow::loadFailed);
      const bool ok = load(w, {path});
      disconnect(conn);
      if (!ok) {
        QVERIFY2(!failed.isEmpty(), qPrintable(path + ": neither loaded nor refused"));
        continue;  // not an image (SR, plan, SEG...) or deliberately broken: said in Messages
      }
      if (v->series()->isColor()) continue;
      QVERIFY2(!windows.isEmpty(), qPrintable(path));
      const Volume& vol = *v->series()->volume;
      const std::size_t k = static_cast<std::size_t>(std::max(0, std::min(v->sliceIndex(), static_cast<int>(vol.size()[2]) - 1)));
      // The first window (from the first slice decoded) already shows that slice.
      const double firstSat = saturatedShare(vol, vol.size()[2] / 2, windows.first());
      QVERIFY2(firstSat < 0.9, qPrintable(QString("%1: first window W %2 L %3 saturates %4 of the slice")
                                               .arg(path).arg(windows.first().width).arg(windows.first().center).arg(firstSat)));
      (void)k;
      const Picture p = pictureOf(v);
      QVERIFY2(p.samples > 100, qPrintable(path));
      const QString what = QString("%1: W %2 L %3, mean %4, sd %5, black/white %6, mid-grey %7")
                               .arg(path).arg(v->windowLevel().width).arg(v->windowLevel().center)
                               .arg(p.mean).arg(p.stddev).arg(p.extremes).arg(p.midGrey);
      QVERIFY2(p.stddev > 8.0, qPrintable("blank: " + what));
      QVERIFY2(p.extremes < 0.85, qPrintable("saturated: " + what));
      QVERIFY2(p.midGrey > 0.08, qPrintable("no mid-grey: " + what));
      ++checked;
    }
    QVERIFY2(checked >= 15, qPrintable(QString::number(checked)));
    QVERIFY(reports >= 1);  // pydicom's test-SR.dcm
  }

  // The AI panel never runs on a series that is still loading, and each job ends on its own:
  // an import finishing does not end a load in progress.
  void jobsAreTrackedApartAndModelsWaitForTheWholeSeries() {
#ifndef LUMEN_WITH_AI
    QSKIP("built without models/ (LUMEN_BUILD_MODELS=OFF)");
#endif
    LUMEN_SKIP_UNLESS_FULL_CT_RUN();
    const QString full = QStringLiteral(LUMEN_FULL_CT_DIR);
    QVERIFY2(QDir(full).exists(), qPrintable("the full CT is needed here: " + full));
    MainWindow* w = openWindow();
    QSignalSpy ready(w, &MainWindow::aiReady);
    QVERIFY(ready.wait(30000));
    QWidget* panel = w->aiPanel();
    QVERIFY(panel);
    QSignalSpy listed(panel, SIGNAL(modelsListed()));
    QVERIFY(listed.wait(30000));
    QSignalSpy first(w, &MainWindow::firstImageShown);
    QSignalSpy loaded(w, &MainWindow::seriesLoaded);
    w->openPaths({full});
    StudyBrowser* b = w->browser();
    QSignalSpy imported(b, &StudyBrowser::importFinished);
    b->importPaths({kSample}, false);
    QCOMPARE(w->runningJobs(), 2);
    // While the series is partial: no model runs on it.
    QTRY_VERIFY_WITH_TIMEOUT(w->grid()->activeSliceView()->hasSeries() || !loaded.isEmpty(), 30000);
    if (loaded.isEmpty()) {
      QVERIFY(!w->grid()->activeSliceView()->series()->complete);
      bool started = true;
      QMetaObject::invokeMethod(panel, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, "gui_segment"));
      QVERIFY(!started);
      QVERIFY(w->messages().join("\n").contains("load completely"));
    }
    QTRY_VERIFY_WITH_TIMEOUT(!imported.isEmpty(), 30000);
    if (loaded.isEmpty()) QVERIFY2(w->loading(), "the import's end ended the load too");
    QTRY_VERIFY_WITH_TIMEOUT(!loaded.isEmpty(), 60000);
    QVERIFY(!w->loading());
    QCOMPARE(w->runningJobs(), 0);
    QVERIFY(w->grid()->activeSliceView()->series()->complete);
    QSignalSpy finished(panel, SIGNAL(runFinished(bool, QString)));
    bool started = false;
    QMetaObject::invokeMethod(panel, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, "gui_segment"));
    QVERIFY(started);
    QVERIFY(finished.wait(kRunGuardMs));
    QVERIFY(finished.first().at(0).toBool());
  }

  // Model folders are read off the GUI thread (hashing a large model.ts takes seconds), and
  // a malformed bundle is a message while the others load.
  void modelFoldersAreReadInTheBackgroundAndBadOnesReported() {
#ifndef LUMEN_WITH_AI
    QSKIP("built without models/ (LUMEN_BUILD_MODELS=OFF)");
#endif
    MainWindow* w = openWindow();
    QSignalSpy ready(w, &MainWindow::aiReady);
    QVERIFY(ready.wait(30000));
    QWidget* panel = w->aiPanel();
    QVERIFY(panel);
    bool discovering = false;
    QMetaObject::invokeMethod(panel, "discovering", Q_RETURN_ARG(bool, discovering));
    QVERIFY2(discovering, "the panel read the model folders before returning to the event loop");
    QSignalSpy listed(panel, SIGNAL(modelsListed()));
    QVERIFY(listed.wait(30000));
    auto* list = panel->findChild<QListWidget*>("AiModelList");
    QVERIFY(list);
    QVERIFY2(list->count() >= 10, qPrintable(QString::number(list->count())));
    const QString messages = w->messages().join("\n");
    QVERIFY2(messages.contains("bad_label_colors") && messages.contains("label_colors#1"), qPrintable(messages));
    QVERIFY2(messages.contains("bad_pixdim_type") && messages.contains("pixdim"), qPrintable(messages));
  }

  // A bundle is code: one neither shipped nor trusted asks first; "Trust and run" remembers
  // its SHA-256, Cancel runs nothing.
  void untrustedModelsAskFirst() {
#ifndef LUMEN_WITH_AI
    QSKIP("built without models/ (LUMEN_BUILD_MODELS=OFF)");
#endif
    MainWindow* w = nullptr;
    QWidget* panel = nullptr;
    QVERIFY(openWithAiPanel(kCorpus + "/ramp/axial-shuffled", w, panel));  // small: this test is about trust
    QSignalSpy finished(panel, SIGNAL(runFinished(bool, QString)));
    const auto answer = [](const QString& button) {
      QTimer::singleShot(200, [button] {
        auto* box = qobject_cast<QMessageBox*>(QApplication::activeModalWidget());
        if (!box || box->objectName() != "TrustModelQuestion") return;
        for (QAbstractButton* b : box->buttons())
          if (b->text() == button) b->click();
      });
    };
    answer("Cancel");
    bool started = true;
    QMetaObject::invokeMethod(panel, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, "pointwise3d"));
    QVERIFY(!started);
    QVERIFY(w->messages().join("\n").contains("not run (not trusted)"));
    answer("Trust and run");
    QMetaObject::invokeMethod(panel, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, "pointwise3d"));
    QVERIFY(started);
    QVERIFY2(finished.wait(kRunGuardMs), qPrintable(w->messages().mid(w->messages().size() - 5).join("\n")));
    QVERIFY2(finished.first().at(0).toBool(), qPrintable(w->messages().join("\n")));
    QFile list(qEnvironmentVariable("LUMEN_CONFIG_DIR") + "/trusted-models.json");
    QVERIFY(list.open(QIODevice::ReadOnly));
    const auto sha = Sha256::hexOfFile(qEnvironmentVariable("LUMEN_MODEL_PATH").toStdString() + "/pointwise3d/models/model.ts");
    QVERIFY(list.readAll().contains(QByteArray::fromStdString(*sha)));
    // Trusted now: runs without a question (none is answered this time).
    finished.clear();
    QMetaObject::invokeMethod(panel, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, "pointwise3d"));
    QVERIFY(started);
    QVERIFY(finished.wait(kRunGuardMs));
    QVERIFY(finished.first().at(0).toBool());
  }

  // Deleting asks first; an import that finishes while the question is open refreshes the
  // list under it. The study asked about is the one removed, not the row's new occupant.
  void deleteRemovesTheStudyAskedAboutEvenIfTheListChanged() {
    MainWindow* w = openWindow();
    StudyBrowser* b = w->browser();
    QSignalSpy done(b, &StudyBrowser::importFinished);
    b->importPaths({kSample}, false);
    QVERIFY(done.wait(30000));
    QCOMPARE(b->studyCount(), 1);
    b->selectStudy(0);
    done.clear();
    // The ramp phantom (a 2024 study, listed before the sample's) arrives meanwhile.
    b->importPaths({kCorpus + "/ramp/axial-shuffled"}, false);
    QTimer::singleShot(50, [&] {
      QTRY_VERIFY_WITH_TIMEOUT(!done.isEmpty(), 30000);
      for (int i = 0; i < 5; ++i) {  // churn the list so a stale row would point elsewhere
        b->setSearchText(i % 2 ? "" : "a");
        QTest::qWait(10);
      }
      b->setSearchText("");
      auto* box = qobject_cast<QMessageBox*>(QApplication::activeModalWidget());
      if (box && box->objectName() == "DeleteStudyQuestion") box->button(QMessageBox::Yes)->click();
    });
    b->deleteSelectedStudy();
    QCOMPARE(b->studyCount(), 1);
    auto db = db::StudyDatabase::open(dataDir_->path().toStdString());
    QVERIFY(db);
    auto studies = (*db)->studies();
    QVERIFY(studies && studies->size() == 1u);
    QCOMPARE(QString::fromStdString((*studies)[0].info.description), QString("Ramp phantom"));
  }

  // Closing the window while an import runs cancels it: the window does not wait for the
  // import to finish (it used to, however long it took), and the cancelled batch is not
  // half-written.
  void closingDuringAnImportCancelsIt() {
    LUMEN_SKIP_UNLESS_FULL_CT_RUN();
    const QString full = QStringLiteral(LUMEN_FULL_CT_DIR);
    QVERIFY2(QDir(full).exists(), qPrintable("the full CT is needed here: " + full));
    MainWindow* w = openWindow();
    w->browser()->importPaths({full, kCorpus}, false);
    QCOMPARE(w->runningJobs(), 1);
    window_.reset();  // in the same turn of the event loop: the import has barely started
    auto db = db::StudyDatabase::open(dataDir_->path().toStdString());
    QVERIFY(db);
    auto studies = (*db)->studies();
    QVERIFY(studies);
    int instances = 0;
    for (const auto& st : *studies) instances += st.instanceCount;
    QVERIFY2(instances == 0, qPrintable(QString("%1 instances imported after the window closed").arg(instances)));
  }

  void settingsAreRemembered() {
    QStandardPaths::setTestModeEnabled(true);
    MainWindow::Options o;
    o.dataDir = dataDir_->path();
    o.rememberSettings = true;
    {
      MainWindow w(o);
      w.show();
      w.setLayoutMode(Layout::TwoByTwo);
      w.setHidePatient(true);
      w.close();
    }
    MainWindow w2(o);
    QCOMPARE(w2.grid()->layoutMode(), Layout::TwoByTwo);
    w2.setLayoutMode(Layout::One);
    w2.setHidePatient(false);
    w2.close();
  }
};

int main(int argc, char** argv) {
  VtkWidget::configureDefaultSurfaceFormat();
  QApplication app(argc, argv);
  QApplication::setApplicationName("LumenGuiTest");
  QStandardPaths::setTestModeEnabled(true);
  // The AI tests' bundles are trusted (one is left out: the prompt is tested with it).
  const QString config = QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-config";
  qputenv("LUMEN_CONFIG_DIR", config.toUtf8());
  trustTestModels(config, "pointwise3d");
  GuiTest t;
  return QTest::qExec(&t, argc, argv);
}

#include "GuiTest.moc"
