#include "MeasurementStore.h"

#include <QCoreApplication>
#include <QMetaObject>
#include <QPointer>
#include <QRunnable>

#include "lumen/imaging/MeasurementIO.h"
#include "lumen/imaging/StudyDatabase.h"

namespace lumen::gui {

namespace {
std::filesystem::path dataDirOf(const QString& d) {
  return d.isEmpty() ? db::StudyDatabase::defaultDataDir() : std::filesystem::path(d.toStdString());
}
}  // namespace

MeasurementStore::MeasurementStore(QString dataDir, QObject* parent) : QObject(parent), dataDir_(std::move(dataDir)) {
  saver_.setMaxThreadCount(1);
}

MeasurementStore::~MeasurementStore() { flush(); }

QString MeasurementStore::keyOf(const LoadedSeries& s) {
  const auto& uid = s.info.series.seriesInstanceUid;
  // Files without a series UID (NIfTI, NRRD) are told apart by where they came from.
  return uid.empty() ? "file:" + QString::fromStdString(s.source)
                     : QString::fromStdString(uid) + "|" + QString::fromStdString(s.info.splitLabel);
}

bool MeasurementStore::canSave(const LoadedSeries& s) { return !s.info.series.seriesInstanceUid.empty(); }

MeasurementStore::Entry& MeasurementStore::entry(const LoadedSeries& s) {
  const QString key = keyOf(s);
  auto it = entries_.find(key);
  if (it != entries_.end()) return it->second;
  Entry& e = entries_[key];
  e.list = std::make_shared<MeasurementList>();
  if (canSave(s)) {
    auto db = db::StudyDatabase::open(dataDirOf(dataDir_));
    Result<std::string> doc = db ? (*db)->measurementDocument(s.info.series.seriesInstanceUid, s.info.splitLabel)
                                 : Result<std::string>(db.error());
    if (!doc) {
      emit message("error: measurements of this series cannot be read: " + QString::fromStdString(doc.error().toString()));
    } else if (auto list = measurementsFromDocument(*doc, (dataDirOf(dataDir_) / "lumen.db").string()); !list) {
      emit message("error: " + QString::fromStdString(list.error().toString()));
    } else {
      e.list->reset(std::move(*list));
    }
  }
  return e;
}

std::shared_ptr<MeasurementList> MeasurementStore::listFor(const LoadedSeries& s) { return entry(s).list; }

void MeasurementStore::changedList(const LoadedSeries& s) {
  Entry& e = entry(s);
  if (canSave(s)) {
    const std::string doc = measurementsToDocument(e.list->items());
    const std::string uid = s.info.series.seriesInstanceUid, volume = s.info.splitLabel;
    const std::filesystem::path dir = dataDirOf(dataDir_);
    QPointer<MeasurementStore> self(this);
    saver_.start([self, doc, uid, volume, dir] {
      auto db = db::StudyDatabase::open(dir);
      Status st = db ? (*db)->saveMeasurementDocument(uid, volume, doc) : Status(db.error());
      if (st) return;
      const QString text = "error: measurements not saved: " + QString::fromStdString(st.error().toString());
      QMetaObject::invokeMethod(
          qApp, [self, text] {
            if (self) emit self->message(text);
          },
          Qt::QueuedConnection);
    });
  }
  emit changed(keyOf(s));
}

int MeasurementStore::add(const LoadedSeries& s, Measurement m) {
  const int id = entry(s).list->add(std::move(m));
  changedList(s);
  emit edited(keyOf(s));
  return id;
}

void MeasurementStore::replace(const LoadedSeries& s, const Measurement& m) {
  if (!entry(s).list->replace(m)) return;
  changedList(s);
  emit edited(keyOf(s));
}

void MeasurementStore::remove(const LoadedSeries& s, int id) {
  if (!entry(s).list->remove(id)) return;
  changedList(s);
  emit edited(keyOf(s));
}

bool MeasurementStore::undo(const LoadedSeries& s) {
  if (!entry(s).list->undo()) return false;
  changedList(s);
  return true;
}

bool MeasurementStore::redo(const LoadedSeries& s) {
  if (!entry(s).list->redo()) return false;
  changedList(s);
  return true;
}

const RoiStatistics* MeasurementStore::statistics(const LoadedSeries& s, const Measurement& m) {
  if (!isRoi(m.kind) || !s.complete || !s.volume || s.isColor()) return nullptr;
  Entry& e = entry(s);
  if (e.statsVolume != s.volume.get()) {
    e.stats.clear();
    e.statsVolume = s.volume.get();
  }
  auto it = e.stats.find(m.id);
  if (it != e.stats.end() && it->second.first == e.list->revision()) return &it->second.second;
  auto st = roiStatistics(m, *s.volume);
  if (!st) return nullptr;
  auto& slot = e.stats[m.id];
  slot = {e.list->revision(), *st};
  return &slot.second;
}

std::string MeasurementStore::describe(const LoadedSeries& s, const Measurement& m) {
  return lumen::describe(m, statistics(s, m), s.info.units);
}

void MeasurementStore::flush() { saver_.waitForDone(); }

}  // namespace lumen::gui
