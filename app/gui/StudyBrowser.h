#pragma once
// The study browser: patients / studies / series from the study database, search by
// text (name, ID, description, accession), modality and date range, series thumbnails,
// import (menu or drag and drop, in the background with progress and cancel), delete
// with confirmation. Opening a series (double click or drag onto a viewport) hands its
// files to the viewer.

#include <QFuture>
#include <QIcon>
#include <QWidget>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "lumen/core/Progress.h"
#include "lumen/imaging/StudyDatabase.h"

class QCheckBox;
class QComboBox;
class QDateEdit;
class QLineEdit;
class QListWidget;
class QListWidgetItem;
class QTreeWidget;

namespace lumen::gui {

/// A DICOM date (YYYYMMDD) as YYYY-MM-DD, and a person name as the study lists show them.
QString prettyDate(const std::string& dicomDate);
QString prettyName(const std::string& personName);

class StudyBrowser : public QWidget {
  Q_OBJECT
 public:
  /// Asks, then removes the selected study. The study asked about is the one removed, even
  /// when the list changes while the question is open (an import finishing meanwhile).
  void deleteSelectedStudy();
  explicit StudyBrowser(std::filesystem::path dataDir, QWidget* parent = nullptr);
  ~StudyBrowser() override;

  /// Opens the database; false (with the reason) when it cannot be opened.
  bool open(QString* error = nullptr);
  const std::filesystem::path& dataDir() const { return dataDir_; }

  /// Imports in the background (progress / finished signals); copy = managed store.
  void importPaths(const QStringList& paths, bool copy);
  void cancelImport();
  bool importing() const { return importing_; }

  void setSearchText(const QString& text);
  int studyCount() const;
  int seriesCount() const;
  /// Selects study `row` (as listed) and shows its series.
  void selectStudy(int row);
  /// Files of series `row` of the selected study.
  QStringList seriesFiles(int row) const;
  /// The files of a series in the database, by its UID (empty when it is not there).
  QStringList filesOfSeries(const std::string& seriesUid) const;
  /// The files of a study in the database (empty when it is not there).
  QStringList filesOfStudy(const std::string& studyUid) const;
  /// The series selected in the series list (its database row), if any.
  std::optional<db::SeriesRow> selectedSeries() const;
  /// Selects series `row` of the list.
  void selectSeries(int row);

 public slots:
  void refresh();
  /// The same while studies arrive (a retrieve, the listener): counts change in place, the
  /// selected study and series stay selected, thumbnails are made only for new series.
  void liveRefresh();

 signals:
  void openSeries(const QStringList& files);
  /// An import began (the window tracks it as a job, with its own progress and cancel).
  void importStarted();
  void importProgress(double fraction, const QString& message);
  void importFinished(const QString& summary, const QStringList& skipped);
  void message(const QString& text);

 protected:
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;

 private:
  /// Lists the series of a study; `icons` (by series UID) are thumbnails already made.
  void showSeriesOf(std::int64_t studyId, const std::map<std::string, QIcon>* icons = nullptr);
  db::StudyQuery currentQuery() const;
  /// Selects the series with this UID in the list, if it is there.
  void reselectSeries(const std::string& seriesUid);
  void requestThumbnail(const QStringList& files, const std::string& seriesUid);

  std::filesystem::path dataDir_;
  std::unique_ptr<db::StudyDatabase> db_;
  std::vector<db::StudyRow> studies_;
  std::vector<db::SeriesRow> series_;
  QLineEdit* search_ = nullptr;
  QComboBox* modality_ = nullptr;
  QCheckBox* useDates_ = nullptr;
  QDateEdit* from_ = nullptr;
  QDateEdit* to_ = nullptr;
  QTreeWidget* studyTree_ = nullptr;
  QListWidget* seriesList_ = nullptr;
  std::atomic<bool> importing_{false};
  CancelToken importCancel_;
  QFuture<void> importJob_;
  /// Instances a series had when its thumbnail was made: a series still arriving gets a
  /// new one each time its count doubles (its middle image moves as it grows).
  std::map<std::string, int> thumbnailInstances_;
  std::map<std::string, int> thumbnailRequests_;  // the newest request for each series
  std::int64_t shownStudyId_ = -1;  // the study whose series are listed
};

}  // namespace lumen::gui
