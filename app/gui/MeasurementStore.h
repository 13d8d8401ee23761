#pragma once
// The reader's measurements of every series shown, one undoable list per volume of a
// series, read from the study database on first use and saved back after every change
// (in order, off the GUI thread). Views draw and edit through it; the Findings panel
// lists it.

#include <QObject>
#include <QString>
#include <QThreadPool>

#include <map>
#include <memory>

#include "ViewModel.h"
#include "lumen/core/Measurement.h"

namespace lumen::gui {

class MeasurementStore : public QObject {
  Q_OBJECT
 public:
  /// `dataDir`: the study database's folder ("" = the default one).
  explicit MeasurementStore(QString dataDir, QObject* parent = nullptr);
  ~MeasurementStore() override;

  /// The list of the series (created, and read from the database, on first use).
  std::shared_ptr<MeasurementList> listFor(const LoadedSeries& s);
  /// True when the series can be saved (it has a series UID); else the list lives as long
  /// as the window and only an export keeps it.
  static bool canSave(const LoadedSeries& s);

  int add(const LoadedSeries& s, Measurement m);
  void replace(const LoadedSeries& s, const Measurement& m);
  void remove(const LoadedSeries& s, int id);
  bool undo(const LoadedSeries& s);
  bool redo(const LoadedSeries& s);
  /// The same for a series known only by its key (no longer shown); false when unknown.
  bool undo(const QString& key);
  bool redo(const QString& key);

  /// ROI statistics, cached until the measurement or the voxels change; null when the
  /// series is still loading or the kind has none.
  const RoiStatistics* statistics(const LoadedSeries& s, const Measurement& m);
  /// One line for the view and the list (value, statistics and units).
  std::string describe(const LoadedSeries& s, const Measurement& m);

  /// Waits until every save has reached the database (closing the window).
  void flush();

  static QString keyOf(const LoadedSeries& s);

 signals:
  /// The measurements of the series with this key changed (edit, undo, load).
  void changed(const QString& key);
  /// The reader changed them (add, edit, delete; not undo or redo).
  void edited(const QString& key);
  void message(const QString& text);

 private:
  struct Entry {
    std::shared_ptr<MeasurementList> list;
    std::string seriesUid, volume;  // where it is saved ("" uid: not saved)
    /// The stored measurements could not be read: nothing is written over them.
    bool readFailed = false;
    std::map<int, std::pair<std::uint64_t, RoiStatistics>> stats;  // by id: (revision, value)
    const Volume* statsVolume = nullptr;
  };
  Entry& entry(const LoadedSeries& s);
  void changedList(const QString& key);
  RoiStatistics scratch_;  // statistics of a shape being dragged (not cached)

  QString dataDir_;
  std::map<QString, Entry> entries_;
  QThreadPool saver_;  // one thread: saves reach the database in the order they were made
};

}  // namespace lumen::gui
