// lumen: the workstation GUI.
//
//   lumen [path]                        open a folder, file or DICOMDIR (or the browser)
//   lumen --screenshot out.png [--layout 1x1|1x2|2x2|mpr] [--preset NAME] path
//                                       render at a fixed size, save the window, exit
//   lumen --benchmark-scroll N path     timings for docs/BENCHMARKS.md (see bench/; also
//   --benchmark-mpr N, --benchmark-segment N, --benchmark-retrieve NODE STUDY_UID)

#include <QApplication>
#include <QCommandLineParser>
#include <QElapsedTimer>
#include <QSurfaceFormat>
#include <QTimer>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "LabelPanel.h"
#include "MainWindow.h"
#include "RemoteNode.h"
#include "StudyBrowser.h"
#include "SliceView.h"
#include "ViewportGrid.h"
#include "VolumeView3D.h"
#include "VtkWidget.h"
#include "lumen/core/Log.h"

using namespace lumen;
using namespace lumen::gui;

#ifndef LUMEN_VERSION
#define LUMEN_VERSION "0.0.0"
#endif

namespace {

long long epochMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Resizes the window until `view` is `side` x `side` pixels (docks and bars vary).
void sizeViewport(MainWindow& w, QWidget* view, int side) {
  for (int i = 0; i < 8 && (view->width() != side || view->height() != side); ++i) {
    w.resize(w.width() + side - view->width(), w.height() + side - view->height());
    QApplication::processEvents();
  }
}

// Renders N scroll steps (up and down through the series) in the active 2D view at
// 512 x 512 and reports the median time per step, rendering and GPU finish included.
void benchmarkScroll(MainWindow& w, int n) {
  SliceView* v = w.grid()->activeSliceView();
  sizeViewport(w, v, 512);
  std::vector<double> ms;
  int dir = 1;
  for (int i = 0; i < n; ++i) {
    if (v->sliceIndex() + dir < 0 || v->sliceIndex() + dir >= v->sliceCount()) dir = -dir;
    QElapsedTimer t;
    t.start();
    v->scrollBy(dir);
    v->renderNow();
    ms.push_back(static_cast<double>(t.nsecsElapsed()) / 1e6);
  }
  std::printf("scroll_step_ms_median=%.2f viewport=%dx%d steps=%d\n", median(ms), v->width(), v->height(), n);
}

// Moves the MPR crosshair to random points inside the volume and redraws the three
// planes; reports the median time per move.
void benchmarkMpr(MainWindow& w, int n) {
  w.setLayoutMode(Layout::Mpr);
  QApplication::processEvents();
  sizeViewport(w, w.grid()->sliceView(0), 512);
  auto series = w.grid()->sliceView(0)->series();
  const auto& g = series->volume->geometry();
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0.2, 0.8);
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    const Vec3 p = g.ijkToLps({u(rng) * static_cast<double>(g.size[0] - 1), u(rng) * static_cast<double>(g.size[1] - 1),
                               u(rng) * static_cast<double>(g.size[2] - 1)});
    QElapsedTimer t;
    t.start();
    w.grid()->moveCrosshair(p);
    for (int k = 0; k < 3; ++k) w.grid()->sliceView(k)->renderNow();
    ms.push_back(static_cast<double>(t.nsecsElapsed()) / 1e6);
  }
  std::printf("mpr_crosshair_ms_median=%.2f viewports=%dx%d moves=%d\n", median(ms), w.grid()->sliceView(0)->width(),
              w.grid()->sliceView(0)->height(), n);
}

// The segment editor on the loaded series, in the window as a reader uses it (issue 14's
// goals): a 10 mm sphere dab applied and the view redrawn; undo of a 20-dab stroke and
// redraw; the history of 100 such strokes; region growing over the whole volume (the air
// around the patient from a corner); interpolation of 20 slices between two discs.
void benchmarkSegment(MainWindow& w, int n) {
  SliceView* v = w.grid()->activeSliceView();
  sizeViewport(w, v, 512);
  v->fit();  // the slice fills the viewport whatever size the window had when it opened
  LabelPanel* lp = w.labelPanel();
  if (!lp->newLabelMap()) return;
  lp->setBrushDiameterMm(10);
  lp->setBrushSphere(true);
  lp->setTool(PaintTool::Brush);
  const auto& g = v->series()->volume->geometry();
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(0.3, 0.7);
  auto event = [&](PaintEvent::Phase phase, const Vec3& p) {
    PaintEvent e;
    e.phase = phase;
    e.lps = p;
    e.normal = v->navigator().axes().normal;
    e.sliceStepMm = v->navigator().stepMm();
    return e;
  };
  auto inPlane = [&] { return v->worldAt(QPointF(u(rng) * v->width(), u(rng) * v->height())); };
  std::vector<double> dab, dabApply, undo, undoApply;
  for (int i = 0; i < n; ++i) {
    const Vec3 p = inPlane();
    QElapsedTimer t;
    t.start();
    lp->paint(event(PaintEvent::Phase::Begin, p));
    lp->paint(event(PaintEvent::Phase::End, p));
    dabApply.push_back(static_cast<double>(t.nsecsElapsed()) / 1e6);
    v->renderNow();
    dab.push_back(static_cast<double>(t.nsecsElapsed()) / 1e6);
  }
  const std::size_t before = lp->editor()->historyBytes();
  for (int s = 0; s < 100; ++s) {
    Vec3 p = inPlane();
    lp->paint(event(PaintEvent::Phase::Begin, p));
    for (int d = 0; d < 20; ++d) {
      p = p + v->navigator().axes().right * 2.5;
      lp->paint(event(PaintEvent::Phase::Move, p));
    }
    lp->paint(event(PaintEvent::Phase::End, p));
  }
  const double historyMb = static_cast<double>(lp->editor()->historyBytes() - before) / (1024.0 * 1024.0);
  for (int i = 0; i < std::min(n, 50); ++i) {
    QElapsedTimer t;
    t.start();
    lp->undo();
    undoApply.push_back(static_cast<double>(t.nsecsElapsed()) / 1e6);
    v->renderNow();
    undo.push_back(static_cast<double>(t.nsecsElapsed()) / 1e6);
  }
  // Region growing: the air around the head, seeded in a corner of the middle slice.
  lp->setTool(PaintTool::Grow);
  lp->setIntensityLimit(true, -1100, -400);
  lp->setActiveLabel(2);
  const Vec3 corner = g.ijkToLps({2, 2, static_cast<double>(g.size[2] / 2)});
  QElapsedTimer tg;
  tg.start();
  lp->paint(event(PaintEvent::Phase::Begin, corner));
  v->renderNow();
  const double growMs = static_cast<double>(tg.nsecsElapsed()) / 1e6;
  std::size_t grown = 0;
  for (std::size_t i = 0; i < lp->overlay()->labels->voxelCount(); ++i) grown += lp->overlay()->labels->data<std::uint8_t>()[i] == 2;
  // Interpolation: discs of 40 and 20 mm 21 slices apart (20 slices to fill).
  lp->setIntensityLimit(false, 0, 0);
  lp->setTool(PaintTool::Brush);
  lp->setBrushSphere(false);
  lp->setActiveLabel(3);
  const int k0 = static_cast<int>(g.size[2] / 2) - 10;
  const Vec3 centre = g.centerLps();
  v->setSliceIndex(k0);
  lp->setBrushDiameterMm(40);
  Vec3 c = centre + v->navigator().axes().normal * (v->navigator().focal() - centre).dot(v->navigator().axes().normal);
  lp->paint(event(PaintEvent::Phase::Begin, c));
  lp->paint(event(PaintEvent::Phase::End, c));
  v->setSliceIndex(k0 + 21);
  lp->setBrushDiameterMm(20);
  c = centre + v->navigator().axes().normal * (v->navigator().focal() - centre).dot(v->navigator().axes().normal);
  lp->paint(event(PaintEvent::Phase::Begin, c));
  lp->paint(event(PaintEvent::Phase::End, c));
  lp->setWorkingNormal(v->navigator().axes().normal);
  QElapsedTimer ti;
  ti.start();
  lp->interpolate();
  v->renderNow();
  const double interpMs = static_cast<double>(ti.nsecsElapsed()) / 1e6;
  std::printf("dab_ms_median=%.2f (applied %.2f) undo_ms_median=%.2f (applied %.2f) history_mb_100_strokes=%.2f "
              "grow_ms=%.0f grow_voxels=%zu interpolate_20_slices_ms=%.0f viewport=%dx%d grid=%zux%zux%zu\n",
              median(dab), median(dabApply), median(undo), median(undoApply), historyMb, growMs, grown, interpMs, v->width(),
              v->height(), g.size[0], g.size[1], g.size[2]);
}


// Retrieves a study from a configured node as File > Query / Retrieve does, opens it as
// soon as the browser lists any of it (as a reader's double-click would) and prints, in
// seconds from the retrieve's start, when the first picture of it was drawn, when the
// retrieve ended and when the whole series was on screen. For a study of one series.
void benchmarkRetrieve(MainWindow& w, const QString& nodeName, const QString& study, const std::function<void(int)>& finish) {
  auto nodes = web::configuredNodes(30);
  if (!nodes) {
    std::fprintf(stderr, "lumen: error: %s\n", nodes.error().toString().c_str());
    return finish(2);
  }
  auto it = std::find_if(nodes->begin(), nodes->end(), [&](const web::RemoteNode& n) { return n.name() == nodeName.toStdString(); });
  if (it == nodes->end()) {
    std::fprintf(stderr, "lumen: error: no node '%s' in the nodes file\n", qPrintable(nodeName));
    return finish(2);
  }
  struct State {
    QElapsedTimer clock;
    double first = -1, done = -1;
    bool opened = false;
    int loads = 0;
  };
  auto st = std::make_shared<State>();
  SliceView* v = w.grid()->activeSliceView();
  QObject::connect(v, &VtkWidget::frameRendered, &w, [st, v] {
    if (st->first < 0 && v->hasSeries()) st->first = static_cast<double>(st->clock.elapsed()) / 1000.0;
  });
  QObject::connect(&w, &MainWindow::retrieveFinished, &w, [st, finish](bool ok, int stored, const QString& summary) {
    st->done = static_cast<double>(st->clock.elapsed()) / 1000.0;
    if (!ok || stored == 0) {
      std::fprintf(stderr, "lumen: error: %s\n", qPrintable(summary));
      finish(1);
    }
  });
  QObject::connect(&w, &MainWindow::seriesLoaded, &w, [st, finish](const std::shared_ptr<LoadedSeries>& s) {
    ++st->loads;
    if (!s->complete || st->done < 0) return;
    std::printf("retrieve_first_image_s=%.3f retrieve_done_s=%.3f series_complete_s=%.3f slices=%zu loads=%d\n", st->first,
                st->done, static_cast<double>(st->clock.elapsed()) / 1000.0, s->volume->size()[2], st->loads);
    finish(0);
  });
  auto* poll = new QTimer(&w);
  QObject::connect(poll, &QTimer::timeout, &w, [&w, st, poll, study] {
    const QStringList files = w.browser()->filesOfStudy(study.toStdString());
    if (files.isEmpty()) return;
    poll->stop();
    w.openPaths(files);
  });
  st->clock.start();
  poll->start(20);
  w.retrieveStudy(*it, study, "benchmark");
}
}  // namespace

int main(int argc, char** argv) {
  const long long startEpoch = epochMs();
  VtkWidget::configureDefaultSurfaceFormat();
  QApplication::setAttribute(Qt::AA_ShareOpenGLContexts);

  QApplication app(argc, argv);
  QApplication::setApplicationName("Lumen");
  QApplication::setOrganizationName("Lumen");
  QApplication::setApplicationVersion(LUMEN_VERSION);

  QCommandLineParser cli;
  cli.setApplicationDescription("Lumen medical image workstation");
  cli.addHelpOption();
  cli.addVersionOption();
  cli.addPositionalArgument("path", "DICOM folder, file or DICOMDIR, or a NIfTI/NRRD image");
  QCommandLineOption screenshot("screenshot", "Render, save the window as PNG <file>, exit.", "file");
  QCommandLineOption layout("layout", "Layout: 1x1, 1x2, 2x2 or mpr.", "layout");
  QCommandLineOption preset("preset", "Window preset (brain, lung, bone, ...) or 3D preset (ct-bone, mip, ...).", "name");
  QCommandLineOption overlay("overlay", "Label map (NIfTI/NRRD) to show over the image.", "file");
  QCommandLineOption size("size", "Window size for --screenshot, WxH (default 1440x900).", "WxH");
  QCommandLineOption dataDir("data-dir", "Folder of the study database.", "dir");
  QCommandLineOption hidePatient("hide-patient", "Hide patient information in the viewports.");
  QCommandLineOption noSettings("no-settings", "Neither read nor save window settings.");
  QCommandLineOption benchScroll("benchmark-scroll", "Time N scroll steps, print the median, exit.", "N");
  QCommandLineOption benchSegment("benchmark-segment", "Time the label editor (N brush dabs ...), print, exit.", "N");
  QCommandLineOption benchMpr("benchmark-mpr", "Time N MPR crosshair moves, print the median, exit.", "N");
  QCommandLineOption timing("report-timing", "Print when the first image and the full series were on screen.");
  QCommandLineOption runModel("run-model", "With --screenshot: run this AI model (bundle name) on the series first.", "name");
  QCommandLineOption benchRetrieve("benchmark-retrieve",
                                    "Retrieve a study (positional argument: its UID) from NODE, open it while it arrives, "
                                    "print when its first image and the whole series were shown, exit.",
                                    "NODE");
  QCommandLineOption samples("multisamples",
                             "Samples per pixel of the views (0, 2, 4, 8, 16; default: VTK's, or 0 under software OpenGL).", "N");
  for (const auto& o :
       {screenshot, layout, preset, overlay, size, dataDir, hidePatient, noSettings, benchScroll, benchMpr, benchSegment, timing, runModel, samples, benchRetrieve})
    cli.addOption(o);
  cli.process(app);
  if (cli.isSet(samples)) {
    bool ok = false;
    const int n = cli.value(samples).toInt(&ok);
    if (!ok || (n != 0 && n != 2 && n != 4 && n != 8 && n != 16)) {
      std::fprintf(stderr, "lumen: --multisamples must be 0, 2, 4, 8 or 16, not '%s'\n", qPrintable(cli.value(samples)));
      return 2;
    }
    VtkWidget::setRequestedMultiSamples(n);
  }

  const bool batch = cli.isSet(screenshot) || cli.isSet(benchScroll) || cli.isSet(benchMpr) || cli.isSet(benchSegment) ||
                     cli.isSet(timing) || cli.isSet(benchRetrieve);
  MainWindow::Options options;
  options.dataDir = cli.value(dataDir);
  options.rememberSettings = !batch && !cli.isSet(noSettings);
  // Screenshots and benchmarks that run no model do not load LibTorch (a second of one core).
  options.loadAi =
      !(cli.isSet(screenshot) || cli.isSet(benchScroll) || cli.isSet(benchMpr) || cli.isSet(benchSegment) ||
        cli.isSet(benchRetrieve)) ||
      cli.isSet(runModel);
  MainWindow window(options);
  // A screenshot wants the final 3D picture only, not a draft first.
  if (cli.isSet(screenshot)) window.grid()->volumeView()->setDraftFirst(false);

  Layout requestedLayout = Layout::One;
  if (cli.isSet(layout) && !parseLayout(cli.value(layout), requestedLayout)) {
    std::fprintf(stderr, "lumen: error: unknown layout '%s' (use 1x1, 1x2, 2x2 or mpr)\n", qPrintable(cli.value(layout)));
    return 2;
  }
  if (batch) {
    int w = 1440, h = 900;
    if (cli.isSet(size)) {
      const QStringList wh = cli.value(size).split('x');
      if (wh.size() == 2) {
        w = wh[0].toInt();
        h = wh[1].toInt();
      }
    }
    window.resize(std::max(320, w), std::max(240, h));
  }
  if (cli.isSet(layout)) window.setLayoutMode(requestedLayout);
  if (cli.isSet(hidePatient)) window.setHidePatient(true);

  const QStringList paths = cli.positionalArguments();
  if (batch && paths.isEmpty()) {
    std::fprintf(stderr, "lumen: error: --screenshot and the benchmarks need a path to open\n");
    return 2;
  }

  int exitCode = 0;
  auto finish = [&](int code) {
    exitCode = code;
    QTimer::singleShot(0, &app, [&app, code] { app.exit(code); });
  };
  QObject::connect(&window, &MainWindow::firstImageShown, [&] {
    if (cli.isSet(timing))
      std::printf("first_image_ms=%lld first_image_epoch_ms=%lld\n", epochMs() - startEpoch, epochMs());
  });
  // --report-timing: when each viewport first drew a picture of the series (the 3D view's
  // draft counts; its full-quality frame is reported apart).
  std::array<long long, 4> viewportFirstMs{-1, -1, -1, -1};
  if (cli.isSet(timing)) {
    for (int k = 0; k < 4; ++k) {
      VtkWidget* w = k < 3 ? static_cast<VtkWidget*>(window.grid()->sliceView(k)) : window.grid()->volumeView();
      QObject::connect(w, &VtkWidget::frameRendered, &window, [&, k, w] {
        const bool has = k < 3 ? static_cast<SliceView*>(w)->hasSeries() : window.grid()->volumeView()->series() != nullptr;
        if (has && viewportFirstMs[static_cast<std::size_t>(k)] < 0)
          viewportFirstMs[static_cast<std::size_t>(k)] = epochMs() - startEpoch;
      });
    }
  }
  QObject::connect(&window, &MainWindow::loadFailed, [&](const QString& m) {
    if (!batch) return;
    std::fprintf(stderr, "lumen: error: %s\n", qPrintable(m));
    finish(1);
  });

  // Batch modes continue once the series is loaded (and the overlay, if any).
  bool modelDone = false;
  std::function<void()> afterLoad;
  afterLoad = [&] {
    if (cli.isSet(layout)) window.setLayoutMode(requestedLayout);
    if (cli.isSet(preset) && !window.applyPresetByName(cli.value(preset))) {
      std::fprintf(stderr, "lumen: error: unknown preset '%s'\n", qPrintable(cli.value(preset)));
      return finish(2);
    }
    if (cli.isSet(benchScroll)) {
      benchmarkScroll(window, cli.value(benchScroll).toInt());
      return finish(0);
    }
    if (cli.isSet(benchMpr)) {
      benchmarkMpr(window, cli.value(benchMpr).toInt());
      return finish(0);
    }
    if (cli.isSet(benchSegment)) {
      benchmarkSegment(window, cli.value(benchSegment).toInt());
      return finish(0);
    }
    if (cli.isSet(timing)) {
      std::printf("loaded_ms=%lld\n", epochMs() - startEpoch);
      VolumeView3D* v3d = window.grid()->volumeView();
      if (window.grid()->layoutMode() != Layout::Mpr) return finish(0);
      auto report = [&] {
        std::printf("viewport_first_ms=%lld,%lld,%lld,%lld refined_3d_ms=%lld\n", viewportFirstMs[0], viewportFirstMs[1],
                    viewportFirstMs[2], viewportFirstMs[3], epochMs() - startEpoch);
        finish(0);
      };
      if (!v3d->refining()) return report();
      QObject::connect(v3d, &VolumeView3D::refined, &window, report, Qt::SingleShotConnection);
      return;
    }
    if (cli.isSet(screenshot) && cli.isSet(runModel) && !modelDone) {
      // The AI panel's result (overlay, derived series, probabilities) in the picture: wait
      // for the plug-in, run the model as the Run button would, then come back here.
      auto start = [&] {
        QWidget* panel = window.aiPanel();
        bool started = false;
        if (panel) {
          QMetaObject::invokeMethod(panel, "setAskToTrust", Q_ARG(bool, false));  // no questions in a script
          QMetaObject::invokeMethod(panel, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, cli.value(runModel)));
        }
        if (!started) {
          std::fprintf(stderr, "lumen: error: cannot run model '%s': %s\n", qPrintable(cli.value(runModel)),
                       qPrintable(window.messages().join("; ")));
          return finish(1);
        }
        auto* poll = new QTimer(&window);
        QObject::connect(poll, &QTimer::timeout, &window, [&, panel, poll] {
          bool busy = true;
          QMetaObject::invokeMethod(panel, "busy", Q_RETURN_ARG(bool, busy));
          if (busy) return;
          poll->stop();
          // A run that failed (or was refused) is an error of the command, not a picture without it.
          bool ok = false;
          QMetaObject::invokeMethod(panel, "lastRunOk", Q_RETURN_ARG(bool, ok));
          if (!ok) {
            std::fprintf(stderr, "lumen: error: model '%s' did not run: %s\n", qPrintable(cli.value(runModel)),
                         qPrintable(window.messages().join("; ")));
            return finish(1);
          }
          modelDone = true;
          afterLoad();
        });
        poll->start(100);
      };
      if (window.aiPanel()) start();
      else QObject::connect(&window, &MainWindow::aiReady, &window, [start](bool) { start(); });
      return;
    }
    if (cli.isSet(screenshot)) {
      // The final picture: in MPR once the 3D view's full-quality frame is drawn (a grab
      // reuses the frames of views that did not change since); otherwise after the views
      // drew at their final size.
      VolumeView3D* v3d = window.grid()->volumeView();
      const bool wait3d = window.grid()->layoutMode() == Layout::Mpr && v3d->refining();
      auto grab = [&] {
        QApplication::processEvents();
        const QImage img = window.grab().toImage();
        if (img.isNull() || !img.save(cli.value(screenshot))) {
          std::fprintf(stderr, "lumen: error: cannot write %s\n", qPrintable(cli.value(screenshot)));
          return finish(1);
        }
        std::printf("wrote %s (%dx%d)\n", qPrintable(cli.value(screenshot)), img.width(), img.height());
        finish(0);
      };
      if (wait3d) {
        // A 3D view that never draws (no OpenGL) must not hold the screenshot back forever.
        auto once = std::make_shared<bool>(false);
        auto grabOnce = [grab, once] {
          if (std::exchange(*once, true)) return;
          grab();
        };
        QObject::connect(v3d, &VolumeView3D::refined, &window, [grabOnce] { QTimer::singleShot(0, grabOnce); },
                         Qt::SingleShotConnection);
        QTimer::singleShot(60000, &window, grabOnce);
      } else {
        QTimer::singleShot(400, &window, grab);
      }
    }
  };
  QObject::connect(&window, &MainWindow::seriesLoaded, [&] {
    if (!batch || cli.isSet(benchRetrieve)) return;
    if (cli.isSet(overlay)) {
      QObject::connect(&window, &MainWindow::overlayLoaded, afterLoad);
      window.openOverlay(cli.value(overlay));
    } else {
      afterLoad();
    }
  });
  // Loading starts before the window is shown: showing it creates the OpenGL contexts
  // (half a second under software OpenGL), and the series can be read meanwhile. Every
  // result of the load arrives through the event loop, after the connections above.
  if (cli.isSet(benchRetrieve)) {
    if (paths.size() != 1) {
      std::fprintf(stderr, "lumen: error: --benchmark-retrieve NODE needs the study UID as its argument\n");
      return 2;
    }
    window.show();
    QTimer::singleShot(0, &window, [&] { benchmarkRetrieve(window, cli.value(benchRetrieve), paths[0], finish); });
  } else if (!paths.isEmpty()) {
    window.openPaths(paths);
  } else if (cli.isSet(overlay)) {
    window.openOverlay(cli.value(overlay));
  }
  if (!cli.isSet(benchRetrieve)) window.show();

  if (batch) {
    // Never hang in a script: give up after two minutes (ten with a model to run).
    QTimer::singleShot(cli.isSet(runModel) ? 600000 : 120000, &app, [&] {
      std::fprintf(stderr, "lumen: error: timed out\n");
      finish(1);
    });
  }
  const int rc = app.exec();
  return exitCode ? exitCode : rc;
}
