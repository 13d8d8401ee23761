#include "FindingsPanel.h"

#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>

#include "MeasurementStore.h"
#include "lumen/core/DurableFile.h"
#include "lumen/imaging/MeasurementIO.h"

namespace lumen::gui {

namespace {
const char* kindName(MeasurementKind k) {
  switch (k) {
    case MeasurementKind::Distance: return "Distance";
    case MeasurementKind::Angle: return "Angle";
    case MeasurementKind::Ellipse: return "Ellipse";
    case MeasurementKind::Rectangle: return "Rectangle";
    case MeasurementKind::Polygon: return "Polygon";
    case MeasurementKind::Point: return "Point";
  }
  return "";
}
}  // namespace

FindingsPanel::FindingsPanel(MeasurementStore* store, QWidget* parent) : QWidget(parent), store_(store) {
  auto* l = new QVBoxLayout(this);
  l->setContentsMargins(4, 4, 4, 4);
  table_ = new QTableWidget(0, 4);
  table_->setObjectName("FindingsTable");
  table_->setHorizontalHeaderLabels({"#", "Type", "Value", "Label"});
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setSectionResizeMode(2, QHeaderView::Stretch);
  table_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::ResizeToContents);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->setWordWrap(true);
  l->addWidget(table_);
  note_ = new QLabel;
  note_->setObjectName("FindingsNote");
  note_->setWordWrap(true);
  l->addWidget(note_);
  auto* row = new QHBoxLayout;
  delete_ = new QPushButton("Delete");
  exportJson_ = new QPushButton("Export JSON...");
  exportCsv_ = new QPushButton("Export CSV...");
  for (auto* b : {delete_, exportJson_, exportCsv_}) row->addWidget(b);
  row->addStretch(1);
  l->addLayout(row);

  connect(table_, &QTableWidget::cellClicked, this, [this](int r, int) {
    if (auto* it = table_->item(r, 0)) emit jumpTo(it->data(Qt::UserRole).toInt());
  });
  connect(table_, &QTableWidget::itemChanged, this, [this](QTableWidgetItem* it) {
    if (filling_ || it->column() != 3 || !series_) return;
    const int id = table_->item(it->row(), 0)->data(Qt::UserRole).toInt();
    const QString text = it->text();
    // Later: the change refills this table, which must not delete the item whose signal
    // is being delivered.
    QMetaObject::invokeMethod(
        this,
        [this, id, text, series = series_] {
          const Measurement* m = store_->listFor(*series)->find(id);
          if (!m || QString::fromStdString(m->text) == text) return;
          Measurement edited = *m;
          edited.text = text.toStdString();
          store_->replace(*series, edited);
        },
        Qt::QueuedConnection);
  });
  connect(delete_, &QPushButton::clicked, this, [this] {
    if (series_ && selected() >= 0) store_->remove(*series_, selected());
  });
  connect(exportJson_, &QPushButton::clicked, this, [this] { exportAs(false); });
  connect(exportCsv_, &QPushButton::clicked, this, [this] { exportAs(true); });
  refresh();
}

void FindingsPanel::setSeries(std::shared_ptr<LoadedSeries> series) {
  series_ = std::move(series);
  refresh();
}

int FindingsPanel::selected() const {
  const int r = table_->currentRow();
  if (r < 0 || !table_->item(r, 0) || !table_->item(r, 0)->isSelected()) return -1;
  return table_->item(r, 0)->data(Qt::UserRole).toInt();
}

void FindingsPanel::select(int id) {
  for (int r = 0; r < table_->rowCount(); ++r)
    if (table_->item(r, 0)->data(Qt::UserRole).toInt() == id) {
      table_->selectRow(r);
      return;
    }
  table_->clearSelection();
}

void FindingsPanel::refresh() {
  const int keep = selected();
  filling_ = true;
  table_->setRowCount(0);
  const bool any = series_ && series_->volume;
  if (any) {
    const auto list = store_->listFor(*series_);
    table_->setRowCount(static_cast<int>(list->items().size()));
    int r = 0;
    for (const auto& m : list->items()) {
      auto* id = new QTableWidgetItem(QString::number(m.id));
      id->setData(Qt::UserRole, m.id);
      id->setFlags(id->flags() & ~Qt::ItemIsEditable);
      auto* kind = new QTableWidgetItem(kindName(m.kind));
      kind->setFlags(kind->flags() & ~Qt::ItemIsEditable);
      const std::string value = m.kind == MeasurementKind::Point ? std::string() : store_->describe(*series_, m);
      auto* val = new QTableWidgetItem(QString::fromStdString(value));
      val->setFlags(val->flags() & ~Qt::ItemIsEditable);
      table_->setItem(r, 0, id);
      table_->setItem(r, 1, kind);
      table_->setItem(r, 2, val);
      table_->setItem(r, 3, new QTableWidgetItem(QString::fromStdString(m.text)));
      ++r;
    }
    table_->resizeRowsToContents();
  }
  filling_ = false;
  if (keep >= 0) select(keep);
  const bool has = table_->rowCount() > 0;
  delete_->setEnabled(has);
  exportJson_->setEnabled(has);
  exportCsv_->setEnabled(has);
  if (!any) note_->setText("No series shown.");
  else if (!MeasurementStore::canSave(*series_))
    note_->setText("Not saved: this image has no DICOM series UID (NIfTI, NRRD). Export to keep the measurements.");
  else if (!has) note_->setText("No measurements. Choose a tool in the Measure menu and draw on a view.");
  else note_->setText("Saved in the study database with the series.");
}

bool FindingsPanel::exportTo(const QString& path, bool csv, QString* error) const {
  if (!series_ || !series_->volume) {
    if (error) *error = "no series shown";
    return false;
  }
  MeasurementSource src;
  src.seriesInstanceUid = series_->info.series.seriesInstanceUid;
  src.studyInstanceUid = series_->info.study.studyInstanceUid;
  src.frameOfReferenceUid = series_->info.series.frameOfReferenceUid;
  src.volume = series_->info.splitLabel;
  src.units = series_->info.units;
  const auto& items = store_->listFor(*series_)->items();
  // Statistics only over a completely loaded, single-valued image.
  const Volume* image = series_->complete && !series_->isColor() ? series_->volume.get() : nullptr;
  const std::string text = csv ? exportMeasurementsCsv(items, image, src) : exportMeasurementsJson(items, image, src);
  if (auto st = writeFileDurably(path.toStdString(), text); !st) {
    if (error) *error = QString::fromStdString(st.error().toString());
    return false;
  }
  return true;
}

void FindingsPanel::exportAs(bool csv) {
  const QString f = QFileDialog::getSaveFileName(this, csv ? "Export measurements (CSV)" : "Export measurements (JSON)",
                                                 csv ? "measurements.csv" : "measurements.json",
                                                 csv ? "CSV (*.csv)" : "JSON (*.json)");
  if (f.isEmpty()) return;
  QString error;
  if (!exportTo(f, csv, &error)) note_->setText("Export failed: " + error);
  else note_->setText("Exported " + f);
}

}  // namespace lumen::gui
