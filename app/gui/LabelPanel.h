#pragma once
// The label map over the image and its editor: the labels with colour, name, visibility,
// SNOMED code and live statistics (mL, mean / SD, surface); one opacity for all; the
// tools (brush, eraser, region growing from a click, threshold, fill holes, islands,
// interpolation between slices, smoothing) with undo; new, load, save, clear.
//
// A label map is edited on the series grid as uint8 labels (LabelEditor). One loaded on
// another grid is shown but not edited (the reader is told so).

#include <QWidget>

#include <functional>
#include <memory>
#include <optional>

#include "SliceView.h"
#include "ViewModel.h"
#include "lumen/core/LabelEditor.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QPushButton;
class QRadioButton;
class QSlider;
class QTableWidget;
class QThreadPool;
class QTimer;

namespace lumen::gui {

class LabelPanel : public QWidget {
  Q_OBJECT
 public:
  explicit LabelPanel(QWidget* parent = nullptr);
  ~LabelPanel() override;

  void setOverlay(std::shared_ptr<LabelOverlay> overlay);
  const std::shared_ptr<LabelOverlay>& overlay() const { return overlay_; }
  /// The series being segmented (the active view's).
  void setSeries(std::shared_ptr<LoadedSeries> series);

  // ---- editing (also what the tests drive) ----------------------------------------
  /// A new empty label map on the series grid with one label; false (and a message) when
  /// there is no completely loaded series.
  bool newLabelMap();
  /// The label new voxels get (adds it to the list when new).
  void setActiveLabel(int value);
  int activeLabel() const { return active_; }
  /// The active label's own opacity (0..1, times the overlay's).
  void setLabelOpacity(double opacity);
  /// The active label's category and type codes, from the built-in list or typed (Code...):
  /// false, with a message, when a code lacks its scheme or meaning.
  bool setLabelCode(const CodedConcept& category, const CodedConcept& type);
  /// Adds a label with the next free value; returns it (0 when 255 are used).
  int addLabel();
  PaintTool tool() const { return tool_; }
  void setTool(PaintTool tool);
  double brushDiameterMm() const;
  void setBrushDiameterMm(double mm);
  void setBrushSphere(bool sphere);
  void setIntensityLimit(bool on, double lo, double hi);
  void setOverwrite(bool on);
  /// One event of a stroke from a view.
  void paint(const PaintEvent& e);
  /// Tools applied to the active label, each one undo step; false with a message when it
  /// cannot run. `sliceAxis` / interpolation axis: the index axis across the active view.
  bool threshold();
  bool fillHoles(bool perSlice);
  bool keepLargestIsland();
  bool removeSmallIslands(double minMl);
  bool interpolate();
  bool smooth(double radiusMm);
  /// Clears the active label outside a box given by its six planes (point, normal, LPS;
  /// the 3D view's clipping box). The grid keeps its size.
  bool cropToBox(const std::vector<std::pair<Vec3, Vec3>>& planes);
  /// Label `from`'s voxels join the active label (labels are exclusive: this is their union).
  bool mergeIntoActive(int from);
  /// The active label combined with the labelled voxels (any non-zero value) of another
  /// map on the same grid, read from `path`: union (over background), intersect, subtract.
  bool combineWithFile(const QString& path, LabelEditor::LogicalOp op);
  /// Removes the active label: its voxels become background, its row goes.
  bool deleteActiveLabel();
  bool undo();
  bool redo();
  /// The index axis across the view where the reader works (interpolation, 2D fill).
  void setWorkingNormal(const Vec3& lpsNormal);

  /// Where edits are autosaved (a folder beside the study database); empty: nowhere.
  void setAutosaveDir(const QString& dir);
  /// Writes unsaved edits to the autosave file now and waits (before they could be lost).
  void autosaveNow();
  /// The autosave file of a series (it may not exist).
  QString autosavePath(const LoadedSeries& s) const;
  /// Opens the series' autosaved labels (unsaved edits of an earlier session).
  bool restoreAutosave();
  /// Forgets the edits: the autosave of the series being edited is removed.
  void discardEdits();

  bool editing() const { return editor_ != nullptr; }
  /// The series the edited map lies on (null when not editing).
  const std::shared_ptr<LoadedSeries>& editSeries() const { return editSeries_; }
  LabelEditor* editor() const { return editor_.get(); }
  /// Edits not yet saved to a file (the window asks before they are lost).
  bool hasUnsavedChanges() const;
  /// Saves now, on the calling thread (NIfTI / NRRD with names and colours, or a DICOM SEG
  /// of the series for .dcm); false with the reason.
  bool saveTo(const QString& path, QString* error);
  /// A save split for a background job: everything it needs is copied by prepareSave (the
  /// voxels too), `write` runs on any thread while painting goes on, finishSave records the
  /// outcome on the GUI thread (edits made meanwhile stay unsaved).
  struct PendingSave {
    QString path;
    std::function<Result<std::vector<std::string>>()> write;  // the notes for the reader
    std::uint64_t state = 0;
    std::shared_ptr<LabelOverlay> overlay;
    bool seg = false;
  };
  std::optional<PendingSave> prepareSave(const QString& path, QString* error);
  bool finishSave(const PendingSave& save, const Result<std::vector<std::string>>& outcome, QString* error);
  /// Latest statistics (recomputed in the background after edits).
  const std::vector<LabelMeasures>& measures() const { return measures_; }
  /// Waits for the statistics of the current voxels (tests).
  bool waitForMeasures(int timeoutMs);

 signals:
  void loadRequested();
  void clearRequested();
  /// Visibility, colour or opacity changed.
  void appearanceChanged();
  /// The overlay object changed (a new map, or made editable): show it.
  void overlayReplaced(std::shared_ptr<lumen::gui::LabelOverlay> overlay);
  /// Label voxels changed (draw again).
  void voxelsEdited();
  /// An undoable edit was made (the window orders undo across measurements and labels).
  void edited();
  void toolChanged(lumen::gui::PaintTool tool, double diameterMm);
  void message(const QString& text);
  /// A DICOM SEG of the study was saved here: it belongs in the study database.
  void segSaved(const QString& path);
  /// Save... chose a file: the window writes it as a job of its own.
  void saveRequested(const QString& path);
  void measuresUpdated();
  /// "Crop to 3D box": the window answers with cropToBox and the 3D view's box.
  void cropRequested();

 private:
  bool ensureEditable();
  void afterEdit(const LabelEditor::Change& c, bool undoable);
  void refreshTable();
  void scheduleMeasures();
  LabelEntry* entry(int value);
  bool report(const QString& what, const Status& st);
  int sliceAxis() const;
  void startAutosave(bool wait);
  void keepUnsavedEdits();
  void startEditing(std::shared_ptr<Volume> labels);
  /// Edits and description changes together: changes whenever either does.
  std::uint64_t state() const;
  void describedChanged();
  /// Every value in `box` has a row (undo can bring back a deleted label's voxels).
  void syncEntries(const IndexBox& box);
  bool stepHistory(bool undo);
  void updateRestore();

  std::shared_ptr<LabelOverlay> overlay_;
  std::shared_ptr<LoadedSeries> series_;       // the active view's
  std::shared_ptr<LoadedSeries> editSeries_;   // the image the edited map lies on
  std::unique_ptr<LabelEditor> editor_;
  int active_ = 1;
  PaintTool tool_ = PaintTool::None;
  Vec3 workingNormal_{0, 0, 1};
  Vec3 lastDab_;
  bool stroke_ = false;
  std::uint64_t savedRevision_ = 0;  // state() when last saved to a file
  std::uint64_t metaChanges_ = 0;    // names, colours, codes, visibility
  std::vector<LabelMeasures> measures_;
  std::uint64_t measuresRevision_ = ~0ull;
  int measuresGeneration_ = 0;
  bool measuring_ = false;

  QLabel* source_ = nullptr;
  QTableWidget* table_ = nullptr;
  QComboBox* code_ = nullptr;
  QSlider* opacity_ = nullptr;
  QSlider* labelOpacity_ = nullptr;
  QRadioButton* tools_[4] = {};
  QDoubleSpinBox* size_ = nullptr;
  QCheckBox* sphere_ = nullptr;
  QCheckBox* overwrite_ = nullptr;
  QCheckBox* limit_ = nullptr;
  QDoubleSpinBox* lo_ = nullptr;
  QDoubleSpinBox* hi_ = nullptr;
  QDoubleSpinBox* minMl_ = nullptr;
  QDoubleSpinBox* smoothMm_ = nullptr;
  QComboBox* mergeFrom_ = nullptr;
  QWidget* editBox_ = nullptr;
  QTimer* measureTimer_ = nullptr;
  QTimer* autosaveTimer_ = nullptr;
  QPushButton* restore_ = nullptr;
  QString autosaveDir_;
  QString editPath_;  // autosave file of the map being edited
  std::uint64_t autosavedRevision_ = 0;
  std::unique_ptr<QThreadPool> autosaver_;  // one thread: autosaves land in order
  bool filling_ = false;
};

}  // namespace lumen::gui
