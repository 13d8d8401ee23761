#pragma once
// What the AI panel (a plug-in, app/gui/ai/, loaded after start-up so that LibTorch costs
// nothing until the window is up) may ask of the main window. Plain interface: the plug-in
// links no code of the GUI library, only these declarations and the value types of
// ViewModel.h.

#include <QString>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ViewModel.h"
#include "lumen/core/Progress.h"
#include "lumen/core/Result.h"

class QObject;
class QWidget;

namespace lumen::gui {

struct AiLabel {
  int value = 0;
  std::string name;
  std::optional<Rgb8> color;  // else Lumen's palette
};

/// A classification the AI panel made, for the reports of the series it ran on.
struct AiClassification {
  std::string model, version, sha256, device, predicted, disclaimer;
  std::vector<std::pair<std::string, double>> probabilities;  // class -> probability
  std::string detail;  // models::classificationDetail: the estimate, or why there is no class (predicted empty)
};

class AiHost {
 public:
  virtual ~AiHost() = default;
  /// The series in the active viewport, once it is completely loaded (null otherwise: a
  /// model never runs on a half-decoded volume).
  virtual std::shared_ptr<LoadedSeries> currentSeries() const = 0;
  /// Shows a label map over the image (and in the label panel).
  virtual void showLabelMap(std::shared_ptr<Volume> labels, const std::vector<AiLabel>& names, const QString& source,
                            const LabelProvenance& model) = 0;
  /// Shows a 0..1 map (an explanation, e.g. a saliency map) as a heat overlay.
  virtual void showHeatMap(std::shared_ptr<Volume> map, const QString& source, const QString& quantity) = 0;
  virtual void clearOverlay() = 0;
  /// A classifier ran on `input`: its answer goes into that series' reports.
  virtual void classified(const LoadedSeries& input, const AiClassification& result) = 0;
  /// Makes a series derived from `from` (same patient and study, new voxels) and shows it in
  /// the active viewport; returns it so the caller can switch back and forth.
  virtual std::shared_ptr<LoadedSeries> showDerivedSeries(const LoadedSeries& from, std::shared_ptr<Volume> voxels,
                                                          const QString& description) = 0;
  virtual void showSeries(std::shared_ptr<LoadedSeries> series) = 0;
  /// Stores `voxels` (on `from`'s grid, in its units) as a derived DICOM series of `from`'s
  /// study in the study database, in the background; `from` must be a DICOM series.
  virtual void storeDerivedSeries(std::shared_ptr<const LoadedSeries> from, std::shared_ptr<const Volume> voxels,
                                  const QString& description, const QString& derivation) = 0;
  /// Long work, tracked on its own next to the window's other jobs (loading, import):
  /// status text, progress and cancel in the status bar. Returns the job's id.
  virtual int beginTask(const QString& text, std::function<void()> cancel) = 0;
  virtual void taskProgress(int job, double fraction, const QString& text) = 0;
  virtual void endTask(int job, const QString& text) = 0;
  virtual void addMessage(const QString& text) = 0;
  /// Classical processing the panel offers next to the models; ITK lives in the window's
  /// libraries, not in the plug-in. Plain functions (lumen::imaging::estimateNoiseSd and
  /// bilateralDenoise), so that the panel's workers may call them without the window.
  struct ClassicalTools {
    Result<double> (*estimateNoise)(const Volume& ct) = nullptr;
    Result<Volume> (*bilateralDenoise)(const Volume& ct, double domainMm, double rangeHu, const Progress& progress,
                                       const CancelToken& cancel) = nullptr;
  };
  virtual ClassicalTools classicalTools() const = 0;
  /// Calls `changed` on the GUI thread whenever what currentSeries() returns may have changed
  /// (another series or view active, a load finished), for as long as `owner` lives; one
  /// watcher, a later call replaces it.
  virtual void watchCurrentSeries(QObject* owner, std::function<void()> changed) = 0;
};

/// The plug-in's entry point: creates the AI panel.
using CreateAiPanelFn = QWidget* (*)(AiHost* host, QWidget* parent);
inline constexpr const char* kCreateAiPanelSymbol = "lumen_gui_ai_create_panel";
/// The AI panel's minimum width, and that of the placeholder shown while it loads: the same,
/// so that its arrival does not resize (and re-render) every view.
inline constexpr int kAiPanelMinimumWidth = 260;

}  // namespace lumen::gui
