#include "StudyBrowser.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDateEdit>
#include <QDragEnterEvent>
#include <QDrag>
#include <QDropEvent>
#include <QFileDialog>
#include <QSignalBlocker>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMessageBox>
#include <QMimeData>
#include <QPointer>
#include <QPushButton>
#include <QSplitter>
#include <QTreeWidget>
#include <QUrl>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <map>

#include "SliceImage.h"
#include "ViewportGrid.h"

namespace lumen::gui {

namespace {
QString qs(const std::string& s) { return QString::fromStdString(s); }
}  // namespace

QString prettyDate(const std::string& d) {
  if (d.size() == 8) return qs(d.substr(0, 4) + "-" + d.substr(4, 2) + "-" + d.substr(6, 2));
  return qs(d);
}

QString prettyName(const std::string& pn) {
  QString n = qs(pn.substr(0, pn.find('=')));
  n.replace('^', ' ');
  return n.simplified().isEmpty() ? QStringLiteral("(no name)") : n.simplified();
}

namespace {

// Series thumbnails drag as a list of files; viewports and other apps understand it.
class SeriesList : public QListWidget {
 public:
  using QListWidget::QListWidget;
  std::function<QStringList(int)> files;

 protected:
  void startDrag(Qt::DropActions) override {
    QListWidgetItem* item = currentItem();
    if (!item || !files) return;
    const QStringList f = files(row(item));
    if (f.isEmpty()) return;
    auto* mime = new QMimeData;
    mime->setData(kSeriesMimeType, f.join('\n').toUtf8());
    QList<QUrl> urls;
    for (const auto& p : f) urls << QUrl::fromLocalFile(p);
    mime->setUrls(urls);
    auto* drag = new QDrag(this);
    drag->setMimeData(mime);
    if (!item->icon().isNull()) drag->setPixmap(item->icon().pixmap(64, 64));
    drag->exec(Qt::CopyAction);
  }
};
}  // namespace

StudyBrowser::StudyBrowser(std::filesystem::path dataDir, QWidget* parent) : QWidget(parent), dataDir_(std::move(dataDir)) {
  setAcceptDrops(true);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);

  search_ = new QLineEdit;
  search_->setPlaceholderText("Search name, ID, description, accession");
  search_->setClearButtonEnabled(true);
  modality_ = new QComboBox;
  modality_->addItems({"All", "CT", "MR", "CR", "DX", "MG", "US", "XA", "PT", "NM", "RTDOSE", "OT"});
  modality_->setToolTip("Only studies with a series of this modality");
  auto* row1 = new QHBoxLayout;
  row1->addWidget(search_, 1);
  row1->addWidget(modality_);
  layout->addLayout(row1);

  useDates_ = new QCheckBox("Dates");
  from_ = new QDateEdit(QDate::currentDate().addYears(-1));
  to_ = new QDateEdit(QDate::currentDate());
  for (auto* d : {from_, to_}) {
    d->setCalendarPopup(true);
    d->setDisplayFormat("yyyy-MM-dd");
    d->setEnabled(false);
  }
  auto* row2 = new QHBoxLayout;
  row2->addWidget(useDates_);
  row2->addWidget(from_);
  row2->addWidget(new QLabel("to"));
  row2->addWidget(to_);
  row2->addStretch();
  layout->addLayout(row2);

  auto* split = new QSplitter(Qt::Vertical);
  studyTree_ = new QTreeWidget;
  studyTree_->setHeaderLabels({"Patient", "ID", "Date", "Study", "Modalities", "Series", "Images"});
  studyTree_->setRootIsDecorated(false);
  studyTree_->setAlternatingRowColors(true);
  studyTree_->setSelectionMode(QAbstractItemView::SingleSelection);
  studyTree_->header()->setStretchLastSection(false);
  studyTree_->header()->setSectionResizeMode(QHeaderView::ResizeToContents);
  split->addWidget(studyTree_);

  auto* list = new SeriesList;
  list->files = [this](int row) { return seriesFiles(row); };
  seriesList_ = list;
  seriesList_->setViewMode(QListView::IconMode);
  seriesList_->setIconSize(QSize(96, 96));
  seriesList_->setGridSize(QSize(124, 140));
  seriesList_->setResizeMode(QListView::Adjust);
  seriesList_->setMovement(QListView::Static);
  seriesList_->setWordWrap(true);
  seriesList_->setDragEnabled(true);
  seriesList_->setDragDropMode(QAbstractItemView::DragOnly);
  seriesList_->setToolTip("Double-click to open, or drag onto a viewport");
  split->addWidget(seriesList_);
  layout->addWidget(split, 1);

  auto* importFolder = new QPushButton("Import folder...");
  auto* importFiles = new QPushButton("Import files...");
  auto* del = new QPushButton("Delete...");
  del->setToolTip("Remove the selected study from the database");
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(importFolder);
  buttons->addWidget(importFiles);
  buttons->addStretch();
  buttons->addWidget(del);
  layout->addLayout(buttons);

  connect(search_, &QLineEdit::textChanged, this, &StudyBrowser::refresh);
  connect(modality_, &QComboBox::currentTextChanged, this, &StudyBrowser::refresh);
  connect(useDates_, &QCheckBox::toggled, this, [this](bool on) {
    from_->setEnabled(on);
    to_->setEnabled(on);
    refresh();
  });
  connect(from_, &QDateEdit::dateChanged, this, &StudyBrowser::refresh);
  connect(to_, &QDateEdit::dateChanged, this, &StudyBrowser::refresh);
  connect(studyTree_, &QTreeWidget::currentItemChanged, this, [this](QTreeWidgetItem* item) {
    if (!item) return;
    const int row = studyTree_->indexOfTopLevelItem(item);
    if (row >= 0 && row < static_cast<int>(studies_.size())) showSeriesOf(studies_[static_cast<std::size_t>(row)].id);
  });
  connect(seriesList_, &QListWidget::itemDoubleClicked, this, [this](QListWidgetItem* item) {
    const QStringList f = seriesFiles(seriesList_->row(item));
    if (!f.isEmpty()) emit openSeries(f);
  });
  connect(importFolder, &QPushButton::clicked, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, "Import DICOM folder");
    if (!dir.isEmpty()) importPaths({dir}, false);
  });
  connect(importFiles, &QPushButton::clicked, this, [this] {
    const QStringList files = QFileDialog::getOpenFileNames(this, "Import DICOM files");
    if (!files.isEmpty()) importPaths(files, false);
  });
  connect(del, &QPushButton::clicked, this, &StudyBrowser::deleteSelectedStudy);
}

StudyBrowser::~StudyBrowser() {
  cancelImport();
  importJob_.waitForFinished();
}

bool StudyBrowser::open(QString* error) {
  auto db = db::StudyDatabase::open(dataDir_);
  if (!db) {
    if (error) *error = qs(db.error().toString());
    return false;
  }
  db_ = std::move(db.value());
  refresh();
  return true;
}

db::StudyQuery StudyBrowser::currentQuery() const {
  db::StudyQuery q;
  q.text = search_->text().trimmed().toStdString();
  if (modality_->currentIndex() > 0) q.modality = modality_->currentText().toStdString();
  if (useDates_->isChecked()) {
    q.dateFrom = from_->date().toString("yyyyMMdd").toStdString();
    q.dateTo = to_->date().toString("yyyyMMdd").toStdString();
  }
  return q;
}

namespace {
QStringList studyColumns(const db::StudyRow& s) {
  return {prettyName(s.patient.name), qs(s.patient.patientId), prettyDate(s.info.date), qs(s.info.description),
          qs(s.modalities),           QString::number(s.seriesCount), QString::number(s.instanceCount)};
}
// The same rows in the same order, by `key`: a list that only needs its counts updated.
template <class Row, class Key>
bool sameRows(const std::vector<Row>& a, const std::vector<Row>& b, Key key) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [&](const Row& x, const Row& y) { return key(x) == key(y); });
}
QString seriesText(const db::SeriesRow& s) {
  return QString("%1 %2\n%3\n%4 image(s)").arg(qs(s.info.modality)).arg(s.info.seriesNumber).arg(qs(s.info.description)).arg(s.instanceCount);
}
}  // namespace

void StudyBrowser::liveRefresh() {
  if (!db_) return;
  auto rows = db_->studies(currentQuery());
  if (!rows) {
    emit message(qs(rows.error().toString()));
    return;
  }
  const auto selected = selectedSeries();
  const std::string selectedUid = selected ? selected->info.seriesInstanceUid : std::string();
  const bool sameStudies = sameRows(*rows, studies_, [](const db::StudyRow& r) { return r.id; });
  studies_ = std::move(rows.value());
  if (sameStudies) {
    for (std::size_t i = 0; i < studies_.size(); ++i) {
      const QStringList cols = studyColumns(studies_[i]);
      auto* item = studyTree_->topLevelItem(static_cast<int>(i));
      for (int c = 0; c < cols.size(); ++c)
        if (item->text(c) != cols[c]) item->setText(c, cols[c]);
    }
  } else {
    // A new study: the list is made again, quietly, with the study shown kept current.
    const QSignalBlocker quiet(studyTree_);
    studyTree_->clear();
    for (const auto& st : studies_) {
      auto* item = new QTreeWidgetItem(studyColumns(st));
      studyTree_->addTopLevelItem(item);
      if (st.id == shownStudyId_) studyTree_->setCurrentItem(item);
    }
    if (!studyTree_->currentItem() && studyTree_->topLevelItemCount() > 0) studyTree_->setCurrentItem(studyTree_->topLevelItem(0));
  }
  const int row = studyTree_->currentItem() ? studyTree_->indexOfTopLevelItem(studyTree_->currentItem()) : -1;
  if (row < 0 || row >= static_cast<int>(studies_.size())) return;
  const std::int64_t studyId = studies_[static_cast<std::size_t>(row)].id;
  if (studyId != shownStudyId_) {  // the study shown is gone (or none was): show the current one
    showSeriesOf(studyId);
    return;
  }
  auto series = db_->series(studyId);
  if (!series) return;
  const bool sameSeries = sameRows(*series, series_, [](const db::SeriesRow& r) { return r.info.seriesInstanceUid; });
  if (sameSeries) {
    series_ = std::move(series.value());
    for (std::size_t i = 0; i < series_.size(); ++i) {
      auto* item = seriesList_->item(static_cast<int>(i));
      if (!item || item->text() == seriesText(series_[i])) continue;
      item->setText(seriesText(series_[i]));
      const auto made = thumbnailInstances_.find(series_[i].info.seriesInstanceUid);
      if (made != thumbnailInstances_.end() && series_[i].instanceCount >= 2 * made->second)
        requestThumbnail(seriesFiles(static_cast<int>(i)), series_[i].info.seriesInstanceUid);
    }
    return;
  }
  // A new series of the shown study: the list made again, keeping the thumbnails it had.
  std::map<std::string, QIcon> icons;
  for (std::size_t i = 0; i < series_.size(); ++i)
    if (auto* item = seriesList_->item(static_cast<int>(i))) icons[series_[i].info.seriesInstanceUid] = item->icon();
  showSeriesOf(studyId, &icons);
  reselectSeries(selectedUid);
}

void StudyBrowser::reselectSeries(const std::string& seriesUid) {
  if (seriesUid.empty()) return;
  for (std::size_t i = 0; i < series_.size(); ++i)
    if (series_[i].info.seriesInstanceUid == seriesUid) seriesList_->setCurrentRow(static_cast<int>(i));
}

void StudyBrowser::refresh() {
  if (!db_) return;
  auto rows = db_->studies(currentQuery());
  if (!rows) {
    emit message(qs(rows.error().toString()));
    return;
  }
  const std::int64_t selected = studyTree_->currentItem() && studyTree_->indexOfTopLevelItem(studyTree_->currentItem()) >= 0 &&
                                        static_cast<std::size_t>(studyTree_->indexOfTopLevelItem(studyTree_->currentItem())) < studies_.size()
                                    ? studies_[static_cast<std::size_t>(studyTree_->indexOfTopLevelItem(studyTree_->currentItem()))].id
                                    : -1;
  studies_ = std::move(rows.value());
  studyTree_->clear();
  seriesList_->clear();
  series_.clear();
  shownStudyId_ = -1;
  for (const auto& s : studies_) {
    auto* item = new QTreeWidgetItem(studyColumns(s));
    studyTree_->addTopLevelItem(item);
    if (s.id == selected) studyTree_->setCurrentItem(item);
  }
  if (!studyTree_->currentItem() && studyTree_->topLevelItemCount() > 0) studyTree_->setCurrentItem(studyTree_->topLevelItem(0));
}

std::optional<db::SeriesRow> StudyBrowser::selectedSeries() const {
  const int row = seriesList_->currentRow();
  if (row < 0 || row >= static_cast<int>(series_.size()) || !seriesList_->currentItem() ||
      !seriesList_->currentItem()->isSelected())
    return std::nullopt;
  return series_[static_cast<std::size_t>(row)];
}

void StudyBrowser::selectSeries(int row) { seriesList_->setCurrentRow(row); }

int StudyBrowser::studyCount() const { return static_cast<int>(studies_.size()); }
int StudyBrowser::seriesCount() const { return static_cast<int>(series_.size()); }

void StudyBrowser::setSearchText(const QString& text) { search_->setText(text); }

void StudyBrowser::selectStudy(int row) {
  if (row >= 0 && row < studyTree_->topLevelItemCount()) studyTree_->setCurrentItem(studyTree_->topLevelItem(row));
}

void StudyBrowser::showSeriesOf(std::int64_t studyId, const std::map<std::string, QIcon>* icons) {
  shownStudyId_ = studyId;
  seriesList_->clear();
  auto rows = db_->series(studyId);
  if (!rows) {
    emit message(qs(rows.error().toString()));
    return;
  }
  series_ = std::move(rows.value());
  for (std::size_t i = 0; i < series_.size(); ++i) {
    const auto& s = series_[i];
    auto* item = new QListWidgetItem(seriesText(s));
    item->setToolTip(qs(s.info.seriesInstanceUid));
    seriesList_->addItem(item);
    // Results (SEG, SR, reports) have no image to show: a tile says what they are.
    if (const QImage tile = resultThumbnail(qs(s.info.modality), 96); !tile.isNull()) {
      item->setIcon(QIcon(QPixmap::fromImage(tile)));
      continue;
    }
    if (icons)
      if (auto it = icons->find(s.info.seriesInstanceUid); it != icons->end()) {
        item->setIcon(it->second);  // made before: not decoded again
        continue;
      }
    QPixmap placeholder(96, 96);
    placeholder.fill(QColor(30, 30, 34));
    item->setIcon(QIcon(placeholder));
    requestThumbnail(seriesFiles(static_cast<int>(i)), s.info.seriesInstanceUid);
  }
}

void StudyBrowser::requestThumbnail(const QStringList& files, const std::string& seriesUid) {
  thumbnailInstances_[seriesUid] = static_cast<int>(files.size());
  const int seq = ++thumbnailRequests_[seriesUid];
  QPointer<QListWidget> list(seriesList_);
  // Decoding runs in the pool. The icon goes to the row that shows the series then (the
  // list may have been rebuilt meanwhile), and only from the newest request for it: an
  // older thumbnail that finishes later does not replace a newer one.
  (void)QtConcurrent::run([this, list, seriesUid, seq, files] {
    QImage thumb = seriesThumbnail(files, 96);
    if (thumb.isNull()) return;
    QMetaObject::invokeMethod(
        list,
        [this, list, seriesUid, seq, thumb] {
          if (!list || thumbnailRequests_[seriesUid] != seq) return;
          for (std::size_t i = 0; i < series_.size(); ++i)
            if (series_[i].info.seriesInstanceUid == seriesUid && static_cast<int>(i) < list->count())
              list->item(static_cast<int>(i))->setIcon(QIcon(QPixmap::fromImage(thumb)));
        },
        Qt::QueuedConnection);
  });
}

namespace {
QStringList pathsOf(const Result<std::vector<db::InstanceRow>>& rows) {
  QStringList files;
  if (rows)
    for (const auto& i : *rows) files << QString::fromStdString(i.path);
  return files;
}
}  // namespace

QStringList StudyBrowser::seriesFiles(int row) const {
  if (!db_ || row < 0 || row >= static_cast<int>(series_.size())) return {};
  return pathsOf(db_->instances(series_[static_cast<std::size_t>(row)].id));
}

QStringList StudyBrowser::filesOfSeries(const std::string& seriesUid) const {
  return db_ ? pathsOf(db_->instancesOfSeries(seriesUid)) : QStringList();
}

QStringList StudyBrowser::filesOfStudy(const std::string& studyUid) const {
  return db_ ? pathsOf(db_->instancesOfStudy(studyUid)) : QStringList();
}

void StudyBrowser::importPaths(const QStringList& paths, bool copy) {
  if (importing_ || paths.isEmpty()) return;
  importing_ = true;
  importCancel_ = CancelToken{};
  emit importStarted();
  const auto dir = dataDir_;
  CancelToken cancel = importCancel_;
  importJob_ = QtConcurrent::run([this, dir, paths, copy, cancel] {
    // The worker uses its own connection: SQLite connections belong to one thread.
    QString summary;
    QStringList skipped;
    auto db = db::StudyDatabase::open(dir);
    if (!db) {
      summary = qs(db.error().toString());
    } else {
      std::vector<std::filesystem::path> in;
      for (const auto& p : paths) in.emplace_back(p.toStdString());
      db::ImportOptions o;
      o.copyToStore = copy;
      auto r = (*db)->import(in, o, Progress([this](double f, std::string_view m) {
                               emit importProgress(f, QString::fromUtf8(m.data(), static_cast<int>(m.size())));
                             }),
                             cancel);
      if (!r) {
        summary = qs(r.error().toString());
      } else {
        summary = QString("Imported %1 file(s): %2 new, %3 updated, %4 already known, %5 skipped")
                      .arg(r->filesScanned)
                      .arg(r->instancesAdded)
                      .arg(r->instancesUpdated)
                      .arg(r->instancesUnchanged)
                      .arg(r->skipped.size());
        for (const auto& s : r->skipped) skipped << qs(s.path + ": " + s.reason);
      }
    }
    QMetaObject::invokeMethod(
        this,
        [this, summary, skipped] {
          importing_ = false;
          refresh();
          emit importFinished(summary, skipped);
        },
        Qt::QueuedConnection);
  });
}

void StudyBrowser::cancelImport() { importCancel_.cancel(); }

void StudyBrowser::deleteSelectedStudy() {
  QTreeWidgetItem* item = studyTree_->currentItem();
  if (!item || !db_) return;
  const int row = studyTree_->indexOfTopLevelItem(item);
  if (row < 0 || row >= static_cast<int>(studies_.size())) return;
  // A copy: the dialog below runs a nested event loop, in which an import finishing
  // refreshes studies_ (and the row may then be another study).
  const db::StudyRow st = studies_[static_cast<std::size_t>(row)];
  bool managed = false;
  if (auto series = db_->series(st.id))
    for (const auto& se : *series)
      if (auto inst = db_->instances(se.id))
        for (const auto& i : *inst) managed = managed || i.managed;
  QMessageBox box(QMessageBox::Warning, "Delete study",
                  QString("Remove the study \"%1\" of %2 (%3 series, %4 images) from the database?\n\n"
                          "Files you imported in place stay on disk.")
                      .arg(qs(st.info.description), prettyName(st.patient.name))
                      .arg(st.seriesCount)
                      .arg(st.instanceCount),
                  QMessageBox::Yes | QMessageBox::Cancel, this);
  box.setObjectName("DeleteStudyQuestion");
  box.setDefaultButton(QMessageBox::Cancel);
  QCheckBox* alsoFiles = nullptr;
  if (managed) {
    alsoFiles = new QCheckBox("Also delete the copies in Lumen's managed store");
    box.setCheckBox(alsoFiles);
  }
  if (box.exec() != QMessageBox::Yes) return;
  // Still there? Found again by its UID, whatever happened to the list meanwhile.
  auto now = db_->studies();
  if (!now) {
    emit message(qs(now.error().toString()));
    return;
  }
  const auto it = std::find_if(now->begin(), now->end(), [&](const db::StudyRow& r) {
    return r.info.studyInstanceUid == st.info.studyInstanceUid;
  });
  if (it == now->end()) {
    emit message("The study is no longer in the database; nothing was deleted");
    refresh();
    return;
  }
  auto r = db_->deleteStudy(it->id, alsoFiles && alsoFiles->isChecked());
  if (!r) emit message(qs(r.error().toString()));
  else emit message(QString("Removed %1 image(s) from the database; %2 file(s) deleted").arg(r->instancesRemoved).arg(r->filesDeleted));
  refresh();
}

void StudyBrowser::dragEnterEvent(QDragEnterEvent* e) {
  if (e->mimeData()->hasUrls()) e->acceptProposedAction();
}

void StudyBrowser::dropEvent(QDropEvent* e) {
  QStringList paths;
  for (const QUrl& u : e->mimeData()->urls())
    if (u.isLocalFile()) paths << u.toLocalFile();
  if (paths.isEmpty()) return;
  e->acceptProposedAction();
  importPaths(paths, false);
}

}  // namespace lumen::gui
