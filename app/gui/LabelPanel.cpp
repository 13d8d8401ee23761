#include "LabelPanel.h"

#include <QButtonGroup>
#include <QCheckBox>
#include <QColorDialog>
#include <QComboBox>
#include <QCoreApplication>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QFormLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPointer>
#include <QPushButton>
#include <QRadioButton>
#include <QScrollArea>
#include <QSlider>
#include <QTableWidget>
#include <QThreadPool>
#include <QTimer>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <array>
#include <cmath>

#include "lumen/core/Sha256.h"
#include "lumen/imaging/ImageIO.h"
#include "lumen/imaging/DicomSeg.h"
#include "lumen/imaging/LabelMapIO.h"
#include "lumen/imaging/LabelTools.h"

namespace lumen::gui {

namespace {
QIcon swatch(const Rgb8& c) {
  QPixmap p(14, 14);
  p.fill(QColor(c.r, c.g, c.b));
  return QIcon(p);
}

QPushButton* button(const QString& text, const QString& tip) {
  auto* b = new QPushButton(text);
  b->setToolTip(tip);
  return b;
}
}  // namespace

LabelPanel::LabelPanel(QWidget* parent) : QWidget(parent) {
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(0, 0, 0, 0);
  auto* scroll = new QScrollArea;
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  outer->addWidget(scroll);
  auto* inner = new QWidget;
  scroll->setWidget(inner);
  auto* l = new QVBoxLayout(inner);
  l->setContentsMargins(4, 4, 4, 4);

  source_ = new QLabel;
  source_->setObjectName("LabelSource");
  source_->setWordWrap(true);
  l->addWidget(source_);
  table_ = new QTableWidget(0, 5);
  table_->setObjectName("LabelTable");
  table_->setHorizontalHeaderLabels({"", "Label", "mL", "Mean \u00b1 SD", "Surface cm\u00b2"});
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->setMinimumHeight(110);
  l->addWidget(table_, 1);

  auto* labelRow = new QHBoxLayout;
  auto* add = button("+ Label", "Add a label with the next free value");
  auto* colour = button("Colour...", "Colour of the selected label");
  code_ = new QComboBox;
  code_->setObjectName("LabelCode");
  code_->setToolTip("SNOMED CT category and type of the selected label (for DICOM SEG)");
  code_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  code_->setMinimumContentsLength(8);
  code_->addItem("(no code)");
  for (const auto& [category, type] : commonLabelCodes())
    code_->addItem(QString::fromStdString(type.meaning + " (" + category.meaning + ")"));
  auto* typed = button("Code...", "Type the selected label's category and type codes (e.g. SCT)");
  labelRow->addWidget(add);
  labelRow->addWidget(colour);
  labelRow->addWidget(code_, 1);
  labelRow->addWidget(typed);
  l->addLayout(labelRow);
  connect(typed, &QPushButton::clicked, this, [this] {
    LabelEntry* en = entry(active_);
    if (!en) return;
    QDialog d(this);
    d.setWindowTitle("Label codes");
    auto* form = new QFormLayout(&d);
    QLineEdit* fields[6];
    const char* names[6] = {"Category value", "Category scheme", "Category meaning", "Type value", "Type scheme", "Type meaning"};
    const std::string values[6] = {en->category.value, en->category.scheme, en->category.meaning,
                                   en->type.value,     en->type.scheme,     en->type.meaning};
    for (int i = 0; i < 6; ++i) {
      fields[i] = new QLineEdit(QString::fromStdString(values[i]));
      form->addRow(names[i], fields[i]);
    }
    auto* ok = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
    form->addRow(ok);
    connect(ok, &QDialogButtonBox::accepted, &d, &QDialog::accept);
    connect(ok, &QDialogButtonBox::rejected, &d, &QDialog::reject);
    if (d.exec() != QDialog::Accepted) return;
    auto text = [&](int i) { return fields[i]->text().trimmed().toStdString(); };
    setLabelCode({text(0), text(1), text(2)}, {text(3), text(4), text(5)});
  });

  auto* opacityRow = new QHBoxLayout;
  opacityRow->addWidget(new QLabel("Opacity"));
  opacity_ = new QSlider(Qt::Horizontal);
  opacity_->setRange(0, 100);
  opacity_->setValue(45);
  opacity_->setToolTip("All labels");
  opacityRow->addWidget(opacity_, 1);
  opacityRow->addWidget(new QLabel("selected"));
  labelOpacity_ = new QSlider(Qt::Horizontal);
  labelOpacity_->setObjectName("LabelOpacity");
  labelOpacity_->setRange(0, 100);
  labelOpacity_->setValue(100);
  labelOpacity_->setToolTip("The selected label's own opacity");
  opacityRow->addWidget(labelOpacity_, 1);
  connect(labelOpacity_, &QSlider::valueChanged, this, [this](int v) {
    if (!filling_) setLabelOpacity(v / 100.0);
  });
  l->addLayout(opacityRow);

  editBox_ = new QWidget;
  auto* e = new QGridLayout(editBox_);
  e->setContentsMargins(0, 0, 0, 0);
  auto* group = new QButtonGroup(this);
  const char* names[4] = {"Off", "Brush", "Erase", "Grow"};
  const char* tips[4] = {"The left button windows and measures", "Paint the selected label",
                         "Erase the selected label (all labels with 'Paint over')",
                         "Click to grow the label from that point: within the intensity range when it is set, "
                         "else ITK's confidence connected (2.5 SD)"};
  auto* toolRow = new QHBoxLayout;
  for (int i = 0; i < 4; ++i) {
    tools_[i] = new QRadioButton(names[i]);
    tools_[i]->setToolTip(tips[i]);
    group->addButton(tools_[i], i);
    toolRow->addWidget(tools_[i]);
  }
  tools_[0]->setChecked(true);
  // Two columns: the panel shares the right dock area with narrow panels.
  e->addLayout(toolRow, 0, 0, 1, 2);
  auto* sizeRow = new QHBoxLayout;
  sizeRow->addWidget(new QLabel("Size"));
  size_ = new QDoubleSpinBox;
  size_->setObjectName("BrushSize");
  size_->setRange(0.5, 200.0);
  size_->setValue(10.0);
  size_->setSuffix(" mm");
  sizeRow->addWidget(size_, 1);
  e->addLayout(sizeRow, 1, 0);
  sphere_ = new QCheckBox("3D sphere");
  sphere_->setToolTip("Off: a disc in the view's plane, one slice thick");
  e->addWidget(sphere_, 1, 1);
  overwrite_ = new QCheckBox("Paint over other labels");
  overwrite_->setToolTip("Off: only unlabelled voxels change");
  e->addWidget(overwrite_, 2, 0, 1, 2);
  limit_ = new QCheckBox("Intensity");
  limit_->setToolTip("Limit painting, growing and threshold to this range of values (HU for CT)");
  lo_ = new QDoubleSpinBox;
  hi_ = new QDoubleSpinBox;
  for (auto* sb : {lo_, hi_}) {
    sb->setRange(-100000, 100000);
    sb->setDecimals(0);
  }
  lo_->setValue(-100);
  hi_->setValue(300);
  auto* rangeRow = new QHBoxLayout;
  rangeRow->addWidget(limit_);
  rangeRow->addWidget(lo_, 1);
  rangeRow->addWidget(new QLabel("to"));
  rangeRow->addWidget(hi_, 1);
  e->addLayout(rangeRow, 3, 0, 1, 2);
  auto* thresholdB = button("Threshold", "The selected label where the intensity is in range (whole volume)");
  auto* fill3d = button("Fill holes 3D", "Unlabelled voxels enclosed by the label");
  auto* fill2d = button("Fill holes 2D", "Enclosed holes in each slice of the current view's orientation");
  auto* largest = button("Keep largest", "Only the largest connected part of the label");
  auto* small = button("Remove small", "Parts of the label smaller than the volume given");
  minMl_ = new QDoubleSpinBox;
  minMl_->setRange(0.001, 10000);
  minMl_->setDecimals(3);
  minMl_->setValue(0.1);
  minMl_->setSuffix(" mL");
  auto* interp = button("Interpolate", "Fill the slices between slices drawn a few apart (current view's orientation)");
  auto* smoothB = button("Smooth", "Median smoothing of the label with this radius");
  smoothMm_ = new QDoubleSpinBox;
  smoothMm_->setRange(0.2, 20);
  smoothMm_->setValue(1.0);
  smoothMm_->setSuffix(" mm");
  e->addWidget(thresholdB, 4, 0);
  e->addWidget(interp, 4, 1);
  e->addWidget(fill3d, 5, 0);
  e->addWidget(fill2d, 5, 1);
  e->addWidget(largest, 6, 0);
  e->addWidget(small, 7, 0);
  e->addWidget(minMl_, 7, 1);
  e->addWidget(smoothB, 8, 0);
  e->addWidget(smoothMm_, 8, 1);
  auto* crop = button("Crop to 3D box", "Clear the label outside the 3D view's clipping box (B, MPR layout)");
  auto* del = button("Delete label", "The selected label's voxels become background");
  e->addWidget(crop, 9, 0);
  e->addWidget(del, 9, 1);
  auto* merge = button("Merge into selected", "The chosen label's voxels join the selected label");
  mergeFrom_ = new QComboBox;
  mergeFrom_->setObjectName("MergeFrom");
  e->addWidget(merge, 10, 0);
  e->addWidget(mergeFrom_, 10, 1);
  auto* combine = new QComboBox;
  combine->setObjectName("CombineWithFile");
  combine->setToolTip("The selected label combined with the labelled voxels of another map (same grid)");
  combine->addItems({"With a map file...", "Union", "Intersect", "Subtract"});
  e->addWidget(combine, 11, 0, 1, 2);
  connect(combine, qOverload<int>(&QComboBox::activated), this, [this, combine](int i) {
    combine->setCurrentIndex(0);
    if (i <= 0) return;
    const QString f = QFileDialog::getOpenFileName(this, "Label map to combine with", {}, "Label maps (*.nii *.nii.gz *.nrrd *.nhdr *.mha)");
    if (f.isEmpty()) return;
    const LabelEditor::LogicalOp ops[3] = {LabelEditor::LogicalOp::Union, LabelEditor::LogicalOp::Intersect,
                                           LabelEditor::LogicalOp::Subtract};
    combineWithFile(f, ops[i - 1]);
  });
  connect(crop, &QPushButton::clicked, this, &LabelPanel::cropRequested);
  connect(del, &QPushButton::clicked, this, [this] { deleteActiveLabel(); });
  connect(merge, &QPushButton::clicked, this, [this] {
    if (mergeFrom_->currentIndex() >= 0) mergeIntoActive(mergeFrom_->currentData().toInt());
  });
  l->addWidget(editBox_);

  auto* fileRow = new QHBoxLayout;
  auto* create = button("New", "A new empty label map on the image's grid");
  auto* load = button("Load...", "A label map (NIfTI, NRRD) with its names and colours when present");
  auto* save = button("Save...", "The label map (NIfTI, NRRD) and its names, colours and codes beside it");
  auto* clear = button("Clear", "Stop showing the label map");
  for (auto* b : {create, load, save, clear}) fileRow->addWidget(b);
  l->addLayout(fileRow);
  restore_ = button("Restore autosaved labels", "Unsaved label edits of this series from an earlier session");
  restore_->setObjectName("RestoreLabels");
  restore_->hide();
  l->addWidget(restore_);
  connect(restore_, &QPushButton::clicked, this, [this] { restoreAutosave(); });
  autosaver_ = std::make_unique<QThreadPool>();
  autosaver_->setMaxThreadCount(1);
  autosaveTimer_ = new QTimer(this);
  autosaveTimer_->setSingleShot(true);
  autosaveTimer_->setInterval(2000);
  connect(autosaveTimer_, &QTimer::timeout, this, [this] { startAutosave(false); });

  measureTimer_ = new QTimer(this);
  measureTimer_->setSingleShot(true);
  measureTimer_->setInterval(150);
  connect(measureTimer_, &QTimer::timeout, this, &LabelPanel::scheduleMeasures);

  connect(load, &QPushButton::clicked, this, &LabelPanel::loadRequested);
  connect(clear, &QPushButton::clicked, this, &LabelPanel::clearRequested);
  connect(create, &QPushButton::clicked, this, [this] { newLabelMap(); });
  connect(save, &QPushButton::clicked, this, [this] {
    if (!editor_) return emit message("note: no label map to save");
    const QString f = QFileDialog::getSaveFileName(this, "Save label map", "labels.nii.gz",
                                                   "Label maps (*.nii.gz *.nii *.nrrd);;DICOM SEG of the series (*.dcm)");
    if (!f.isEmpty()) emit saveRequested(f);
  });
  connect(add, &QPushButton::clicked, this, [this] { addLabel(); });
  connect(colour, &QPushButton::clicked, this, [this] {
    LabelEntry* en = entry(active_);
    if (!en) return;
    const QColor c = QColorDialog::getColor(QColor(en->color.r, en->color.g, en->color.b), this, "Label colour");
    if (!c.isValid()) return;
    en->color = {static_cast<std::uint8_t>(c.red()), static_cast<std::uint8_t>(c.green()), static_cast<std::uint8_t>(c.blue())};
    describedChanged();
    refreshTable();
    emit appearanceChanged();
  });
  connect(code_, qOverload<int>(&QComboBox::currentIndexChanged), this, [this](int i) {
    if (filling_ || !entry(active_)) return;
    const auto n = static_cast<int>(commonLabelCodes().size());
    if (i <= 0) setLabelCode({}, {});
    else if (i <= n) setLabelCode(commonLabelCodes()[static_cast<std::size_t>(i - 1)].first,
                                  commonLabelCodes()[static_cast<std::size_t>(i - 1)].second);
    // i > n: the label's own typed code, already set
  });
  connect(opacity_, &QSlider::valueChanged, this, [this](int v) {
    if (!overlay_) return;
    overlay_->opacity = v / 100.0;
    emit appearanceChanged();
  });
  connect(table_, &QTableWidget::itemChanged, this, [this](QTableWidgetItem* item) {
    if (filling_ || !overlay_) return;
    LabelEntry* en = entry(item->data(Qt::UserRole).toInt());
    if (!en) return;
    if (item->column() == 0) {
      en->visible = item->checkState() == Qt::Checked;
      emit appearanceChanged();
    } else if (item->column() == 1) {
      en->name = item->text().toStdString();
    }
    describedChanged();
  });
  connect(table_, &QTableWidget::currentCellChanged, this, [this](int row, int, int, int) {
    if (filling_ || row < 0 || !table_->item(row, 1)) return;
    setActiveLabel(table_->item(row, 1)->data(Qt::UserRole).toInt());
  });
  connect(group, &QButtonGroup::idClicked, this, [this](int id) { setTool(static_cast<PaintTool>(id)); });
  connect(size_, qOverload<double>(&QDoubleSpinBox::valueChanged), this, [this](double mm) { emit toolChanged(tool_, mm); });
  connect(thresholdB, &QPushButton::clicked, this, [this] { threshold(); });
  connect(fill3d, &QPushButton::clicked, this, [this] { fillHoles(false); });
  connect(fill2d, &QPushButton::clicked, this, [this] { fillHoles(true); });
  connect(largest, &QPushButton::clicked, this, [this] { keepLargestIsland(); });
  connect(small, &QPushButton::clicked, this, [this] { removeSmallIslands(minMl_->value()); });
  connect(interp, &QPushButton::clicked, this, [this] { interpolate(); });
  connect(smoothB, &QPushButton::clicked, this, [this] { smooth(smoothMm_->value()); });
  setOverlay(nullptr);
}

LabelPanel::~LabelPanel() {
  // Unsaved edits outlive the window in the autosave (nothing is reported any more).
  startAutosave(false);
  autosaver_->waitForDone();
}

void LabelPanel::setAutosaveDir(const QString& dir) { autosaveDir_ = dir; }

QString LabelPanel::autosavePath(const LoadedSeries& s) const {
  if (autosaveDir_.isEmpty()) return {};
  const std::string key = s.info.series.seriesInstanceUid.empty() ? "file:" + s.source
                                                                   : s.info.series.seriesInstanceUid + "|" + s.info.splitLabel;
  return autosaveDir_ + "/labels-" + QString::fromStdString(Sha256::hexOf(key.data(), key.size()).substr(0, 24)) + ".nii.gz";
}

void LabelPanel::startAutosave(bool wait) {
  if (!editor_ || editPath_.isEmpty() || !hasUnsavedChanges() || state() == autosavedRevision_) {
    if (wait) autosaver_->waitForDone();
    return;
  }
  const std::vector<LabelInfo> infos = labelInfosOf(*overlay_);
  auto labels = std::make_shared<Volume>(overlay_->labels->clone());
  const std::uint64_t revision = state();
  const QString path = editPath_;
  QPointer<LabelPanel> self(this);
  QDir().mkpath(QFileInfo(path).path());
  autosaver_->start([self, labels, infos, revision, path] {
    const Status st = io::writeLabelMap(*labels, infos, path.toStdString());
    QMetaObject::invokeMethod(
        qApp,
        [self, st, revision, path] {
          if (!self) return;
          if (st) self->autosavedRevision_ = std::max(self->autosavedRevision_, revision);
          else emit self->message("error: label edits not autosaved: " + QString::fromStdString(st.error().toString()));
        },
        Qt::QueuedConnection);
  });
  if (wait) {
    autosaver_->waitForDone();
    QCoreApplication::sendPostedEvents(qApp);
  }
}

void LabelPanel::autosaveNow() { startAutosave(true); }

void LabelPanel::discardEdits() {
  if (editPath_.isEmpty()) return;
  autosaver_->waitForDone();
  QFile::remove(editPath_);
  QFile::remove(QString::fromStdString(io::labelSidecarPath(editPath_.toStdString()).string()));
  savedRevision_ = state();
}

bool LabelPanel::restoreAutosave() {
  if (!series_ || !series_->complete) return false;
  const QString path = autosavePath(*series_);
  auto map = io::readLabelMap(path.toStdString());
  if (!map) return report("restoring autosaved labels", map.error());
  if (!sameGrid(map->labels->geometry(), series_->volume->geometry(), 0.01)) {
    emit message("note: the autosaved labels are not on this series' grid");
    return false;
  }
  auto o = std::make_shared<LabelOverlay>();
  o->labels = map->labels;
  o->source = "autosaved labels";
  o->opacity = 0.5;
  applyLabelInfos(*o, map->infos);
  setOverlay(o);
  emit overlayReplaced(overlay_);
  // Still not in a file of the reader's: unsaved until saved.
  savedRevision_ = ~0ull;
  autosavedRevision_ = state();
  refreshTable();
  return editor_ != nullptr;
}

void LabelPanel::updateRestore() {
  const bool can = series_ && series_->complete && !editor_ && !autosaveDir_.isEmpty() &&
                   QFileInfo::exists(autosavePath(*series_));
  restore_->setVisible(can);
}

LabelEntry* LabelPanel::entry(int value) {
  if (!overlay_) return nullptr;
  for (auto& e : overlay_->entries)
    if (e.value == value) return &e;
  return nullptr;
}

bool LabelPanel::report(const QString& what, const Status& st) {
  if (st) return true;
  emit message("error: " + what + ": " + QString::fromStdString(st.error().toString()));
  return false;
}

void LabelPanel::setOverlay(std::shared_ptr<LabelOverlay> overlay) {
  if (overlay != overlay_) keepUnsavedEdits();
  overlay_ = std::move(overlay);
  editor_.reset();
  editSeries_.reset();
  editPath_.clear();
  measures_.clear();
  measuresRevision_ = ~0ull;
  ++measuresGeneration_;
  if (overlay_) {
    opacity_->setValue(static_cast<int>(overlay_->opacity * 100));
    active_ = overlay_->entries.empty() ? 1 : overlay_->entries.front().value;
    // A label map on the image's grid opens editable (an AI result too).
    if (series_ && series_->complete && series_->volume &&
        sameGrid(overlay_->labels->geometry(), series_->volume->geometry(), 0.01))
      ensureEditable();
  }
  refreshTable();
}

void LabelPanel::setSeries(std::shared_ptr<LoadedSeries> series) {
  if (series == series_) return updateRestore();
  series_ = std::move(series);
  if (overlay_ && !editor_ && series_ && series_->complete &&
      sameGrid(overlay_->labels->geometry(), series_->volume->geometry(), 0.01)) {
    ensureEditable();
    refreshTable();
  }
  updateRestore();
}

void LabelPanel::startEditing(std::shared_ptr<Volume> labels) {
  editor_ = std::make_unique<LabelEditor>(std::move(labels));
  editSeries_ = series_;
  metaChanges_ = 0;
  savedRevision_ = state();
  autosavedRevision_ = savedRevision_;
  editPath_ = autosavePath(*editSeries_);
  stroke_ = false;
  measureTimer_->start();
}

void LabelPanel::keepUnsavedEdits() {
  if (stroke_ && editor_) {
    stroke_ = false;
    editor_->endStep();
  }
  if (!hasUnsavedChanges()) return;
  // Never lost silently: the edits stay in the autosave, which the panel offers again.
  startAutosave(true);
  if (!editPath_.isEmpty())
    emit message("Unsaved label edits were kept: \"Restore autosaved labels\" in the Labels panel brings them back");
}

bool LabelPanel::newLabelMap() {
  if (!series_ || !series_->volume || !series_->complete) {
    emit message("note: open a series (completely loaded) to draw labels on it");
    return false;
  }
  auto labels = LabelEditor::emptyLabelsFor(*series_->volume);
  if (!labels) return report("new label map", labels.error());
  keepUnsavedEdits();
  auto o = std::make_shared<LabelOverlay>();
  o->labels = *labels;
  o->entries.push_back({1, "Label 1", labelColor(1), true, {}, {}, 1.0});
  o->opacity = 0.5;
  o->source = "new label map";
  overlay_ = o;
  startEditing(o->labels);
  active_ = 1;
  measures_.clear();
  ++measuresGeneration_;
  emit overlayReplaced(overlay_);
  refreshTable();
  return true;
}

bool LabelPanel::ensureEditable() {
  if (editor_) return true;
  if (!overlay_) return newLabelMap();
  if (!series_ || !series_->volume || !series_->complete) {
    emit message("note: open a series (completely loaded) to edit labels on it");
    return false;
  }
  if (!sameGrid(overlay_->labels->geometry(), series_->volume->geometry(), 0.01)) {
    emit message("note: this label map is on another grid than the image: it is shown, not edited");
    return false;
  }
  if (overlay_->labels->pixelType() != PixelType::UInt8) {
    auto editable = LabelEditor::toEditable(*overlay_->labels);
    if (!editable) {
      emit message("note: this label map is shown, not edited: " + QString::fromStdString(editable.error().message));
      return false;
    }
    auto o = std::make_shared<LabelOverlay>(*overlay_);
    o->labels = *editable;
    overlay_ = o;
    emit overlayReplaced(overlay_);
  }
  startEditing(overlay_->labels);
  return true;
}

int LabelPanel::addLabel() {
  if (!ensureEditable()) return 0;
  for (int v = 1; v < 256; ++v)
    if (!entry(v)) {
      overlay_->entries.push_back({v, "Label " + std::to_string(v), labelColor(v), true, {}, {}, 1.0});
      std::sort(overlay_->entries.begin(), overlay_->entries.end(), [](auto& a, auto& b) { return a.value < b.value; });
      active_ = v;
      refreshTable();
      emit appearanceChanged();
      return v;
    }
  emit message("note: all 255 label values are in use");
  return 0;
}

void LabelPanel::setActiveLabel(int value) {
  if (value < 1 || value > 255) return;
  // Every stroke begins here: rebuild the table only when something changed.
  if (value == active_ && (!overlay_ || entry(value))) return;
  active_ = value;
  if (overlay_ && !entry(value)) {
    overlay_->entries.push_back({value, "Label " + std::to_string(value), labelColor(value), true, {}, {}, 1.0});
    std::sort(overlay_->entries.begin(), overlay_->entries.end(), [](auto& a, auto& b) { return a.value < b.value; });
    emit appearanceChanged();
  }
  refreshTable();
}

void LabelPanel::setTool(PaintTool tool) {
  tool_ = tool;
  tools_[static_cast<int>(tool)]->setChecked(true);
  if (tool != PaintTool::None) ensureEditable();
  emit toolChanged(tool_, size_->value());
}

double LabelPanel::brushDiameterMm() const { return size_->value(); }
void LabelPanel::setBrushDiameterMm(double mm) { size_->setValue(mm); }
void LabelPanel::setBrushSphere(bool sphere) { sphere_->setChecked(sphere); }
void LabelPanel::setOverwrite(bool on) { overwrite_->setChecked(on); }
void LabelPanel::setIntensityLimit(bool on, double lo, double hi) {
  limit_->setChecked(on);
  lo_->setValue(lo);
  hi_->setValue(hi);
}

void LabelPanel::setWorkingNormal(const Vec3& n) { workingNormal_ = n; }

int LabelPanel::sliceAxis() const {
  if (!overlay_) return 2;
  const Mat3& d = overlay_->labels->geometry().direction;
  int best = 2;
  double bestDot = -1;
  for (int c = 0; c < 3; ++c) {
    const double dot = std::fabs(d.column(static_cast<std::size_t>(c)).dot(workingNormal_));
    if (dot > bestDot) {
      bestDot = dot;
      best = c;
    }
  }
  return best;
}

void LabelPanel::paint(const PaintEvent& e) {
  if (e.phase == PaintEvent::Phase::Begin) {
    if (!ensureEditable()) return;
    setActiveLabel(active_);
    workingNormal_ = e.normal;
    if (tool_ == PaintTool::Grow) {
      const Volume& image = *editSeries_->volume;
      auto r = limit_->isChecked()
                   ? seg::growConnected(*editor_, image, e.lps, {lo_->value(), hi_->value()}, active_, overwrite_->isChecked())
                   : seg::growConfident(*editor_, image, e.lps, 2.5, 5, 2, active_, overwrite_->isChecked());
      if (!r) return (void)report("region growing", r.error());
      afterEdit(*r, true);
      return;
    }
    editor_->beginStep(tool_ == PaintTool::Eraser ? "Erase" : "Paint");
    stroke_ = true;
    lastDab_ = e.lps;
  } else if (!stroke_ || !editor_) {
    return;
  }
  const Brush brush{size_->value(), sphere_->isChecked(), e.normal, e.sliceStepMm};
  const Volume* image = limit_->isChecked() ? editSeries_->volume.get() : nullptr;
  const IntensityRange range{lo_->value(), hi_->value()};
  auto dab = [&](const Vec3& c) {
    if (tool_ == PaintTool::Eraser) editor_->erase(brush, c, overwrite_->isChecked() ? -1 : active_);
    else editor_->paint(brush, c, active_, image, range, overwrite_->isChecked());
  };
  if (e.phase == PaintEvent::Phase::Begin) {
    dab(e.lps);
  } else if (e.phase == PaintEvent::Phase::Move) {
    // Dabs a quarter of the brush apart, so a fast stroke stays continuous.
    const Vec3 d = e.lps - lastDab_;
    const double len = d.norm(), step = std::max(0.25 * size_->value(), 0.1);
    const int n = static_cast<int>(std::ceil(len / step));
    for (int i = 1; i <= n; ++i) dab(lastDab_ + d * (static_cast<double>(i) / n));
    if (n > 0) lastDab_ = e.lps;
  } else {
    stroke_ = false;
    afterEdit(editor_->endStep(), true);
    return;
  }
  emit voxelsEdited();
}

void LabelPanel::afterEdit(const LabelEditor::Change& c, bool undoable) {
  emit voxelsEdited();
  if (undoable && c.voxels > 0) emit edited();
  measureTimer_->start();
  autosaveTimer_->start();
}

bool LabelPanel::threshold() {
  if (!ensureEditable()) return false;
  if (!limit_->isChecked()) {
    emit message("note: tick Intensity and set the range to threshold");
    return false;
  }
  setActiveLabel(active_);
  afterEdit(editor_->threshold(*editSeries_->volume, {lo_->value(), hi_->value()}, active_, nullptr, overwrite_->isChecked()), true);
  return true;
}

bool LabelPanel::fillHoles(bool perSlice) {
  if (!ensureEditable()) return false;
  afterEdit(editor_->fillHoles(active_, perSlice ? sliceAxis() : -1), true);
  return true;
}

bool LabelPanel::keepLargestIsland() {
  if (!ensureEditable()) return false;
  afterEdit(editor_->keepLargestIsland(active_), true);
  return true;
}

bool LabelPanel::removeSmallIslands(double minMl) {
  if (!ensureEditable()) return false;
  const auto& sp = overlay_->labels->geometry().spacingMm;
  const double voxelMl = sp.x * sp.y * sp.z / 1000.0;
  afterEdit(editor_->removeSmallIslands(active_, static_cast<std::size_t>(std::ceil(minMl / voxelMl))), true);
  return true;
}

bool LabelPanel::interpolate() {
  if (!ensureEditable()) return false;
  auto r = seg::interpolateSlices(*editor_, active_, sliceAxis());
  if (!r) return report("interpolation", r.error());
  afterEdit(*r, true);
  return true;
}

bool LabelPanel::smooth(double radiusMm) {
  if (!ensureEditable()) return false;
  auto r = seg::smoothLabel(*editor_, active_, radiusMm);
  if (!r) return report("smoothing", r.error());
  afterEdit(*r, true);
  return true;
}

void LabelPanel::setLabelOpacity(double opacity) {
  LabelEntry* en = entry(active_);
  if (!en) return;
  en->opacity = std::clamp(opacity, 0.0, 1.0);
  describedChanged();
  emit appearanceChanged();
  refreshTable();
}

bool LabelPanel::setLabelCode(const CodedConcept& category, const CodedConcept& type) {
  LabelEntry* en = entry(active_);
  if (!en) return false;
  for (const CodedConcept* c : {&category, &type})
    if (!c->value.empty() && (c->scheme.empty() || c->meaning.empty())) {
      emit message("note: a code needs its value, coding scheme and meaning (e.g. 10200004, SCT, Liver)");
      return false;
    }
  if (category.empty() != type.empty()) {
    emit message("note: a label's code has both a category and a type (DICOM SEG needs both)");
    return false;
  }
  en->category = category;
  en->type = type;
  describedChanged();
  refreshTable();
  return true;
}

bool LabelPanel::cropToBox(const std::vector<std::pair<Vec3, Vec3>>& planes) {
  if (!ensureEditable()) return false;
  if (planes.size() != 6) {
    emit message("note: turn on the 3D clipping box (B, in the MPR layout) and fit it around what to keep");
    return false;
  }
  // The box's centre tells which side of each plane is inside, whatever the normals' sense.
  Vec3 centre;
  for (const auto& p : planes) centre += p.first;
  centre = centre / 6.0;
  std::vector<double> inside;
  for (const auto& [o, n] : planes) inside.push_back((centre - o).dot(n) >= 0 ? 1.0 : -1.0);
  const ImageGeometry& g = overlay_->labels->geometry();
  const auto value = static_cast<std::uint8_t>(active_);
  afterEdit(editor_->edit("Crop", IndexBox::of(g),
                          [&](Volume& l) {
                            std::uint8_t* d = l.data<std::uint8_t>();
                            std::size_t i = 0;
                            for (std::size_t z = 0; z < g.size[2]; ++z)
                              for (std::size_t y = 0; y < g.size[1]; ++y)
                                for (std::size_t x = 0; x < g.size[0]; ++x, ++i) {
                                  if (d[i] != value) continue;
                                  const Vec3 p = g.ijkToLps({double(x), double(y), double(z)});
                                  for (std::size_t k = 0; k < 6; ++k)
                                    if ((p - planes[k].first).dot(planes[k].second) * inside[k] < 0) {
                                      d[i] = 0;
                                      break;
                                    }
                                }
                          }),
            true);
  return true;
}

bool LabelPanel::combineWithFile(const QString& path, LabelEditor::LogicalOp op) {
  if (!ensureEditable()) return false;
  auto mask = io::readImage(path.toStdString());
  if (!mask) return report("combining", mask.error());
  if (!sameGrid(mask->geometry(), overlay_->labels->geometry(), 0.01)) {
    emit message("note: " + path + " is not on this label map's grid: not combined");
    return false;
  }
  if (mask->pixelType() == PixelType::RGB8) {
    emit message("note: " + path + " is a colour image, not a label map");
    return false;
  }
  setActiveLabel(active_);
  afterEdit(editor_->combine(active_, op, *mask, -1, overwrite_->isChecked()), true);
  return true;
}

bool LabelPanel::mergeIntoActive(int from) {
  if (!ensureEditable() || from == active_) return false;
  afterEdit(editor_->relabel(from, active_), true);
  return true;
}

bool LabelPanel::deleteActiveLabel() {
  if (!ensureEditable()) return false;
  afterEdit(editor_->relabel(active_, 0), true);
  auto& es = overlay_->entries;
  es.erase(std::remove_if(es.begin(), es.end(), [&](const LabelEntry& e) { return e.value == active_; }), es.end());
  active_ = es.empty() ? 1 : es.front().value;
  describedChanged();
  refreshTable();
  emit appearanceChanged();
  return true;
}

bool LabelPanel::undo() { return stepHistory(true); }

bool LabelPanel::redo() { return stepHistory(false); }

bool LabelPanel::stepHistory(bool undo) {
  if (!editor_ || editor_->inStep() || !(undo ? editor_->canUndo() : editor_->canRedo())) return false;
  const LabelEditor::Change c = undo ? editor_->undo() : editor_->redo();
  afterEdit(c, false);
  syncEntries(c.box);
  return true;
}

void LabelPanel::syncEntries(const IndexBox& box) {
  if (!overlay_ || !editor_ || box.empty()) return;
  // Only the voxels the step rewrote can hold a label without a row.
  std::array<bool, 256> present{};
  const Volume& l = *overlay_->labels;
  const std::uint8_t* d = l.data<std::uint8_t>();
  for (long z = box.lo[2]; z <= box.hi[2]; ++z)
    for (long y = box.lo[1]; y <= box.hi[1]; ++y) {
      const std::size_t row = l.linearIndex(static_cast<std::size_t>(box.lo[0]), static_cast<std::size_t>(y), static_cast<std::size_t>(z));
      for (long x = 0; x <= box.hi[0] - box.lo[0]; ++x) present[d[row + static_cast<std::size_t>(x)]] = true;
    }
  bool added = false;
  for (int v = 1; v < 256; ++v)
    if (present[static_cast<std::size_t>(v)] && !entry(v)) {
      overlay_->entries.push_back({v, "Label " + std::to_string(v), labelColor(v), true, {}, {}, 1.0});
      added = true;
    }
  if (!added) return;
  std::sort(overlay_->entries.begin(), overlay_->entries.end(), [](auto& a, auto& b) { return a.value < b.value; });
  refreshTable();
  emit appearanceChanged();
}

std::uint64_t LabelPanel::state() const { return editor_ ? editor_->revision() + metaChanges_ : 0; }

bool LabelPanel::hasUnsavedChanges() const { return editor_ && state() != savedRevision_; }

void LabelPanel::describedChanged() {
  ++metaChanges_;
  if (editor_) autosaveTimer_->start();
}

bool LabelPanel::saveTo(const QString& path, QString* error) {
  auto save = prepareSave(path, error);
  return save && finishSave(*save, save->write(), error);
}

std::optional<LabelPanel::PendingSave> LabelPanel::prepareSave(const QString& path, QString* error) {
  if (!editor_) {
    if (error) *error = "no label map to save";
    return std::nullopt;
  }
  PendingSave save;
  save.path = path;
  save.state = state();
  save.overlay = overlay_;
  auto labels = std::make_shared<const Volume>(overlay_->labels->clone());
  const std::vector<LabelInfo> infos = labelInfosOf(*overlay_);
  const std::string file = path.toStdString();
  if (path.endsWith(".dcm", Qt::CaseInsensitive)) {
    if (!editSeries_ || !editSeries_->segReference) {
      if (error) *error = "a DICOM SEG references the DICOM images it segments: this series was not loaded from DICOM";
      return std::nullopt;
    }
    // An AI result the reader changed is semi-automatic; one drawn by hand is manual.
    const auto& p = overlay_->provenance;
    dicom::SegWriteOptions so;
    if (!p.model.empty()) {
      const bool edited = editor_->revision() != 0;
      so.algorithm = {edited ? dicom::SegAlgorithm::Type::SemiAutomatic : dicom::SegAlgorithm::Type::Automatic, p.model,
                      p.version, p.sha256};
      so.seriesDescription = (edited ? "AI segmentation, edited: " : "AI segmentation: ") + p.model;
    }
    so.softwareVersion = LUMEN_VERSION;
    save.seg = true;
    save.write = [labels, infos, reference = editSeries_->segReference, so, file]() -> Result<std::vector<std::string>> {
      auto w = dicom::writeSegmentation(*labels, infos, *reference, so, file);
      if (!w) return w.error();
      return w->notes;
    };
  } else {
    save.write = [labels, infos, file]() -> Result<std::vector<std::string>> {
      if (auto st = io::writeLabelMap(*labels, infos, file); !st) return st.error();
      return std::vector<std::string>{};
    };
  }
  return save;
}

bool LabelPanel::finishSave(const PendingSave& save, const Result<std::vector<std::string>>& outcome, QString* error) {
  if (!outcome) {
    if (error) *error = QString::fromStdString(outcome.error().toString());
    return false;
  }
  for (const auto& n : *outcome) emit message("note: " + QString::fromStdString(n));
  if (save.seg) emit segSaved(save.path);
  emit message("Saved the label map to " + save.path);
  if (overlay_ != save.overlay) return true;  // another map is open now: the file is written, nothing else to note
  overlay_->source = save.path.toStdString();
  savedRevision_ = save.state;  // edits made while it was written are still to be saved
  if (state() == save.state) discardEdits();  // the reader's file holds them all now
  refreshTable();
  return true;
}

void LabelPanel::scheduleMeasures() {
  if (!editor_ || measuring_) {
    if (measuring_) measureTimer_->start();  // again once this one is done
    return;
  }
  if (measuresRevision_ == editor_->revision()) return;
  measuring_ = true;
  // A copy: painting goes on while the statistics are computed.
  auto labels = std::make_shared<Volume>(overlay_->labels->clone());
  std::shared_ptr<const LoadedSeries> series = editSeries_;
  const std::uint64_t revision = editor_->revision();
  const int generation = measuresGeneration_;
  QPointer<LabelPanel> self(this);
  (void)QtConcurrent::run([self, labels, series, revision, generation] {
    auto m = measureLabels(*labels, series && series->volume ? series->volume.get() : nullptr);
    QMetaObject::invokeMethod(
        qApp,
        [self, m = std::move(m), revision, generation]() mutable {
          if (!self) return;
          self->measuring_ = false;
          if (generation != self->measuresGeneration_) return;
          self->measures_ = std::move(m);
          self->measuresRevision_ = revision;
          self->refreshTable();
          emit self->measuresUpdated();
          if (self->editor_ && self->editor_->revision() != revision) self->measureTimer_->start();
        },
        Qt::QueuedConnection);
  });
}

bool LabelPanel::waitForMeasures(int timeoutMs) {
  QElapsedTimer t;
  t.start();
  while (t.elapsed() < timeoutMs) {
    if (editor_ && measuresRevision_ == editor_->revision() && !measuring_) return true;
    if (!measureTimer_->isActive() && !measuring_) scheduleMeasures();
    QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
  }
  return false;
}

void LabelPanel::refreshTable() {
  filling_ = true;
  table_->setRowCount(0);
  if (overlay_) {
    const bool current = editor_ && measuresRevision_ == editor_->revision();
    table_->setRowCount(static_cast<int>(overlay_->entries.size()));
    int r = 0;
    for (const auto& e : overlay_->entries) {
      auto* vis = new QTableWidgetItem;
      vis->setFlags(Qt::ItemIsUserCheckable | Qt::ItemIsEnabled | Qt::ItemIsSelectable);
      vis->setCheckState(e.visible ? Qt::Checked : Qt::Unchecked);
      vis->setData(Qt::UserRole, e.value);
      auto* name = new QTableWidgetItem(swatch(e.color), QString::fromStdString(e.name));
      name->setData(Qt::UserRole, e.value);
      name->setToolTip(QString("Value %1").arg(e.value));
      table_->setItem(r, 0, vis);
      table_->setItem(r, 1, name);
      const LabelMeasures* m = nullptr;
      for (const auto& x : measures_)
        if (x.label == e.value) m = &x;
      auto cell = [&](int c, const QString& text) {
        auto* it = new QTableWidgetItem(text);
        it->setFlags(it->flags() & ~Qt::ItemIsEditable);
        it->setData(Qt::UserRole, e.value);
        it->setForeground(current ? palette().text() : palette().placeholderText());
        table_->setItem(r, c, it);
      };
      if (editor_) {
        cell(2, m ? QString::number(m->volumeMl, 'f', m->volumeMl < 10 ? 2 : 1) : "0");
        cell(3, m && std::isfinite(m->mean) ? QString("%1 \u00b1 %2").arg(m->mean, 0, 'f', 1).arg(m->sd, 0, 'f', 1) : "");
        cell(4, m ? QString::number(m->surfaceMm2 / 100.0, 'f', 1) : "");
      } else {
        for (int c = 2; c < 5; ++c) cell(c, "");
      }
      if (e.value == active_) table_->selectRow(r);
      ++r;
    }
    QString text = QString("%1: %2 label(s)").arg(QFileInfo(QString::fromStdString(overlay_->source)).fileName()).arg(overlay_->entries.size());
    if (editor_) text += hasUnsavedChanges() ? " (unsaved edits)" : "";
    else text += " (shown, not editable)";
    source_->setText(text);
    const LabelEntry* en = entry(active_);
    // The built-in codes, and the selected label's own when it typed one.
    while (code_->count() > static_cast<int>(commonLabelCodes().size()) + 1) code_->removeItem(code_->count() - 1);
    int codeIndex = 0;
    if (en && !en->type.empty()) {
      for (std::size_t i = 0; i < commonLabelCodes().size(); ++i)
        if (commonLabelCodes()[i].second.value == en->type.value && commonLabelCodes()[i].second.scheme == en->type.scheme &&
            commonLabelCodes()[i].first.value == en->category.value)
          codeIndex = static_cast<int>(i) + 1;
      if (codeIndex == 0) {
        code_->addItem(QString::fromStdString(en->type.meaning + " (" + en->category.meaning + ", typed)"));
        codeIndex = code_->count() - 1;
      }
    }
    code_->setCurrentIndex(codeIndex);
    labelOpacity_->setValue(en ? static_cast<int>(std::lround(en->opacity * 100)) : 100);
    mergeFrom_->clear();
    for (const auto& x : overlay_->entries)
      if (x.value != active_) mergeFrom_->addItem(QString::fromStdString(x.name), x.value);
  } else {
    source_->setText("No label map. New draws one on the image; Load shows one (NIfTI, NRRD).");
    mergeFrom_->clear();
  }
  opacity_->setEnabled(overlay_ != nullptr);
  filling_ = false;
  updateRestore();
}

}  // namespace lumen::gui
