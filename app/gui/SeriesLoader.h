#pragma once
// Loads a series off the GUI thread: scan, plan, choose a volume, decode. Reports
// progress, can be cancelled, and hands the (zero-filled) volume to the GUI as soon as
// its middle slice is decoded so the first image appears before the series is complete.
// Signals arrive on the GUI thread (queued).

#include <QFuture>
#include <QObject>
#include <QString>
#include <QStringList>

#include <atomic>
#include <memory>

#include "ViewModel.h"
#include "lumen/core/Progress.h"

namespace lumen::gui {

class SeriesLoader : public QObject {
  Q_OBJECT
 public:
  struct Request {
    QStringList paths;
    QString seriesUid;     // empty: any
    int volumeNumber = 0;  // 1-based as `lumen-cli info` lists them; 0: the one with the most slices
  };

  explicit SeriesLoader(QObject* parent = nullptr);
  ~SeriesLoader() override;

  /// Starts loading (cancels a load in progress). Returns a request id.
  int start(const Request& request);
  void cancel();
  bool busy() const { return busy_; }

 signals:
  void progress(int id, double fraction, const QString& message);
  /// The volume exists and its middle slice holds real values (others may still be 0).
  void firstSliceReady(int id, std::shared_ptr<lumen::gui::LoadedSeries> series);
  /// More slices were decoded (throttled).
  void slicesArrived(int id);
  /// All voxels loaded; `notes` lists skipped files and other volumes (one line each).
  void finished(int id, std::shared_ptr<lumen::gui::LoadedSeries> series, const QStringList& notes);
  void failed(int id, const QString& message);

 private:
  std::atomic<bool> busy_{false};
  QFuture<void> worker_;
  int nextId_ = 0;
  CancelToken cancel_;
};

}  // namespace lumen::gui

