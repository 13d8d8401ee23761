#include "MainWindow.h"

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QCloseEvent>
#include <QComboBox>
#include <QSignalBlocker>
#include <QDateTime>
#include <QDialog>
#include <QDockWidget>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHeaderView>
#include <QLabel>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QSettings>
#include <QSpinBox>
#include <QStatusBar>
#include <QStyleFactory>
#include <QTableWidget>
#include <QThreadPool>
#include <QTimer>
#include <QToolBar>
#include <QToolButton>
#include <QVBoxLayout>
#include <QFutureWatcher>
#include <QPointer>
#include <QtConcurrent/QtConcurrentRun>

#include <dlfcn.h>

#include <tuple>
#include <utility>

#include "lumen/imaging/DicomSeg.h"
#include "lumen/imaging/LabelMapIO.h"
#include "FindingsPanel.h"
#include "LabelPanel.h"
#include "MeasurementStore.h"
#include "PacsDialog.h"
#include "Receiver.h"
#include "ResultViewer.h"
#include "SeriesLoader.h"
#include "StudyBrowser.h"
#include "lumen/core/InstallPaths.h"
#include "lumen/imaging/ImageIO.h"

#ifndef LUMEN_GUI_AI_PLUGIN_BUILD
#define LUMEN_GUI_AI_PLUGIN_BUILD ""  // a build without the AI plug-in
#endif

namespace lumen::gui {

namespace {
struct Shortcut {
  const char* keys;
  const char* what;
};
const Shortcut kShortcuts[] = {
    {"Ctrl+O", "Open a folder (DICOM, DICOMDIR)"},
    {"Ctrl+Shift+O", "Open files (DICOM, NIfTI, NRRD)"},
    {"Ctrl+L", "Load a label map overlay"},
    {"Ctrl+1 / 2 / 3 / 4", "Layout 1x1 / 1x2 / 2x2 / MPR"},
    {"Mouse wheel, Up / Down", "Next / previous slice (Shift+wheel: 5 slices)"},
    {"Page Up / Page Down, Home / End", "10 slices, first / last slice"},
    {"Left drag", "Window / level (in MPR: click moves the crosshair)"},
    {"Ctrl + left drag (MPR)", "Rotate the other planes (oblique MPR)"},
    {"Middle drag or Shift + left drag", "Pan"},
    {"Right drag, Ctrl+wheel, + / -", "Zoom"},
    {"1 ... 8", "CT window presets: brain, subdural, stroke, lung, mediastinum, abdomen, liver, bone"},
    {"A", "Automatic window (MR, X-ray)"},
    {"I", "Invert grey scale"},
    {"R", "Reset view"},
    {"F", "Fit to viewport"},
    {"H", "Hide / show patient information"},
    {"C", "Cine play / pause"},
    {"B", "3D clipping box"},
    {"W", "Window / level with the left button (no measuring tool)"},
    {"D / N / E / T / P / M", "Measure: distance, angle, ellipse, rectangle, polygon (click points, double-click or Enter "
                              "to close; drag for freehand), point"},
    {"Drag a handle / a line", "Edit / move a measurement; Delete removes the selected one, Escape cancels a drawing"},
    {"Ctrl+Z / Ctrl+Shift+Z", "Undo / redo the last change (a measurement or a label edit)"},
    {"Ctrl+S", "Save a screenshot of the viewports"},
    {"F1", "This list"},
};
}  // namespace

MainWindow::MainWindow(const Options& options, QWidget* parent) : QMainWindow(parent), options_(options) {
  setWindowTitle("Lumen");
  setObjectName("LumenMainWindow");
  applyDarkTheme();
  grid_ = new ViewportGrid(this);
  setCentralWidget(grid_);
  loader_ = new SeriesLoader(this);

  statusText_ = new QLabel("Ready");
  progress_ = new QProgressBar;
  progress_->setRange(0, 1000);
  progress_->setMaximumWidth(220);
  progress_->setTextVisible(false);
  progress_->hide();
  cancel_ = new QToolButton;
  cancel_->setText("Cancel");
  cancel_->hide();
  receiveLabel_ = new QLabel;
  receiveLabel_->setObjectName("ReceiveStatus");
  receiveLabel_->hide();
  statusBar()->addWidget(statusText_, 1);
  statusBar()->addPermanentWidget(receiveLabel_);
  statusBar()->addPermanentWidget(progress_);
  statusBar()->addPermanentWidget(cancel_);
  // One job: Cancel stops it. Several: Cancel offers each of them, and all.
  cancel_->setMenu(new QMenu(cancel_));
  connect(cancel_->menu(), &QMenu::aboutToShow, this, [this] {
    QMenu* menu = cancel_->menu();
    menu->clear();
    for (const auto& [id, job] : jobs_) {
      const int jobId = id;
      menu->addAction("Cancel: " + job.text, this, [this, jobId] {
        if (auto it = jobs_.find(jobId); it != jobs_.end() && it->second.cancel) it->second.cancel();
      });
    }
    menu->addSeparator();
    menu->addAction("Cancel all", this, [this] { cancelAllJobs(); });
  });
  connect(cancel_, &QToolButton::clicked, this, [this] {
    if (jobs_.size() == 1 && jobs_.begin()->second.cancel) {
      jobs_.begin()->second.cancel();
      statusText_->setText("Cancelling...");
    } else if (jobs_.size() > 1) {
      cancel_->showMenu();
    }
  });

  measurements_ = new MeasurementStore(options_.dataDir, this);
  for (int i = 0; i < 4; ++i) grid_->sliceView(i)->setMeasurementStore(measurements_);
  buildDocks();
  buildActions();
  connect(measurements_, &MeasurementStore::message, this, &MainWindow::addMessage);
  connect(measurements_, &MeasurementStore::changed, this, [this](const QString& key) {
    for (int i = 0; i < 4; ++i) {
      SliceView* v = grid_->sliceView(i);
      if (v->hasSeries() && MeasurementStore::keyOf(*v->series()) == key) v->measurementsChanged();
    }
    if (findings_->series() && MeasurementStore::keyOf(*findings_->series()) == key) findings_->refresh();
  });
  for (int i = 0; i < 4; ++i)
    connect(grid_->sliceView(i), &SliceView::measurementSelected, this, [this](int id) { findings_->select(id); });
  connect(findings_, &FindingsPanel::jumpTo, this, &MainWindow::showMeasurement);
  connect(measurements_, &MeasurementStore::edited, this, [this](const QString& key) {
    undoOrder_.push_back({EditKind::Measurement, key});
    redoOrder_.clear();
  });
  connect(labels_, &LabelPanel::edited, this, [this] {
    undoOrder_.push_back({EditKind::Labels, {}});
    redoOrder_.clear();
  });
  connect(labels_, &LabelPanel::overlayReplaced, this, [this](std::shared_ptr<LabelOverlay> o) { grid_->setOverlay(o); });
  connect(labels_, &LabelPanel::voxelsEdited, grid_, &ViewportGrid::overlayVoxelsChanged);
  connect(labels_, &LabelPanel::message, this, &MainWindow::addMessage);
  // A SEG saved from the editor is a series of its study: into the database and the browser.
  connect(labels_, &LabelPanel::segSaved, this, [this](const QString& f) { browser_->importPaths({f}, false); });
  connect(labels_, &LabelPanel::saveRequested, this, &MainWindow::saveLabelMap);
  connect(labels_, &LabelPanel::cropRequested, this, [this] {
    std::vector<std::pair<Vec3, Vec3>> planes;
    grid_->volumeView()->clippingPlanes(planes);
    labels_->cropToBox(planes);
  });
  connect(labels_, &LabelPanel::toolChanged, this, [this](PaintTool tool, double mm) {
    for (int i = 0; i < 4; ++i) grid_->sliceView(i)->setPaintTool(tool, mm);
    if (tool != PaintTool::None) setMeasureTool(MeasureTool::None);
  });
  for (int i = 0; i < 4; ++i)
    connect(grid_->sliceView(i), &SliceView::paintStroke, labels_, &LabelPanel::paint);
  connect(grid_, &ViewportGrid::activeViewChanged, this, [this] { syncFindings(); });

  connect(grid_, &ViewportGrid::dropped, this, [this](int viewport, const QStringList& paths) { openPaths(paths, viewport); });
  connect(loader_, &SeriesLoader::progress, this, [this](int id, double f, const QString& m) {
    if (id != loadId_) return;
    taskProgress(loadJob_, f, m);
  });
  connect(loader_, &SeriesLoader::firstSliceReady, this, [this](int id, std::shared_ptr<LoadedSeries> s) {
    if (id != loadId_ || keepViewLoad_) return;  // a series growing on screen changes when loaded
    partial_ = s;
    grid_->showPartial(s, loadViewport_);
    if (!firstImageReported_) {
      // The first frame that contains the image: report once it was drawn.
      SliceView* v = grid_->layoutMode() == Layout::Mpr ? grid_->sliceView(0) : grid_->activeSliceView();
      auto conn = std::make_shared<QMetaObject::Connection>();
      *conn = connect(v, &VtkWidget::frameRendered, this, [this, conn] {
        disconnect(*conn);
        if (!firstImageReported_) {
          firstImageReported_ = true;
          emit firstImageShown();
        }
      });
    }
  });
  connect(loader_, &SeriesLoader::slicesArrived, this, [this](int id) {
    if (id == loadId_ && !keepViewLoad_) grid_->voxelsChanged();  // a reload is not on screen yet
  });
  connect(loader_, &SeriesLoader::finished, this, [this](int id, std::shared_ptr<LoadedSeries> s, const QStringList& notes) {
    if (id != loadId_) return;
    // A series still arriving: shown, but not complete (nothing computes on it), and its
    // notes (missing slices, ...) wait for the whole series. A load that began while its
    // study was arriving may lack what came meanwhile: one more load settles it.
    const std::string uid = s->info.series.seriesInstanceUid;
    const bool followed = follow_ && follow_->seriesUid == uid;
    const bool startedArriving = !uid.empty() && arrivingAtStart_.count(s->info.study.studyInstanceUid) > 0;
    const bool growing =
        !uid.empty() && (arriving(*s) || (startedArriving && (!followed || browser_->filesOfSeries(uid).size() > loadFileCount_)));
    if (growing) s->complete = false;
    else for (const auto& n : notes) addMessage(n);
    if (keepViewLoad_) {
      // Every view that shows this series (not a result derived from it) gets the new load.
      const auto old = shownAs(uid);
      if (old.empty()) {  // the reader has moved on: nothing to update
        follow_.reset();
        endTask(std::exchange(loadJob_, -1), "Series no longer shown");
        return;
      }
      for (const auto& o : old) grid_->replaceSeries(o, s, true);
    } else {
      SliceView* target = grid_->layoutMode() == Layout::Mpr ? nullptr
                          : (loadViewport_ >= 0 ? grid_->sliceView(loadViewport_) : grid_->activeSliceView());
      if (target && partial_ && target->series() == partial_) target->replaceSeries(s);
      else grid_->showSeries(s, loadViewport_);
    }
    partial_.reset();
    if (growing) {
      if (!followed) {
        if (follow_)  // one series grows at a time: the one followed so far stays as it is
          addMessage(QString("%1: shows the %2 instance(s) received when another series was opened; open it again "
                             "for the rest").arg(follow_->label).arg(follow_->shown));
        follow_ = Follow{};
        follow_->seriesUid = uid;
        follow_->studyUid = s->info.study.studyInstanceUid;
        follow_->label = QString::fromStdString(s->info.series.modality + " " + s->info.series.description).trimmed();
        follow_->viewport = loadViewport_;
        follow_->shown = 0;  // the next load reads exactly the series' instances in the database
      } else {
        follow_->shown = loadFileCount_;
      }
      follow_->last = s;
      follow_->notes = notes;
      follow_->since.restart();  // the pause between reloads counts from the end of this one
    }
    const auto& g = s->volume->geometry();
    const int job = std::exchange(loadJob_, -1);
    endTask(job, QString("Loaded %1 %2: %3 x %4 x %5%6")
                .arg(QString::fromStdString(s->info.series.modality), QString::fromStdString(s->info.series.description))
                .arg(g.size[0])
                .arg(g.size[1])
                .arg(g.size[2])
                .arg(notes.isEmpty() ? QString() : QString(" (%1 note(s) in Messages)").arg(notes.size())));
    syncFindings();
    emit seriesLoaded(s);
    if (!pendingOverlay_.isEmpty()) openOverlay(std::exchange(pendingOverlay_, QString()), s);
    if (growing) {
      statusText_->setText(QString("%1: %2 instance(s) received so far; the view grows as the rest arrives")
                               .arg(follow_->label)
                               .arg(s->volume->size()[2]));
      QTimer::singleShot(0, this, [this] { followArrivals(); });  // more may have come meanwhile
    } else if (followed) {
      finishFollow(loadFileCount_);
    }
  });
  connect(loader_, &SeriesLoader::failed, this, [this](int id, const QString& msg) {
    if (id != loadId_) return;
    if (keepViewLoad_ && follow_) {
      // A reload that failed or was cancelled: the view keeps what it showed, still not
      // complete, and is no longer followed.
      addMessage(QString("%1: the instances that arrived could not be shown (%2); open the series again")
                     .arg(follow_->label, msg));
      follow_.reset();
      endTask(std::exchange(loadJob_, -1), "Series not updated: " + msg);
      return;
    }
    pendingOverlay_.clear();
    addMessage("error: " + msg);
    endTask(std::exchange(loadJob_, -1), "Could not load: " + msg);
    emit loadFailed(msg);
  });

  liveRefresh_ = new QTimer(this);
  liveRefresh_->setSingleShot(true);
  liveRefresh_->setInterval(300);
  connect(liveRefresh_, &QTimer::timeout, browser_, &StudyBrowser::liveRefresh);
  connect(liveRefresh_, &QTimer::timeout, this, [this] { followArrivals(); });

  if (options_.rememberSettings) restoreSettings();
  else resize(1440, 900);

  // The AI engine (LibTorch) is loaded in the background, but its dlopen holds the dynamic
  // loader's lock for about a second and the GUI thread waits on that lock too (lazy
  // binding, Mesa's shader compiler). So it comes at the first tick when nothing is loading
  // and the 3D view is not drawing a new series (a 3D view that never draws, hidden or
  // without OpenGL, holds it back 6 s at most).
  if (options_.loadAi) {
    auto* idle = new QTimer(this);
    connect(idle, &QTimer::timeout, this, [this, idle] {
      if (aiLoadStarted_) return idle->stop();
      if (loadJob_ >= 0) return;
      if (grid_->volumeView()->refining() && ++aiWaitTicks_ < 12) return;
      loadAiPlugin();
    });
    idle->start(500);
  } else if (auto* status = aiDock_->findChild<QLabel*>("AiStatus")) {
    status->setText("AI engine not loaded (batch run without --run-model)");
  }
}

MainWindow::~MainWindow() {
  // The AI panel is deleted with the dock after this body: nothing may call it meanwhile.
  seriesWatcher_ = nullptr;
  seriesWatcherOwner_ = nullptr;
  // Every job is told to stop before waiting for the pool: an import of thousands of files
  // must not keep a closed window alive until it finishes.
  cancelAllJobs();
  loader_->cancel();
  browser_->cancelImport();
  if (receiver_) receiver_->stop();  // running associations finish, their instances are filed
  QThreadPool::globalInstance()->waitForDone();
}

void MainWindow::cancelAllJobs() {
  std::vector<std::function<void()>> cancels;
  for (const auto& [id, job] : jobs_)
    if (job.cancel) cancels.push_back(job.cancel);
  for (auto& c : cancels) c();
}

void MainWindow::loadAiPlugin() {
  if (aiLoadStarted_) return;
  aiLoadStarted_ = true;
  QString path = options_.aiPlugin;
  if (path.isEmpty())
    path = QString::fromStdString(pluginPath("LUMEN_GUI_AI_PLUGIN", "liblumen_gui_ai.so", LUMEN_GUI_AI_PLUGIN_BUILD).string());
  auto* watcher = new QFutureWatcher<std::pair<void*, QString>>(this);
  connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher, path] {
    const auto [handle, error] = watcher->result();
    watcher->deleteLater();
    auto* status = aiDock_->findChild<QLabel*>("AiStatus");
    CreateAiPanelFn createPanel = handle ? reinterpret_cast<CreateAiPanelFn>(dlsym(handle, kCreateAiPanelSymbol)) : nullptr;
    if (!createPanel) {
      const QString why = handle ? QString("%1 lacks %2").arg(path, kCreateAiPanelSymbol) : error;
      if (status) status->setText("AI models unavailable: " + why);
      addMessage("AI engine unavailable: " + why);
      emit aiReady(false);
      return;
    }
    aiPanel_ = createPanel(this, aiDock_);
    aiDock_->setWidget(aiPanel_);
    emit aiReady(true);
  });
  // dlopen runs LibTorch's static initialisation: off the GUI thread.
  watcher->setFuture(QtConcurrent::run([path]() -> std::pair<void*, QString> {
    void* h = dlopen(path.toLocal8Bit().constData(), RTLD_NOW | RTLD_LOCAL);
    return {h, h ? QString() : QString::fromLocal8Bit(dlerror())};
  }));
}

std::shared_ptr<LoadedSeries> MainWindow::shownSeries() const {
  SliceView* v = grid_->activeSliceView();
  return v && v->hasSeries() ? v->series() : nullptr;
}

std::shared_ptr<LoadedSeries> MainWindow::currentSeries() const {
  auto s = shownSeries();
  return s && s->complete ? s : nullptr;  // never a volume the loader is still filling
}

void MainWindow::watchCurrentSeries(QObject* owner, std::function<void()> changed) {
  seriesWatcherOwner_ = owner;
  seriesWatcher_ = std::move(changed);
}

void MainWindow::currentSeriesMayHaveChanged() {
  if (seriesWatcherOwner_ && seriesWatcher_) seriesWatcher_();
}

void MainWindow::showOverlay(std::shared_ptr<LabelOverlay> o) {
  SliceView* view = grid_->activeSliceView();
  if (view && view->hasSeries() && !sameGrid(o->labels->geometry(), view->series()->volume->geometry(), 0.01))
    addMessage("note: the label map is on another grid than the image; it is shown at its own position");
  labels_->setOverlay(o);
  grid_->setOverlay(labels_->overlay());  // the editable copy when it had to be converted
}

void MainWindow::showLabelMap(std::shared_ptr<Volume> labels, const std::vector<AiLabel>& names, const QString& source,
                              const LabelProvenance& model) {
  auto o = makeLabelOverlay(std::move(labels), source.toStdString());
  if (!o) {
    addMessage("error: " + QString::fromStdString(o.error().toString()));
    return;
  }
  o->provenance = model;
  for (auto& e : o->entries)
    for (const auto& n : names)
      if (n.value == e.value) {
        e.name = n.name;
        if (n.color) e.color = *n.color;
      }
  showOverlay(std::make_shared<LabelOverlay>(std::move(*o)));
}

void MainWindow::showHeatMap(std::shared_ptr<Volume> map, const QString& source, const QString& quantity) {
  // Eight bands from 0.2 to 1 (weaker evidence is not drawn), dark red to yellow: the
  // label overlay machinery then gives per-band visibility and opacity for free.
  auto bands = Volume::zeros(PixelType::UInt8, map->geometry());
  if (!bands || map->pixelType() != PixelType::Float32) return;
  const float* m = map->data<float>();
  std::uint8_t* b = bands->data<std::uint8_t>();
  for (std::size_t i = 0; i < map->voxelCount(); ++i)
    if (m[i] >= 0.2f) b[i] = static_cast<std::uint8_t>(std::min(8, 1 + static_cast<int>((m[i] - 0.2f) / 0.1f)));
  auto o = makeLabelOverlay(std::make_shared<Volume>(std::move(*bands)), source.toStdString());
  if (!o) return;
  for (auto& e : o->entries) {
    const double t = (e.value - 1) / 7.0;
    e.color = {static_cast<std::uint8_t>(150 + 105 * std::min(1.0, 2 * t)), static_cast<std::uint8_t>(230 * std::max(0.0, t * 1.2 - 0.2)),
               static_cast<std::uint8_t>(60 * std::max(0.0, t - 0.7) / 0.3)};
    e.name = QString("%3 %1 to %2").arg(0.2 + 0.1 * (e.value - 1), 0, 'f', 1).arg(std::min(1.0, 0.3 + 0.1 * (e.value - 1)), 0, 'f', 1).arg(quantity).toStdString();
  }
  o->opacity = 0.5;
  showOverlay(std::make_shared<LabelOverlay>(std::move(*o)));
}

void MainWindow::clearOverlay() {
  labels_->setOverlay(nullptr);
  grid_->setOverlay(nullptr);
}

std::shared_ptr<LoadedSeries> MainWindow::showDerivedSeries(const LoadedSeries& from, std::shared_ptr<Volume> voxels,
                                                            const QString& description) {
  auto s = std::make_shared<LoadedSeries>();
  s->volume = std::move(voxels);
  s->info = from.info;
  s->info.series.description = description.toStdString();
  s->source = from.source;
  s->derived = true;
  computeStatistics(*s);
  showSeries(s);
  return s;
}

void MainWindow::showSeries(std::shared_ptr<LoadedSeries> series) {
  grid_->replaceSeries(shownSeries(), std::move(series));
  currentSeriesMayHaveChanged();
}

int MainWindow::beginTask(const QString& text, std::function<void()> cancel) {
  return beginJob(JobKind::Ai, text, std::move(cancel));
}

int MainWindow::beginJob(JobKind kind, const QString& text, std::function<void()> cancel) {
  const int id = ++nextJob_;
  jobs_[id] = Job{kind, text, NAN, std::move(cancel)};
  updateStatusBar();
  return id;
}

void MainWindow::taskProgress(int job, double fraction, const QString& text) {
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return;  // ended meanwhile
  it->second.fraction = fraction;
  if (!text.isEmpty()) it->second.text = text;
  updateStatusBar();
}

void MainWindow::endTask(int job, const QString& text) {
  if (jobs_.erase(job) == 0) return;
  updateStatusBar();
  if (jobs_.empty()) statusText_->setText(text);
  else addMessage(text);  // other jobs still own the status bar; the result goes to Messages
}

// The status bar shows the newest job; when others run too, how many.
void MainWindow::updateStatusBar() {
  if (jobs_.empty()) {
    progress_->hide();
    cancel_->hide();
    cancel_->setPopupMode(QToolButton::DelayedPopup);
    return;
  }
  const Job& job = jobs_.rbegin()->second;
  QString text = job.text + "...";
  if (jobs_.size() > 1) text += QString("  (%1 tasks running)").arg(jobs_.size());
  statusText_->setText(text);
  if (std::isnan(job.fraction)) {
    progress_->setRange(0, 0);
  } else {
    progress_->setRange(0, 1000);
    progress_->setValue(static_cast<int>(job.fraction * 1000));
  }
  progress_->show();
  cancel_->show();
  cancel_->setText(jobs_.size() > 1 ? "Cancel..." : "Cancel");
}

void MainWindow::applyDarkTheme() {
  // A dark, low-glare palette for reading rooms.
  qApp->setStyle(QStyleFactory::create("Fusion"));
  QPalette p;
  const QColor base(30, 30, 34), window(40, 40, 45), text(215, 215, 220), accent(61, 142, 232);
  p.setColor(QPalette::Window, window);
  p.setColor(QPalette::WindowText, text);
  p.setColor(QPalette::Base, base);
  p.setColor(QPalette::AlternateBase, QColor(36, 36, 41));
  p.setColor(QPalette::ToolTipBase, window);
  p.setColor(QPalette::ToolTipText, text);
  p.setColor(QPalette::Text, text);
  p.setColor(QPalette::Button, window);
  p.setColor(QPalette::ButtonText, text);
  p.setColor(QPalette::BrightText, Qt::white);
  p.setColor(QPalette::Highlight, accent);
  p.setColor(QPalette::HighlightedText, Qt::white);
  p.setColor(QPalette::Link, accent);
  p.setColor(QPalette::Disabled, QPalette::Text, QColor(110, 110, 115));
  p.setColor(QPalette::Disabled, QPalette::ButtonText, QColor(110, 110, 115));
  p.setColor(QPalette::Disabled, QPalette::WindowText, QColor(110, 110, 115));
  qApp->setPalette(p);
}

void MainWindow::buildDocks() {
  const std::filesystem::path dataDir = options_.dataDir.isEmpty() ? db::StudyDatabase::defaultDataDir()
                                                                   : std::filesystem::path(options_.dataDir.toStdString());
  browser_ = new StudyBrowser(dataDir, this);
  QString dbError;
  if (!browser_->open(&dbError)) addMessage("error: study database unavailable: " + dbError);
  auto* browserDock = new QDockWidget("Studies", this);
  browserDock->setObjectName("StudiesDock");
  browserDock->setWidget(browser_);
  addDockWidget(Qt::LeftDockWidgetArea, browserDock);
  connect(browser_, &StudyBrowser::openSeries, this, [this](const QStringList& f) { openPaths(f); });
  connect(browser_, &StudyBrowser::message, this, [this](const QString& m) {
    addMessage(m);
    statusText_->setText(m);
  });
  connect(browser_, &StudyBrowser::importStarted, this, [this] {
    importJob_ = beginJob(JobKind::Import, "Importing", [this] { browser_->cancelImport(); });
  });
  connect(browser_, &StudyBrowser::importProgress, this, [this](double f, const QString& m) {
    taskProgress(importJob_, f, m);
  });
  connect(browser_, &StudyBrowser::importFinished, this, [this](const QString& summary, const QStringList& skipped) {
    for (const auto& s : skipped) addMessage("skipped " + s);
    addMessage(summary);
    endTask(std::exchange(importJob_, -1), summary);
  });

  findings_ = new FindingsPanel(measurements_, this);
  auto* findingsDock = new QDockWidget("Findings", this);
  findingsDock->setObjectName("FindingsDock");
  findingsDock->setWidget(findings_);
  addDockWidget(Qt::RightDockWidgetArea, findingsDock);

  labels_ = new LabelPanel(this);
  labels_->setAutosaveDir(QString::fromStdString((dataDir / "autosave").string()));
  auto* labelDock = new QDockWidget("Labels", this);
  labelDock->setObjectName("LabelsDock");
  labelDock->setWidget(labels_);
  addDockWidget(Qt::RightDockWidgetArea, labelDock);
  connect(labels_, &LabelPanel::loadRequested, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, "Load label map", {},
                                                   "Label maps (*.nii *.nii.gz *.nrrd *.nhdr *.mha);;DICOM SEG or RT Structure Set (*.dcm);;All files (*)");
    if (!f.isEmpty()) openOverlay(f);
  });
  connect(labels_, &LabelPanel::clearRequested, this, [this] {
    labels_->setOverlay(nullptr);
    grid_->setOverlay(nullptr);
  });
  connect(labels_, &LabelPanel::appearanceChanged, grid_, &ViewportGrid::overlayAppearanceChanged);

  aiDock_ = new QDockWidget("AI models", this);
  aiDock_->setObjectName("AiDock");
  auto* aiStatus = new QLabel("Loading the AI engine...");
  aiStatus->setObjectName("AiStatus");
  aiStatus->setWordWrap(true);
  aiStatus->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  aiStatus->setMargin(8);
  aiStatus->setMinimumWidth(kAiPanelMinimumWidth);
  aiDock_->setWidget(aiStatus);
  addDockWidget(Qt::RightDockWidgetArea, aiDock_);

  log_ = new QPlainTextEdit;
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(2000);
  auto* logDock = new QDockWidget("Messages", this);
  logDock->setObjectName("MessagesDock");
  logDock->setWidget(log_);
  addDockWidget(Qt::RightDockWidgetArea, logDock);
  // Messages share a place with the Findings, so the label editor has room.
  tabifyDockWidget(findingsDock, logDock);
  findingsDock->raise();
}

void MainWindow::buildActions() {
  auto* file = menuBar()->addMenu("&File");
  auto* view = menuBar()->addMenu("&View");
  auto* edit = menuBar()->addMenu("&Edit");
  auto* measure = menuBar()->addMenu("&Measure");
  auto* tools = menuBar()->addMenu("&Tools");
  auto* help = menuBar()->addMenu("&Help");
  auto* bar = addToolBar("Reading");
  bar->setObjectName("ReadingToolbar");
  bar->setMovable(false);

  auto add = [this](QMenu* menu, const QString& text, const QKeySequence& key, auto fn) {
    auto* a = new QAction(text, this);
    if (!key.isEmpty()) a->setShortcut(key);
    connect(a, &QAction::triggered, this, fn);
    menu->addAction(a);
    addAction(a);  // shortcuts work wherever the focus is
    return a;
  };

  auto* openFolder = add(file, "Open folder...", QKeySequence("Ctrl+O"), [this] {
    const QString d = QFileDialog::getExistingDirectory(this, "Open DICOM folder");
    if (!d.isEmpty()) openPaths({d});
  });
  add(file, "Open files...", QKeySequence("Ctrl+Shift+O"), [this] {
    const QStringList f = QFileDialog::getOpenFileNames(this, "Open images", {},
                                                        "Images (*.dcm *.nii *.nii.gz *.nrrd *.nhdr *.mha DICOMDIR);;All files (*)");
    if (!f.isEmpty()) openPaths(f);
  });
  add(file, "Import into study database...", QKeySequence(), [this] {
    const QString d = QFileDialog::getExistingDirectory(this, "Import DICOM folder");
    if (d.isEmpty()) return;
    browser_->importPaths({d}, false);
  });
  add(file, "Query / Retrieve...", QKeySequence("Ctrl+R"), [this] { showPacsDialog(); });
  receiveAction_ = new QAction("Receive studies (listen as this workstation's node)", this);
  receiveAction_->setObjectName("ReceiveAction");
  receiveAction_->setCheckable(true);
  connect(receiveAction_, &QAction::triggered, this, [this](bool on) { setReceiving(on); });
  file->addAction(receiveAction_);
  add(file, "Load label map...", QKeySequence("Ctrl+L"), [this] { emit labels_->loadRequested(); });
  add(file, "Save screenshot...", QKeySequence("Ctrl+S"), [this] { saveScreenshot(); });
  add(file, "Report...", QKeySequence("Ctrl+Shift+P"), [this] { showReportDialog(); });
  add(file, "Export de-identified...", QKeySequence(), [this] { showDeidDialog(); });
  add(file, "Send to node...", QKeySequence(), [this] { showSendDialog(); });
  file->addSeparator();
  add(file, "Quit", QKeySequence::Quit, [this] { close(); });

  add(edit, "Undo", QKeySequence::Undo, [this] { undoLast(); });
  add(edit, "Redo", QKeySequence("Ctrl+Shift+Z"), [this] { redoLast(); });

  // The left button's tool: one at a time, in every view.
  const std::tuple<MeasureTool, const char*, const char*> measureTools[] = {
      {MeasureTool::None, "Window / level", "W"}, {MeasureTool::Distance, "Distance", "D"},
      {MeasureTool::Angle, "Angle", "N"},         {MeasureTool::Ellipse, "Ellipse ROI", "E"},
      {MeasureTool::Rectangle, "Rectangle ROI", "T"}, {MeasureTool::Polygon, "Polygon ROI", "P"},
      {MeasureTool::Point, "Point", "M"}};
  auto* toolGroup = new QActionGroup(this);
  auto* toolButton = new QToolButton;
  toolButton->setObjectName("MeasureToolButton");
  toolButton->setPopupMode(QToolButton::InstantPopup);
  toolButton->setMenu(measure);
  toolButton->setText("Tool: Window / level");
  for (const auto& [tool, name, key] : measureTools) {
    const MeasureTool t = tool;
    auto* a = add(measure, name, QKeySequence(key), [this, t] { setMeasureTool(t); });
    a->setCheckable(true);
    a->setChecked(t == MeasureTool::None);
    a->setData(static_cast<int>(t));
    toolGroup->addAction(a);
    toolActions_.push_back(a);
    connect(a, &QAction::toggled, toolButton, [toolButton, a](bool on) {
      if (on) toolButton->setText("Tool: " + a->text());
    });
    if (t == MeasureTool::None) measure->addSeparator();
  }
  bar->addAction(openFolder);
  bar->addSeparator();

  const std::pair<Layout, const char*> layouts[] = {
      {Layout::One, "1x1"}, {Layout::OneByTwo, "1x2"}, {Layout::TwoByTwo, "2x2"}, {Layout::Mpr, "MPR"}};
  int n = 1;
  for (const auto& [l, name] : layouts) {
    Layout layout = l;
    auto* a = add(view, QString("Layout ") + name, QKeySequence(QString("Ctrl+%1").arg(n++)), [this, layout] { setLayoutMode(layout); });
    a->setCheckable(true);
    a->setChecked(l == Layout::One);
    layoutActions_ << a;
    bar->addAction(a);
  }
  bar->addSeparator();

  windowPresets_ = new QComboBox;
  windowPresets_->addItem("Window...");
  int key = 1;
  for (const auto& p : ctWindowPresets()) {
    windowPresets_->addItem(QString("%1 (%2/%3)").arg(p.name).arg(p.wl.width).arg(p.wl.center));
    const WindowLevel wl = p.wl;
    add(view, QString("Window: ") + p.name, QKeySequence(QString::number(key++)), [this, wl] { grid_->applyWindow(wl); });
  }
  windowPresets_->addItem("Automatic");
  windowPresets_->setToolTip("Window / level presets (keys 1-8, A)");
  connect(windowPresets_, &QComboBox::activated, this, [this](int i) {
    if (i >= 1 && i <= static_cast<int>(ctWindowPresets().size())) grid_->applyWindow(ctWindowPresets()[static_cast<std::size_t>(i - 1)].wl);
    else if (i == windowPresets_->count() - 1) grid_->applyAutomaticWindow();
    windowPresets_->setCurrentIndex(0);
  });
  bar->addWidget(windowPresets_);
  add(view, "Automatic window", QKeySequence("A"), [this] { grid_->applyAutomaticWindow(); });
  auto* invert = add(view, "Invert", QKeySequence("I"), [this] { grid_->toggleInvert(); });
  auto* reset = add(view, "Reset view", QKeySequence("R"), [this] { grid_->resetViews(); });
  auto* fit = add(view, "Fit", QKeySequence("F"), [this] { grid_->fitViews(); });
  bar->addAction(invert);
  bar->addAction(reset);
  bar->addAction(fit);
  hidePatientAction_ = add(view, "Hide patient information", QKeySequence("H"), [this] {
    setHidePatient(hidePatientAction_->isChecked());
  });
  hidePatientAction_->setCheckable(true);
  bar->addAction(hidePatientAction_);
  bar->addSeparator();
  bar->addWidget(toolButton);
  bar->addSeparator();

  cineTimer_ = new QTimer(this);
  connect(cineTimer_, &QTimer::timeout, this, [this] {
    SliceView* v = grid_->activeSliceView();
    if (!v || !v->hasSeries()) return;
    if (v->sliceIndex() + 1 >= v->sliceCount()) v->setSliceIndex(0);
    else v->scrollBy(1);
  });
  cineAction_ = add(tools, "Cine", QKeySequence("C"), [this] { toggleCine(cineAction_->isChecked()); });
  cineAction_->setCheckable(true);
  cineFps_ = new QSpinBox;
  cineFps_->setObjectName("CineFps");
  cineFps_->setRange(1, 60);
  cineFps_->setValue(15);
  cineFps_->setSuffix(" fps");
  cineFps_->setToolTip("Cine speed");
  connect(cineFps_, &QSpinBox::valueChanged, this, [this](int fps) { cineTimer_->setInterval(1000 / fps); });
  bar->addAction(cineAction_);
  bar->addWidget(cineFps_);
  bar->addSeparator();

  slabMode_ = new QComboBox;
  slabMode_->addItems({"Slice", "MIP", "MinIP", "Mean"});
  slabMode_->setToolTip("Slab projection (MPR and 2D views)");
  slabMm_ = new QDoubleSpinBox;
  slabMm_->setRange(0.0, 200.0);
  slabMm_->setValue(10.0);
  slabMm_->setSuffix(" mm");
  slabMm_->setToolTip("Slab thickness");
  auto applySlab = [this] {
    const int i = slabMode_->currentIndex();
    const SlabMode m = i == 1 ? SlabMode::Max : i == 2 ? SlabMode::Min : i == 3 ? SlabMode::Mean : SlabMode::None;
    grid_->setSlab(m, slabMm_->value());
  };
  connect(slabMode_, &QComboBox::currentIndexChanged, this, applySlab);
  connect(slabMm_, &QDoubleSpinBox::valueChanged, this, applySlab);
  bar->addWidget(slabMode_);
  bar->addWidget(slabMm_);
  bar->addSeparator();

  preset3d_ = new QComboBox;
  for (auto p : {VolumePreset::CtBone, VolumePreset::CtSoftTissue, VolumePreset::CtAngio, VolumePreset::MrDefault, VolumePreset::Mip})
    preset3d_->addItem(toString(p));
  preset3d_->setToolTip("3D rendering preset");
  preset3d_->setObjectName("Preset3D");
  connect(preset3d_, &QComboBox::currentIndexChanged, this, [this](int i) { grid_->volumeView()->setPreset(static_cast<VolumePreset>(i)); });
  // Show the preset the 3D view really uses (an MR series picks "MR default" itself).
  connect(grid_->volumeView(), &VolumeView3D::presetChanged, this, [this](VolumePreset p) {
    const QSignalBlocker block(preset3d_);
    preset3d_->setCurrentIndex(static_cast<int>(p));
  });
  bar->addWidget(preset3d_);
  clipAction_ = add(tools, "3D clipping box", QKeySequence("B"), [this] { grid_->volumeView()->setClippingBox(clipAction_->isChecked()); });
  clipAction_->setCheckable(true);
  bar->addAction(clipAction_);

  add(help, "Keyboard shortcuts", QKeySequence("F1"), [this] { showShortcuts(); });
  add(help, "About Lumen", QKeySequence(), [this] {
    QMessageBox::about(this, "About Lumen",
                       QString("Lumen %1\nOpen-source medical image workstation.\n"
                               "Research software: not a medical device, not for diagnosis.")
                           .arg(QApplication::applicationVersion()));
  });
}

void MainWindow::setLayoutMode(Layout layout) {
  grid_->setLayoutMode(layout);
  for (int i = 0; i < layoutActions_.size(); ++i) layoutActions_[i]->setChecked(static_cast<int>(layout) == i);
}

bool MainWindow::applyPresetByName(const QString& name) {
  WindowLevel wl;
  if (findWindowPreset(name.toStdString(), wl)) {
    grid_->applyWindow(wl);
    return true;
  }
  VolumePreset p;
  if (findVolumePreset(name.toStdString(), p)) {
    grid_->volumeView()->setPreset(p);  // the toolbar's box follows (presetChanged)
    return true;
  }
  if (name.compare("auto", Qt::CaseInsensitive) == 0 || name.compare("automatic", Qt::CaseInsensitive) == 0) {
    grid_->applyAutomaticWindow();
    return true;
  }
  return false;
}

void MainWindow::setHidePatient(bool hide) {
  hidePatientAction_->setChecked(hide);
  grid_->setHidePatient(hide);
}

void MainWindow::openPaths(const QStringList& paths, int viewport) {
  if (paths.isEmpty()) return;
  // A structured report or an Encapsulated PDF (a series of reports) opens in a viewer of
  // its own, one per instance.
  if (ResultViewer::handles(paths[0])) {
    for (const auto& p : paths) {
      QString error;
      if (auto* v = ResultViewer::open(p, this, &error)) v->show();
      else addMessage("error: " + error);
    }
    return;
  }
  // A DICOM SEG (or RT structure set) opens as labels over the series it segments.
  pendingOverlay_.clear();
  if (paths.size() == 1 &&
      dicom::isLabelObjectFile(paths[0].toStdString())) {
    const std::string series = dicom::referencedSeriesOf(paths[0].toStdString());
    const QStringList files = series.empty() ? QStringList() : browser_->filesOfSeries(series);
    if (files.isEmpty()) {
      const QString msg = paths[0] +
                          ": the series this segmentation was made on is not in the study database; open that series, "
                          "then Load label map";
      addMessage("error: " + msg);
      emit loadFailed(msg);
      return;
    }
    openPaths(files, viewport);
    pendingOverlay_ = paths[0];
    return;
  }
  startLoad(paths, viewport, false);
}

void MainWindow::startLoad(const QStringList& paths, int viewport, bool keepView) {
  loadViewport_ = viewport;
  keepViewLoad_ = keepView;
  loadFileCount_ = static_cast<int>(paths.size());
  arrivingAtStart_.clear();
  for (const auto& [study, n] : retrieving_) arrivingAtStart_.insert(study);
  for (const auto& [study, t] : received_)
    if (t.elapsed() < kReceiveQuietMs) arrivingAtStart_.insert(study);
  partial_.reset();
  // A new load replaces the one in progress (the loader cancels it).
  if (loadJob_ >= 0) endTask(std::exchange(loadJob_, -1), "Loading replaced by another");
  const QString text = keepView && follow_
                           ? QString("Showing %1: %2 instance(s) received").arg(follow_->label).arg(paths.size())
                           : QString("Opening %1").arg(paths.size() == 1 ? QFileInfo(paths[0]).fileName()
                                                                          : QString("%1 files").arg(paths.size()));
  loadJob_ = beginJob(JobKind::Load, text, [this] { loader_->cancel(); });
  SeriesLoader::Request r;
  r.paths = paths;
  if (keepView && follow_) r.seriesUid = QString::fromStdString(follow_->seriesUid);
  loadId_ = loader_->start(r);
}

bool MainWindow::loading() const { return loadJob_ >= 0; }

void MainWindow::openOverlay(const QString& path, std::shared_ptr<LoadedSeries> onto) {
  // A DICOM SEG or RT structure set is placed on the grid of the series it is opened over.
  std::shared_ptr<LoadedSeries> series = onto ? onto : currentSeries();
  const bool seg = dicom::isLabelObjectFile(path.toStdString());
  if (seg && !series) {
    addMessage("error: " + path + ": open the series it segments first (it is placed on that series' grid)");
    return;
  }
  const int job = beginJob(JobKind::Overlay, "Loading label map " + QFileInfo(path).fileName(), {});
  (void)QtConcurrent::run([this, path, job, seg, series] {
    // A map of labels 0..255 with its descriptions beside it, or else any integer map.
    Result<LabelOverlay> overlay = Error(ErrorCode::Internal, "");
    QStringList notes;
    if (seg) {
      auto r = dicom::readLabelObject(path.toStdString(), series->volume->geometry(),
                                      series->info.series.frameOfReferenceUid);
      if (r) {
        overlay = makeLabelOverlay(r->labels, path.toStdString());
        if (overlay) applyLabelInfos(*overlay, r->infos);
        for (const auto& n : r->notes) notes << QString::fromStdString("note: " + n);
        if (!r->referencedSeriesUid.empty() && r->referencedSeriesUid != series->info.series.seriesInstanceUid)
          notes << "note: it was made on another series of the study; it is shown on this one's grid";
      } else {
        overlay = r.error();
      }
    } else if (auto map = io::readLabelMap(path.toStdString())) {
      overlay = makeLabelOverlay(map->labels, path.toStdString());
      if (overlay) applyLabelInfos(*overlay, map->infos);
    } else if (map.error().code == ErrorCode::Unsupported) {
      auto v = io::readImage(path.toStdString());
      overlay = v ? makeLabelOverlay(std::make_shared<Volume>(std::move(v.value())), path.toStdString())
                  : Result<LabelOverlay>(v.error());
    } else {
      overlay = map.error();
    }
    QMetaObject::invokeMethod(
        this,
        [this, overlay, job, notes] {
          for (const auto& n : notes) addMessage(n);
          if (!overlay) {
            addMessage("error: " + QString::fromStdString(overlay.error().toString()));
            endTask(job, "Could not load the label map");
            return;
          }
          auto o = std::make_shared<LabelOverlay>(*overlay);
          showOverlay(o);
          endTask(job, QString("Label map: %1 label(s)").arg(o->entries.size()));
          emit overlayLoaded();
        },
        Qt::QueuedConnection);
  });
}

void MainWindow::addMessage(const QString& text) {
  log_->appendPlainText(QDateTime::currentDateTime().toString("HH:mm:ss  ") + text);
}

QStringList MainWindow::messages() const { return log_->toPlainText().split('\n', Qt::SkipEmptyParts); }

void MainWindow::toggleCine(bool on) {
  cineAction_->setChecked(on);
  if (!on) return cineTimer_->stop();
  SliceView* v = grid_->activeSliceView();
  int fps = cineFps_->value();
  if (v && v->hasSeries() && v->series()->info.frameTimeMs > 0) {
    fps = std::clamp(static_cast<int>(std::lround(1000.0 / v->series()->info.frameTimeMs)), 1, 60);
    cineFps_->setValue(fps);
  }
  cineTimer_->start(1000 / fps);
}

void MainWindow::showShortcuts() {
  QDialog d(this);
  d.setWindowTitle("Keyboard shortcuts");
  auto* l = new QVBoxLayout(&d);
  auto* t = new QTableWidget(static_cast<int>(std::size(kShortcuts)), 2);
  t->setHorizontalHeaderLabels({"Keys", "Action"});
  t->verticalHeader()->hide();
  t->horizontalHeader()->setStretchLastSection(true);
  t->setEditTriggers(QAbstractItemView::NoEditTriggers);
  for (int i = 0; i < static_cast<int>(std::size(kShortcuts)); ++i) {
    t->setItem(i, 0, new QTableWidgetItem(kShortcuts[i].keys));
    t->setItem(i, 1, new QTableWidgetItem(kShortcuts[i].what));
  }
  t->resizeColumnsToContents();
  l->addWidget(t);
  d.resize(640, 560);
  d.exec();
}

void MainWindow::setMeasureTool(MeasureTool tool) {
  if (tool != MeasureTool::None && labels_->tool() != PaintTool::None) labels_->setTool(PaintTool::None);
  for (int i = 0; i < 4; ++i) grid_->sliceView(i)->setMeasureTool(tool);
  for (QAction* a : toolActions_)
    if (a->data().toInt() == static_cast<int>(tool)) a->setChecked(true);
}

bool MainWindow::undoMeasurement() {
  auto s = shownSeries();
  return s && measurements_->undo(*s);
}

bool MainWindow::redoMeasurement() {
  auto s = shownSeries();
  return s && measurements_->redo(*s);
}

void MainWindow::syncFindings() {
  SliceView* v = grid_->activeSliceView();
  auto s = v && v->hasSeries() ? v->series() : nullptr;
  if (s != findings_->series()) findings_->setSeries(s);
  labels_->setSeries(s);
  if (v && v->hasSeries()) labels_->setWorkingNormal(v->navigator().axes().normal);
  currentSeriesMayHaveChanged();
}

bool MainWindow::undoRecord(const EditRecord& r, bool undo) {
  if (r.kind == EditKind::Labels) return undo ? labels_->undo() : labels_->redo();
  // By key: the series need not be shown any more.
  return undo ? measurements_->undo(r.key) : measurements_->redo(r.key);
}

bool MainWindow::stepHistory(std::vector<EditRecord>& from, std::vector<EditRecord>& to, bool undo) {
  // Records whose target is gone (nothing left to undo there) are dropped on the way.
  while (!from.empty()) {
    const EditRecord r = from.back();
    from.pop_back();
    if (undoRecord(r, undo)) {
      to.push_back(r);
      return true;
    }
  }
  return false;
}

bool MainWindow::undoLast() { return stepHistory(undoOrder_, redoOrder_, true); }

bool MainWindow::redoLast() { return stepHistory(redoOrder_, undoOrder_, false); }

void MainWindow::showMeasurement(int id) {
  auto s = findings_->series();
  if (!s) return;
  const Measurement* m = measurements_->listFor(*s)->find(id);
  if (!m) return;
  const Measurement shown = *m;
  const Vec3 c = centroid(shown);
  if (grid_->layoutMode() == Layout::Mpr) {
    grid_->moveCrosshair(c);
  } else if (SliceView* v = grid_->activeSliceView(); v && v->series() == s) {
    v->showPlaneOf(shown);
  }
  for (int i = 0; i < 4; ++i)
    if (grid_->sliceView(i)->series() == s) grid_->sliceView(i)->selectMeasurement(id);
}

void MainWindow::saveScreenshot() {
  const QString f = QFileDialog::getSaveFileName(this, "Save screenshot", "lumen.png", "PNG images (*.png)");
  if (f.isEmpty()) return;
  if (grid_->grab().save(f)) statusText_->setText("Saved " + f);
  else addMessage("error: cannot write " + f);
}

void MainWindow::restoreSettings() {
  QSettings s;
  if (!restoreGeometry(s.value("window/geometry").toByteArray())) resize(1440, 900);
  restoreState(s.value("window/state").toByteArray());
  Layout l;
  if (parseLayout(s.value("view/layout", "1x1").toString(), l)) setLayoutMode(l);
  setHidePatient(s.value("view/hidePatient", false).toBool());
  cineFps_->setValue(s.value("view/cineFps", 15).toInt());
  if (s.value("network/receive", false).toBool()) setReceiving(true);
}

void MainWindow::saveSettings() {
  QSettings s;
  s.setValue("window/geometry", saveGeometry());
  s.setValue("window/state", saveState());
  s.setValue("view/layout", toString(grid_->layoutMode()));
  s.setValue("view/hidePatient", hidePatientAction_->isChecked());
  s.setValue("view/cineFps", cineFps_->value());
  s.setValue("network/receive", wantReceiving_);
}

void MainWindow::closeEvent(QCloseEvent* e) {
  if (labels_->hasUnsavedChanges() && options_.askBeforeDiscarding) {
    const auto answer = QMessageBox::question(this, "Unsaved labels", "The label map has edits that are not saved. Save them?",
                                              QMessageBox::Save | QMessageBox::Discard | QMessageBox::Cancel);
    if (answer == QMessageBox::Cancel) return e->ignore();
    if (answer == QMessageBox::Discard) labels_->discardEdits();
    if (answer == QMessageBox::Save) {
      const QString f = QFileDialog::getSaveFileName(this, "Save label map", "labels.nii.gz", "Label maps (*.nii.gz *.nii *.nrrd)");
      QString error;
      if (f.isEmpty()) return e->ignore();
      if (!labels_->saveTo(f, &error)) {
        QMessageBox::warning(this, "Not saved", error);
        return e->ignore();
      }
    }
  }
  if (options_.rememberSettings) saveSettings();
  cancelAllJobs();
  measurements_->flush();  // every measurement change is in the database before the window goes
  QMainWindow::closeEvent(e);
}

}  // namespace lumen::gui
