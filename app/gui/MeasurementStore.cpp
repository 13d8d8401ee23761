#include "MeasurementStore.h"

#include <QCoreApplication>
#include <QMetaObject>
#include <QPointer>
#include <QRunnable>

#include <algorithm>

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
    e.seriesUid = s.info.series.seriesInstanceUid;
    e.volume = s.info.splitLabel;
    auto db = db::StudyDatabase::open(dataDirOf(dataDir_));
    Result<std::string> doc = db ? (*db)->measurementDocument(e.seriesUid, e.volume) : Result<std::string>(db.error());
    QString problem;
    if (!doc) {
      problem = QString::fromStdString(doc.error().toString());
    } else if (auto list = measurementsFromDocument(*doc, (dataDirOf(dataDir_) / "lumen.db").string()); !list) {
      problem = QString::fromStdString(list.error().toString());
    } else {
      e.list->reset(std::move(*list));
    }
    if (!problem.isEmpty()) {
      // Saving an empty or new list now would overwrite what is stored: not saved.
      e.readFailed = true;
      emit message("error: the stored measurements of this series cannot be read (" + problem +
                   "); new ones are not saved until it is opened again");
    }
  }
  return e;
}

std::shared_ptr<MeasurementList> MeasurementStore::listFor(const LoadedSeries& s) { return entry(s).list; }

void MeasurementStore::changedList(const QString& key) {
  Entry& e = entries_[key];
  if (!e.seriesUid.empty() && !e.readFailed) {
    const std::string doc = measurementsToDocument(e.list->items());
    const std::string uid = e.seriesUid, volume = e.volume;
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
  emit changed(key);
}

int MeasurementStore::add(const LoadedSeries& s, Measurement m) {
  const int id = entry(s).list->add(std::move(m));
  changedList(keyOf(s));
  emit edited(keyOf(s));
  return id;
}

void MeasurementStore::replace(const LoadedSeries& s, const Measurement& m) {
  if (!entry(s).list->replace(m)) return;
  changedList(keyOf(s));
  emit edited(keyOf(s));
}

void MeasurementStore::remove(const LoadedSeries& s, int id) {
  if (!entry(s).list->remove(id)) return;
  changedList(keyOf(s));
  emit edited(keyOf(s));
}

bool MeasurementStore::undo(const LoadedSeries& s) {
  entry(s);
  return undo(keyOf(s));
}

bool MeasurementStore::redo(const LoadedSeries& s) {
  entry(s);
  return redo(keyOf(s));
}

bool MeasurementStore::undo(const QString& key) {
  auto it = entries_.find(key);
  if (it == entries_.end() || !it->second.list->undo()) return false;
  changedList(key);
  return true;
}

bool MeasurementStore::redo(const QString& key) {
  auto it = entries_.find(key);
  if (it == entries_.end() || !it->second.list->redo()) return false;
  changedList(key);
  return true;
}

const RoiStatistics* MeasurementStore::statistics(const LoadedSeries& s, const Measurement& m) {
  if (!isRoi(m.kind) || !s.complete || !s.volume || s.isColor()) return nullptr;
  Entry& e = entry(s);
  if (e.statsVolume != s.volume.get()) {
    e.stats.clear();
    e.statsVolume = s.volume.get();
  }
  // A shape being dragged differs from the stored one of its id: computed, not cached.
  const Measurement* stored = e.list->find(m.id);
  const bool asStored = stored && stored->points.size() == m.points.size() &&
                        std::equal(m.points.begin(), m.points.end(), stored->points.begin(),
                                   [](const Vec3& a, const Vec3& b) { return a.x == b.x && a.y == b.y && a.z == b.z; });
  if (!asStored) {
    auto st = roiStatistics(m, *s.volume);
    if (!st) return nullptr;
    scratch_ = *st;
    return &scratch_;
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
