#pragma once
// The workstation window: study browser (left), viewports (centre), labels and messages
// (right, bottom), reading tools in the toolbar, long work in the status bar with
// progress and cancel. Settings and window layout are remembered between runs.

#include <QElapsedTimer>
#include <QMainWindow>
#include <QPointer>
#include <QStringList>

#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "AiHost.h"
#include "lumen/imaging/Compress.h"
#include "ViewModel.h"
#include "ViewportGrid.h"

class QAction;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QSpinBox;
class QTimer;
class QToolButton;
class QDockWidget;

namespace lumen::web {
struct RemoteNode;
}

namespace lumen::gui {

class FindingsPanel;
class LabelPanel;
class MeasurementStore;
class PacsDialog;

class SeriesLoader;
class StudyBrowser;

class MainWindow : public QMainWindow, public AiHost {
  Q_OBJECT
 public:
  struct Options {
    QString dataDir;             // empty: the default data directory
    bool rememberSettings = true;  // read and write QSettings
    /// The AI plug-in (liblumen_gui_ai.so); empty: LUMEN_GUI_AI_PLUGIN, next to the
    /// executable, then the build tree.
    QString aiPlugin;
    /// Load the AI plug-in at all (false: batch runs that do not use it).
    bool loadAi = true;
    /// Closing with unsaved label edits asks what to do (tests turn it off).
    bool askBeforeDiscarding = true;
  };
  explicit MainWindow(const Options& options, QWidget* parent = nullptr);
  ~MainWindow() override;

  /// Loads files / a folder / a DICOMDIR in the background into `viewport` (-1: active).
  void openPaths(const QStringList& paths, int viewport = -1);
  /// Loads a label map (NIfTI / NRRD) in the background and shows it over the image.
  /// Shows a label map over the active view's series (a SEG or RT structure set is placed
  /// on `onto`'s grid when given, else on the active view's series).
  void openOverlay(const QString& path, std::shared_ptr<LoadedSeries> onto = nullptr);

  void setLayoutMode(Layout layout);
  /// W/L preset ("brain", "lung", ...) or 3D preset ("ct-bone", "mip", ...); false if unknown.
  bool applyPresetByName(const QString& name);
  void setHidePatient(bool hide);

  ViewportGrid* grid() const { return grid_; }
  StudyBrowser* browser() const { return browser_; }
  LabelPanel* labelPanel() const { return labels_; }
  FindingsPanel* findingsPanel() const { return findings_; }
  MeasurementStore* measurements() const { return measurements_; }
  /// The left button's tool in every view (Measure menu).
  void setMeasureTool(MeasureTool tool);
  /// Undo / redo of the measurements of the active view's series.
  bool undoMeasurement();
  bool redoMeasurement();
  /// Edit > Undo / Redo: the latest change, measurement or label edit, whichever came last.
  bool undoLast();
  bool redoLast();
  /// A series is being loaded (whatever else runs).
  bool loading() const;
  /// Jobs running now (loading, import, label map, AI), each tracked on its own.
  int runningJobs() const { return static_cast<int>(jobs_.size()); }
  /// Cancels every running job (the status bar's "Cancel all").
  void cancelAllJobs();
  /// Messages shown to the reader (warnings, skipped files, errors), newest last.
  QStringList messages() const;
  /// The AI panel once its plug-in is loaded (see aiReady), else null.
  QWidget* aiPanel() const { return aiPanel_; }
  /// File > Query / Retrieve: shown (made on first use) and returned.
  PacsDialog* showPacsDialog();
  /// Fetches a study from a node into the study database as a job of its own (C-GET for
  /// DIMSE nodes, WADO-RS for DICOMweb ones); the browser lists it as its instances arrive.
  void retrieveStudy(const web::RemoteNode& node, const QString& studyUid, const QString& label);
  /// File > Receive studies: the storage listener on (the local node of nodes.json) or off;
  /// false with the reason when it cannot listen. Received studies appear in the browser
  /// as they arrive.
  bool setReceiving(bool on, QString* error = nullptr);
  class Receiver* receiver() const { return receiver_; }
  /// File > Send to node: the series selected in the browser (an image series or a result:
  /// SEG, SR, report), the series on screen or its whole study. Null when there is nothing
  /// to send.
  class SendDialog* showSendDialog();
  /// Writes the edited label map (NIfTI / NRRD, or a DICOM SEG of the series for .dcm) as a
  /// job of its own: the voxels are copied first, painting goes on meanwhile.
  void saveLabelMap(const QString& path);
  /// Sends files to a node as a job of its own (C-STORE or STOW-RS), re-encoded losslessly
  /// first when `compress` is set.
  void sendFiles(const web::RemoteNode& node, const QStringList& files, std::optional<dicom::LosslessSyntax> compress,
                 const QString& label);

  // AiHost
  std::shared_ptr<LoadedSeries> currentSeries() const override;
  void watchCurrentSeries(QObject* owner, std::function<void()> changed) override;
  void showLabelMap(std::shared_ptr<Volume> labels, const std::vector<AiLabel>& names, const QString& source,
                    const LabelProvenance& model) override;
  void showHeatMap(std::shared_ptr<Volume> map, const QString& source, const QString& quantity) override;
  void clearOverlay() override;
  void classified(const LoadedSeries& input, const AiClassification& result) override;
  std::shared_ptr<LoadedSeries> showDerivedSeries(const LoadedSeries& from, std::shared_ptr<Volume> voxels,
                                                  const QString& description) override;
  void showSeries(std::shared_ptr<LoadedSeries> series) override;
  void storeDerivedSeries(std::shared_ptr<const LoadedSeries> from, std::shared_ptr<const Volume> voxels,
                          const QString& description, const QString& derivation) override;
  int beginTask(const QString& text, std::function<void()> cancel) override;
  void taskProgress(int job, double fraction, const QString& text) override;
  void endTask(int job, const QString& text) override;
  void addMessage(const QString& text) override;
  ClassicalTools classicalTools() const override;

 signals:
  void firstImageShown();
  void seriesLoaded(std::shared_ptr<lumen::gui::LoadedSeries> series);
  void loadFailed(const QString& message);
  void overlayLoaded();
  /// The AI plug-in was loaded (ok) or could not be (the reason is in Messages).
  void aiReady(bool ok);
  /// A retrieve ended: stored is what is now in the database from it; summary is one line.
  void retrieveFinished(bool ok, int stored, const QString& summary);
  /// A label map save ended (saveLabelMap).
  void labelMapSaved(bool ok, const QString& path);
  /// A derived series was stored (or not: summary says why).
  void derivedSeriesStored(bool ok, const QString& summary);
  /// A send ended: sent is what the node took; summary is one line.
  void sendFinished(bool ok, int sent, const QString& summary);

 protected:
  void closeEvent(QCloseEvent* e) override;

 private:
  void buildActions();
  void buildDocks();
  void applyDarkTheme();
  void restoreSettings();
  void saveSettings();
  enum class JobKind { Load, Import, Overlay, Ai, Retrieve, Send, Save, Store };
  int beginJob(JobKind kind, const QString& text, std::function<void()> cancel);
  void updateStatusBar();
  std::shared_ptr<LoadedSeries> shownSeries() const;
  void loadAiPlugin();
  void showOverlay(std::shared_ptr<LabelOverlay> overlay);
  void toggleCine(bool on);
  void showShortcuts();
  void saveScreenshot();
 public:
  /// Opens the report dialog on the series in the active view (null when there is none).
  class ReportDialog* showReportDialog();
  /// Opens the de-identified export of the study on screen (its series when the study is
  /// not in the database); null when nothing DICOM is shown.
  class DeidDialog* showDeidDialog();
 private:
  void syncFindings();  // the findings and label panels follow the active view; tells the AI panel
  void currentSeriesMayHaveChanged();
  void showMeasurement(int id);

  Options options_;
  ViewportGrid* grid_ = nullptr;
  StudyBrowser* browser_ = nullptr;
  LabelPanel* labels_ = nullptr;
  MeasurementStore* measurements_ = nullptr;
  FindingsPanel* findings_ = nullptr;
  QList<QAction*> toolActions_;
  enum class EditKind { Measurement, Labels };
  struct EditRecord {
    EditKind kind;
    QString key;  // the measurements' series
  };
  std::vector<EditRecord> undoOrder_, redoOrder_;
  bool undoRecord(const EditRecord& r, bool undo);
  bool stepHistory(std::vector<EditRecord>& from, std::vector<EditRecord>& to, bool undo);
  SeriesLoader* loader_ = nullptr;
  QPlainTextEdit* log_ = nullptr;
  QLabel* statusText_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QToolButton* cancel_ = nullptr;
  QComboBox* windowPresets_ = nullptr;
  QComboBox* slabMode_ = nullptr;
  QDoubleSpinBox* slabMm_ = nullptr;
  QComboBox* preset3d_ = nullptr;
  QSpinBox* cineFps_ = nullptr;
  QTimer* cineTimer_ = nullptr;
  QAction* hidePatientAction_ = nullptr;
  QAction* cineAction_ = nullptr;
  QAction* clipAction_ = nullptr;
  QList<QAction*> layoutActions_;
  int loadId_ = 0;
  int loadViewport_ = -1;
  QString pendingOverlay_;
  /// Classifications made this session, by series UID: the latest of each model.
  std::map<std::string, std::vector<AiClassification>> classifications_;  // a SEG opened from the browser: shown once its series is loaded
  std::shared_ptr<LoadedSeries> partial_;
  bool firstImageReported_ = false;
  struct Job {
    JobKind kind;
    QString text;
    double fraction = NAN;
    std::function<void()> cancel;
  };
  std::map<int, Job> jobs_;  // by id, oldest first
  int nextJob_ = 0;
  int loadJob_ = -1;    // the series load in progress, or -1
  int importJob_ = -1;  // the study browser's import in progress, or -1
  PacsDialog* pacs_ = nullptr;
  class Receiver* receiver_ = nullptr;
  QAction* receiveAction_ = nullptr;
  bool wantReceiving_ = false;
  QLabel* receiveLabel_ = nullptr;
  /// Coalesces the browser's refreshes while studies arrive (at most a few per second).
  QTimer* liveRefresh_ = nullptr;
  void scheduleLiveRefresh();
  /// Retrieve jobs running now, by study UID.
  std::map<std::string, int> retrieving_;
  /// When the listener last filed an instance of a study, by study UID.
  std::map<std::string, QElapsedTimer> received_;
  /// A study is arriving while a retrieve fetches it, or until the listener has filed
  /// nothing of it for this long (a sender's end is not announced).
  static constexpr int kReceiveQuietMs = 3000;
  bool arriving(const std::string& studyUid) const;
  bool arriving(const LoadedSeries& s) const { return arriving(s.info.study.studyInstanceUid); }
  /// A series opened while its study was being retrieved: it is shown as it is (not
  /// complete: nothing computes on it) and loaded again, keeping the reader's view, as
  /// more of its instances arrive, until the retrieve ends.
  struct Follow {
    std::string seriesUid, studyUid;
    QString label;
    int viewport = -1;
    int shown = 0;  // instances in the load on screen
    QElapsedTimer since;  // the end of the last load
    bool recheck = false;  // a look later is scheduled
    bool retrieveFailed = false;
    std::weak_ptr<LoadedSeries> last;  // what the last load made
    QStringList notes;                 // its notes, shown once the series is complete
  };
  /// Studies arriving when the load in progress began.
  std::set<std::string> arrivingAtStart_;
  /// The followed series is complete with `instances`: says so (and shows the notes of its
  /// last load when `notes`), stops following.
  void finishFollow(int instances, bool notes = false);
  /// The series objects slice views show for this series UID (results derived from it
  /// left out), each once.
  std::vector<std::shared_ptr<LoadedSeries>> shownAs(const std::string& seriesUid) const;
  std::optional<Follow> follow_;
  void followArrivals();
  void instanceReceived(const std::string& studyUid);
  /// Starts the loader; `keepView`: a reload of the series on screen (see Follow).
  void startLoad(const QStringList& paths, int viewport, bool keepView);
  bool keepViewLoad_ = false;
  int loadFileCount_ = 0;
  QDockWidget* aiDock_ = nullptr;
  QWidget* aiPanel_ = nullptr;
  QPointer<QObject> seriesWatcherOwner_;  // the AI panel: called while it lives
  std::function<void()> seriesWatcher_;
  bool aiLoadStarted_ = false;
  int aiWaitTicks_ = 0;  // idle ticks spent waiting for the 3D view's full frame
};

}  // namespace lumen::gui
