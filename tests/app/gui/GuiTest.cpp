// The workstation tested as a person uses it, under Xvfb: open the real CT, scroll,
// change window/level, switch layouts, move the MPR crosshair, load an overlay; the
// assertions are on what the viewports show (their rendered pixels) and say.

#include <QApplication>
#include <QDir>
#include <QDropEvent>
#include <QMimeData>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QAction>
#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QTest>
#include <QTimer>
#include <QToolButton>

#include <cmath>
#include <filesystem>

#include "LabelPanel.h"
#include "MainWindow.h"
#include "SliceImage.h"
#include "SliceView.h"
#include "StudyBrowser.h"
#include "ViewportGrid.h"
#include "VolumeView3D.h"
#include "VtkWidget.h"
#include "lumen/imaging/ImageIO.h"

using namespace lumen;
using namespace lumen::gui;

namespace {

const QString kSample = QStringLiteral(LUMEN_SAMPLE_DIR);
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
    const QImage img = w->grid()->volumeView()->grabFramebuffer().convertToFormat(QImage::Format_Grayscale8);
    int bright = 0;
    for (int y = 0; y < img.height(); y += 4)
      for (int x = 0; x < img.width(); x += 4) bright += qGray(img.pixel(x, y)) > 150;
    QVERIFY2(bright > 50, qPrintable(QString("bright pixels in 3D: %1").arg(bright)));
    QCOMPARE(QString::fromStdString(w->grid()->volumeView()->renderModeName()), QString("GPU ray cast"));
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

  void obliqueSeriesHasObliqueOrientationMarkers() {
    if (!QDir(kCorpus + "/ramp/oblique").exists()) QSKIP("test corpus not built (ctest runs corpus_setup first)");
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
    if (!QDir(kCorpus + "/bad").exists()) QSKIP("test corpus not built");
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
    const QString full = QStringLiteral(LUMEN_FULL_CT_DIR);
    w->openPaths({QDir(full).exists() ? full : kSample});
    QVERIFY(w->loading());
    // The event loop keeps running while the loader works: a timer fires.
    bool ticked = false;
    QTimer::singleShot(1, [&] { ticked = true; });
    QTest::qWait(5);
    QVERIFY(ticked);
    auto* cancel = w->findChild<QToolButton*>();
    QVERIFY(cancel);
    cancel->click();
    for (int i = 0; i < 200 && failed.isEmpty() && loaded.isEmpty(); ++i) QTest::qWait(20);
    // Either the cancel arrived in time, or the (small) series was already done.
    if (!failed.isEmpty()) QVERIFY(failed.first().first().toString().contains("cancelled"));
    else QVERIFY(!loaded.isEmpty());
    QVERIFY(!w->loading());
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
    if (!QDir(kCorpus + "/cine").exists()) QSKIP("test corpus not built");
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
    QTest::qWait(400);
    cine->trigger();  // off
    // About 12 frames in 400 ms; a busy machine may drop some, none would be a failure.
    QVERIFY2(frames.count() >= 3, qPrintable(QString("%1 frames").arg(frames.count())));
    const int stopped = v->sliceIndex();
    QTest::qWait(150);
    QCOMPARE(v->sliceIndex(), stopped);
    QVERIFY(QString::fromStdString(v->cornerTexts().bottomLeft).contains("/5"));
    // No anatomical markers on an image without patient geometry.
    for (const auto& e : v->edgeTexts()) QVERIFY(e.empty());
  }

  // The AI panel (a plug-in loaded after start-up) runs models on the series in view: a
  // segmentation becomes a coloured overlay with its volume, an enhancement a derived series
  // to compare with the original at the same slice, a classification probabilities with a
  // saliency map and the bundle's suggestion; a run can be cancelled.
  void aiPanelRunsModelsOnTheCurrentSeries() {
#ifndef LUMEN_WITH_AI
    QSKIP("built without models/ (LUMEN_BUILD_MODELS=OFF)");
#endif
    MainWindow* w = openWindow();
    QSignalSpy ready(w, &MainWindow::aiReady);
    QVERIFY(load(w, {kSample}));
    QVERIFY(!ready.isEmpty() || ready.wait(30000));
    QVERIFY2(ready.first().at(0).toBool(), qPrintable(w->messages().join("\n")));
    QWidget* panel = w->aiPanel();
    QVERIFY(panel);
    QSignalSpy finished(panel, SIGNAL(runFinished(bool, QString)));
    auto run = [&](const char* model) {
      finished.clear();
      bool started = false;
      QMetaObject::invokeMethod(panel, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, model));
      if (!started) return false;
      return finished.wait(60000) && finished.first().at(0).toBool();
    };
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
    QVERIFY(finished.wait(60000));
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
    QVERIFY(finished.wait(60000));
    QVERIFY(!finished.first().at(0).toBool());
    QCOMPARE(v->series(), before);
    QVERIFY(w->messages().join("\n").contains("cancelled"));
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
  GuiTest t;
  return QTest::qExec(&t, argc, argv);
}

#include "GuiTest.moc"
