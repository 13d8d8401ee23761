#pragma once
// The "AI models" panel: the model bundles Lumen finds, run on the series in the active
// viewport off the GUI thread (progress and cancel in the status bar), results shown the
// way each task needs: label maps as overlays (with volumes), enhanced images as a derived
// series to compare with the original, class probabilities with a saliency map, and the
// classifier's suggestion of a follow-up model (the dose grader suggests the denoiser).
// Lives in the liblumen_gui_ai plug-in so that LibTorch is loaded after the window is up.

#include <QWidget>

#include <map>
#include <memory>
#include <mutex>

#include "AiHost.h"
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

  /// Rescans the model folders.
  Q_INVOKABLE void refresh();
  /// Runs the model named `name` (the bundle's name) on the current series; false when it
  /// is unknown or another run is going on.
  Q_INVOKABLE bool runModel(const QString& name);
  Q_INVOKABLE bool busy() const { return busy_; }

 Q_SIGNALS:
  /// A run ended: ok, or cancelled / failed with `message`.
  void runFinished(bool ok, const QString& message);

 private:
  void runSelected();
  void showDetails();
  void finish(const models::Bundle& bundle, std::shared_ptr<LoadedSeries> input, Result<models::InferenceResult> r);
  void clearResult();

  AiHost* host_;
  std::vector<models::Bundle> bundles_;
  QListWidget* list_ = nullptr;
  QComboBox* device_ = nullptr;
  QPushButton* run_ = nullptr;
  QLabel* details_ = nullptr;
  QWidget* result_ = nullptr;
  QVBoxLayout* resultLayout_ = nullptr;
  bool busy_ = false;
  CancelToken cancel_;
  // Loaded engines, by bundle folder and device: loading TorchScript is the slow part.
  struct Engines {
    std::mutex mutex;
    std::map<std::string, models::Engine> byKey;
  };
  std::shared_ptr<Engines> engines_ = std::make_shared<Engines>();
};

}  // namespace lumen::gui
