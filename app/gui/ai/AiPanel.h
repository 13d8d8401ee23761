#pragma once
// The "AI models" panel: the model bundles Lumen finds, run on the series in the active
// viewport off the GUI thread (progress and cancel in the status bar), results shown the
// way each task needs: label maps as overlays (with volumes), enhanced images as a derived
// series to compare with the original, class probabilities with a saliency map, and the
// classifier's suggestion of a follow-up model (the dose grader suggests the denoiser).
// Lives in the liblumen_gui_ai plug-in so that LibTorch is loaded after the window is up.

#include <QPointer>
#include <QWidget>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "AiHost.h"
#include "DenoiseAdvice.h"
#include "lumen/core/Progress.h"
#include "lumen/models/Bundle.h"
#include "lumen/models/Inference.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QListWidget;
class QPushButton;
class QVBoxLayout;

namespace lumen::gui {

class AiPanel : public QWidget {
  Q_OBJECT
 public:
  AiPanel(AiHost* host, QWidget* parent = nullptr);
  ~AiPanel() override;

  /// Rescans the model folders, off the GUI thread (hashing large models takes a while).
  Q_INVOKABLE void refresh();
  /// True while the model folders are being scanned.
  Q_INVOKABLE bool discovering() const { return discovering_; }
  /// Runs the model named `name` (the bundle's name) on the current series; false when it
  /// is unknown or another run is going on.
  Q_INVOKABLE bool runModel(const QString& name);
  /// A run is going on, or waits for the model list.
  Q_INVOKABLE bool busy() const { return busy_ || !pendingRun_.isEmpty(); }
  /// false (scripts, --run-model): a model not yet trusted is refused with a message
  /// instead of asking.
  Q_INVOKABLE void setAskToTrust(bool ask) { askToTrust_ = ask; }
  /// Whether the last run (or the last attempt to start one) ended well.
  Q_INVOKABLE bool lastRunOk() const { return lastRunOk_; }
  /// For an enhancement model whose card compares it with the bilateral filter: runs that
  /// filter on the current series instead, with the card's setting for the series' noise
  /// (measured first). False when no such model is selected or a run is going on.
  Q_INVOKABLE bool runClassical();

 Q_SIGNALS:
  /// A run ended: ok, or cancelled / failed with `message`.
  void runFinished(bool ok, const QString& message);
  /// The model list was (re)filled.
  void modelsListed();
  /// The denoising advice for the current series was (re)made.
  void adviceShown();

 private:
  // Workers (off the GUI thread) hand their results back through these: `fn` runs on the
  // GUI thread, and only if the panel still exists.
  static void post(const QPointer<AiPanel>& self, std::function<void(AiPanel&)> fn);
  // A worker's progress, shown on the panel's current job.
  static Progress jobProgress(const QPointer<AiPanel>& self);
  void runSelected();
  void showDetails();
  void showModels(std::vector<models::BundleEntry> entries);
  /// A bundle is code: a model that is neither shipped nor trusted runs only after the user
  /// says yes to its SHA-256 (remembered in the trusted list). False: do not run.
  bool confirmTrust(const models::Bundle& bundle);
  void finishClassical(std::shared_ptr<LoadedSeries> input, Result<Volume> voxels, const DenoiseAdvice& advice,
                       double estimatedSd);
  void finish(const models::Bundle& bundle, std::shared_ptr<LoadedSeries> input, Result<models::InferenceResult> r);
  void clearResult();
  /// The selected bundle's card comparison with the classical filter, and the advice for
  /// the current series (its noise measured off the GUI thread).
  void updateAdvice();
  void seriesChanged();
  void showAdvice(const DenoiseAdvice& advice, const QString& series);
  /// An enhanced version of `input` (in its pixel type): shown in its place, with "Show the
  /// original" and "Store as a DICOM series".
  void showEnhanced(const std::shared_ptr<LoadedSeries>& input, Volume voxels, const QString& name,
                    const QString& derivation);
  /// The common start of a background run: false (with a message) when there is no
  /// complete greyscale series.
  std::shared_ptr<LoadedSeries> seriesToRun(const QString& what);

  AiHost* host_;
  std::vector<models::Bundle> bundles_;
  QListWidget* list_ = nullptr;
  QComboBox* device_ = nullptr;
  QPushButton* run_ = nullptr;
  QLabel* advice_ = nullptr;
  QPushButton* classical_ = nullptr;
  std::optional<DenoiseCard> card_;
  int adviceSeq_ = 0;  // only the newest noise estimate is shown
  std::weak_ptr<LoadedSeries> advisedSeries_;  // the advice is made again when another is shown
  QLabel* details_ = nullptr;
  QWidget* result_ = nullptr;
  QVBoxLayout* resultLayout_ = nullptr;
  bool busy_ = false;
  bool discovering_ = false;
  bool askToTrust_ = true;
  bool lastRunOk_ = false;
  QString pendingRun_;  // asked for while the model list was still being made
  int job_ = -1;  // the window's job id of the run in progress
  CancelToken cancel_;
  // Loaded engines, by bundle folder and device: loading TorchScript is the slow part.
  struct Engines {
    std::mutex mutex;
    std::map<std::string, models::Engine> byKey;
  };
  std::shared_ptr<Engines> engines_ = std::make_shared<Engines>();
};

}  // namespace lumen::gui
