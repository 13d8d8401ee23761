#include "lumen/imaging/StudyDatabase.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <cstring>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

#include "lumen/core/DurableFile.h"
#include "lumen/core/Log.h"
#include "lumen/core/Parallel.h"

namespace lumen::db {

namespace fs = std::filesystem;

namespace {

// Each entry upgrades the schema by one version; never edit a released entry, add one.
const char* const kMigrations[] = {
    // 1: the four levels of the DICOM information model.
    R"SQL(
    CREATE TABLE patients(
      id INTEGER PRIMARY KEY,
      patient_id TEXT NOT NULL, name TEXT NOT NULL, birth_date TEXT NOT NULL, sex TEXT NOT NULL,
      UNIQUE(patient_id, name, birth_date));
    CREATE TABLE studies(
      id INTEGER PRIMARY KEY,
      patient_ref INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
      study_uid TEXT NOT NULL UNIQUE,
      date TEXT NOT NULL DEFAULT '', time TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
      accession TEXT NOT NULL DEFAULT '', study_id TEXT NOT NULL DEFAULT '');
    CREATE TABLE series(
      id INTEGER PRIMARY KEY,
      study_ref INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
      series_uid TEXT NOT NULL UNIQUE,
      modality TEXT NOT NULL DEFAULT '', number INTEGER NOT NULL DEFAULT 0, description TEXT NOT NULL DEFAULT '',
      body_part TEXT NOT NULL DEFAULT '', date TEXT NOT NULL DEFAULT '', time TEXT NOT NULL DEFAULT '');
    CREATE TABLE instances(
      id INTEGER PRIMARY KEY,
      series_ref INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
      sop_uid TEXT NOT NULL UNIQUE,
      instance_number INTEGER NOT NULL DEFAULT 0,
      path TEXT NOT NULL,
      managed INTEGER NOT NULL DEFAULT 0);
    )SQL",
    // 2: file size and frame count (change detection, counts without touching files),
    //    and indexes for the browser's joins.
    R"SQL(
    ALTER TABLE instances ADD COLUMN file_size INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE instances ADD COLUMN frames INTEGER NOT NULL DEFAULT 1;
    CREATE INDEX idx_instances_series ON instances(series_ref);
    CREATE INDEX idx_series_study ON series(study_ref);
    CREATE INDEX idx_studies_patient ON studies(patient_ref);
    )SQL",
    // 3: the reader's measurements, one JSON document per volume of a series (a series
    //    may be split into volumes: echoes, phases). No foreign key: a series opened from
    //    a folder without importing it keeps its measurements too.
    R"SQL(
    CREATE TABLE measurements(
      series_uid TEXT NOT NULL,
      volume TEXT NOT NULL DEFAULT '',
      document TEXT NOT NULL,
      modified TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
      PRIMARY KEY(series_uid, volume));
    )SQL",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == StudyDatabase::kSchemaVersion,
              "one migration per schema version");

// Prepared statement with RAII and typed binding.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) error_ = sqlite3_errmsg(db);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return s_ != nullptr; }
  const std::string& error() const { return error_; }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  int step() { return sqlite3_step(s_); }
  /// Next row: true while there is one. Anything but a row or the end (SQLITE_BUSY after
  /// the busy timeout, I/O errors) stops the loop and is kept for ok(): a query that
  /// could not finish must never read as "no (more) rows".
  bool next() {
    rc_ = sqlite3_step(s_);
    return rc_ == SQLITE_ROW;
  }
  bool finished() const { return rc_ == SQLITE_DONE; }
  int resultCode() const { return rc_; }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  int i32(int c) const { return sqlite3_column_int(s_, c); }
  std::string text(int c) const {
    const auto* t = sqlite3_column_text(s_, c);
    return t ? std::string(reinterpret_cast<const char*>(t), static_cast<std::size_t>(sqlite3_column_bytes(s_, c)))
             : std::string();
  }

 private:
  sqlite3_stmt* s_ = nullptr;
  std::string error_;
  int rc_ = SQLITE_OK;
};

Error dbError(sqlite3* db, const std::string& what) {
  return Error(ErrorCode::Database, what + ": " + sqlite3_errmsg(db));
}

// A query that stopped before its end: the database was busy or failing.
Error incomplete(sqlite3* db, const Stmt& s, const std::string& what) {
  const int rc = s.resultCode();
  std::string why = rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? "the study database is busy (locked by another program)"
                                                              : std::string(sqlite3_errstr(rc));
  (void)db;
  return Error(ErrorCode::Database, what + ": " + why);
}

// UIDs are digits and dots; anything else (a hostile header) must not shape a path.
std::string safeComponent(const std::string& uid) {
  const bool clean = !uid.empty() && uid.size() <= 64 && uid != "." && uid != ".." &&
                     std::all_of(uid.begin(), uid.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
  if (clean) return uid;
  std::ostringstream s;
  s << "x" << std::hex << std::hash<std::string>{}(uid);
  return s.str();
}

// Copies `src` to `dest` so that `dest` is either absent or complete and on disk before
// the database records it (see DurableFile.h).
Status durableCopy(const fs::path& src, const fs::path& dest) {
  const fs::path tmp = temporaryPathFor(dest);
  const auto sysError = [](const char* what) { return Error(ErrorCode::Io, std::string(what) + ": " + std::strerror(errno)); };
  const int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return sysError("cannot open the file");
  const int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    Error e = sysError("cannot create a file in the store");
    ::close(in);
    return e;
  }
  std::vector<char> buf(1 << 20);
  Status st;
  for (;;) {
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      st = sysError("cannot read the file");
      break;
    }
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(out, buf.data() + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        st = sysError("cannot write into the store");
        break;
      }
      done += w;
    }
    if (!st) break;
  }
  ::close(in);
  if (::close(out) != 0 && st) st = sysError("cannot write into the store");
  if (!st) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return st;
  }
  return commitFile(tmp, dest);
}

}  // namespace

fs::path StudyDatabase::defaultDataDir() {
  if (const char* d = std::getenv("LUMEN_DATA_DIR"); d && *d) return fs::path(d);
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return fs::path(x) / "lumen";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".local" / "share" / "lumen";
  return fs::current_path() / ".lumen";
}

StudyDatabase::StudyDatabase(sqlite3* db, fs::path dataDir) : db_(db), dataDir_(std::move(dataDir)) {}

StudyDatabase::~StudyDatabase() { sqlite3_close_v2(db_); }

Status StudyDatabase::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "unknown error";
    sqlite3_free(err);
    return Error(ErrorCode::Database, m, (dataDir_ / "lumen.db").string());
  }
  return {};
}

int StudyDatabase::schemaVersion() const {
  auto v = readSchemaVersion();
  return v ? *v : -1;
}

Result<int> StudyDatabase::readSchemaVersion() const {
  Stmt s(db_, "PRAGMA user_version");
  if (!s.ok()) return Error(ErrorCode::Database, "cannot read the schema version: " + s.error(), (dataDir_ / "lumen.db").string());
  if (!s.next()) return incomplete(db_, s, "cannot read the schema version");
  return s.i32(0);
}

Status StudyDatabase::migrate(int target) {
  const std::string file = (dataDir_ / "lumen.db").string();
  for (;;) {
    // The version is read inside the write transaction: two programs opening a new data
    // folder at once take turns, and the second sees the first one's steps as done.
    if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
    auto v = readSchemaVersion();
    if (!v || *v > kSchemaVersion || *v >= target) {
      (void)exec("ROLLBACK");
      if (!v) return v.error();
      if (*v > kSchemaVersion) {
        std::ostringstream m;
        m << "database schema version " << *v << " is newer than this Lumen understands (" << kSchemaVersion
          << "); update Lumen";
        return Error(ErrorCode::Database, m.str(), file);
      }
      return {};
    }
    // One transaction per step: a failed migration leaves the previous version intact.
    auto s = exec(kMigrations[*v]);
    if (s) {
      const std::string pragma = "PRAGMA user_version = " + std::to_string(*v + 1);
      s = exec(pragma.c_str());
    }
    if (!s) {
      (void)exec("ROLLBACK");
      return s;
    }
    if (auto c = exec("COMMIT"); !c) return c;
    LUMEN_INFO("study database migrated to schema version " << (*v + 1));
  }
}

namespace {
Result<sqlite3*> openRaw(const fs::path& dataDir, int busyTimeoutMs = 5000) {
  std::error_code ec;
  fs::create_directories(dataDir, ec);
  if (ec) return Error(ErrorCode::Io, "cannot create data folder: " + ec.message(), dataDir.string());
  const fs::path file = dataDir / "lumen.db";
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : "cannot open";
    sqlite3_close_v2(db);
    return Error(ErrorCode::Database, "cannot open the study database: " + m, file.string());
  }
  sqlite3_busy_timeout(db, busyTimeoutMs);  // the GUI and lumen-cli may share it
  // Switching a new file to WAL can meet another opener doing the same; SQLite then answers
  // "locked" at once instead of waiting, so this step retries for the same timeout.
  // synchronous=FULL: a committed import is on disk before it is reported done.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(busyTimeoutMs);
  for (;;) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;", nullptr,
                                nullptr, &err);
    if (rc == SQLITE_OK) break;
    std::string m = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    sqlite3_close_v2(db);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) m = "the study database is busy (locked by another program)";
    return Error(ErrorCode::Database, "cannot configure the study database: " + m, file.string());
  }
  return db;
}
}  // namespace

Result<std::unique_ptr<StudyDatabase>> StudyDatabase::open(const fs::path& dataDir, int busyTimeoutMs) {
  auto raw = openRaw(dataDir, busyTimeoutMs);
  if (!raw) return raw.error();
  std::unique_ptr<StudyDatabase> db(new StudyDatabase(*raw, dataDir));
  if (auto s = db->migrate(kSchemaVersion); !s) return s.error();
  return db;
}

Status StudyDatabase::createAtVersion(const fs::path& dataDir, int version) {
  auto raw = openRaw(dataDir);
  if (!raw) return raw.error();
  StudyDatabase db(*raw, dataDir);
  return db.migrate(std::clamp(version, 0, kSchemaVersion));
}

Status StudyDatabase::importBatch(const std::vector<dicom::FileInfo>& files, std::size_t begin, std::size_t end,
                                  const ImportOptions& options, ImportReport& report, bool alreadyInStore) {
  Stmt patient(db_,
               "INSERT INTO patients(patient_id, name, birth_date, sex) VALUES(?1, ?2, ?3, ?4) "
               "ON CONFLICT(patient_id, name, birth_date) DO UPDATE SET sex = excluded.sex RETURNING id");
  Stmt study(db_,
             "INSERT INTO studies(patient_ref, study_uid, date, time, description, accession, study_id) "
             "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(study_uid) DO UPDATE SET date = excluded.date "
             "RETURNING id");
  Stmt series(db_,
              "INSERT INTO series(study_ref, series_uid, modality, number, description, body_part, date, time) "
              "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(series_uid) DO UPDATE SET modality = excluded.modality "
              "RETURNING id");
  Stmt findInstance(db_, "SELECT id, path, managed FROM instances WHERE sop_uid = ?1");
  Stmt insertInstance(db_,
                      "INSERT INTO instances(series_ref, sop_uid, instance_number, path, managed, file_size, frames) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  Stmt updateInstance(db_, "UPDATE instances SET path = ?2, managed = ?3, file_size = ?4 WHERE id = ?1");
  for (Stmt* s : {&patient, &study, &series, &findInstance, &insertInstance, &updateInstance})
    if (!s->ok()) return Error(ErrorCode::Database, "cannot prepare statement: " + s->error());

  if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
  auto rollback = [&](Error e) -> Status {
    (void)exec("ROLLBACK");
    return e;
  };
  for (std::size_t i = begin; i < end; ++i) {
    const dicom::FileInfo& f = files[i];
    if (f.study.studyInstanceUid.empty() || f.series.seriesInstanceUid.empty() || f.sopInstanceUid.empty()) {
      report.skipped.push_back({f.path, "missing Study, Series or SOP Instance UID: cannot be filed in the database"});
      continue;
    }
    patient.reset();
    patient.bind(1, f.patient.patientId).bind(2, f.patient.name).bind(3, f.patient.birthDate).bind(4, f.patient.sex);
    if (patient.step() != SQLITE_ROW) return rollback(dbError(db_, "patient insert failed"));
    const std::int64_t pid = patient.i64(0);
    patient.step();

    study.reset();
    study.bind(1, pid).bind(2, f.study.studyInstanceUid).bind(3, f.study.date).bind(4, f.study.time)
        .bind(5, f.study.description).bind(6, f.study.accessionNumber).bind(7, f.study.studyId);
    if (study.step() != SQLITE_ROW) return rollback(dbError(db_, "study insert failed"));
    const std::int64_t stid = study.i64(0);
    study.step();

    series.reset();
    series.bind(1, stid).bind(2, f.series.seriesInstanceUid).bind(3, f.series.modality).bind(4, f.series.seriesNumber)
        .bind(5, f.series.description).bind(6, f.series.bodyPart).bind(7, f.series.date).bind(8, f.series.time);
    if (series.step() != SQLITE_ROW) return rollback(dbError(db_, "series insert failed"));
    const std::int64_t seid = series.i64(0);
    series.step();

    findInstance.reset();
    findInstance.bind(1, f.sopInstanceUid);
    std::optional<std::int64_t> existingId;
    std::string existingPath;
    bool existingManaged = false;
    if (findInstance.next()) {
      existingId = findInstance.i64(0);
      existingPath = findInstance.text(1);
      existingManaged = findInstance.i32(2) != 0;
    } else if (!findInstance.finished()) {
      return rollback(incomplete(db_, findInstance, "instance lookup failed"));
    }

    std::string path = f.path;
    bool managed = alreadyInStore;
    if (options.copyToStore && !alreadyInStore) {
      if (existingId && existingManaged) {
        ++report.instancesUnchanged;
        continue;
      }
      const fs::path dest = managedPath(f.study.studyInstanceUid, f.series.seriesInstanceUid, f.sopInstanceUid);
      std::error_code ec;
      fs::create_directories(dest.parent_path(), ec);
      if (!fs::exists(dest, ec)) {
        if (auto c = durableCopy(f.path, dest); !c) {
          report.skipped.push_back({f.path, "cannot copy into the managed store: " + c.error().message});
          continue;
        }
      }
      path = dest.string();
      managed = true;
    }

    if (!existingId) {
      insertInstance.reset();
      insertInstance.bind(1, seid).bind(2, f.sopInstanceUid).bind(3, f.frames.empty() ? 0 : f.frames[0].instanceNumber)
          .bind(4, path).bind(5, managed ? 1 : 0).bind(6, static_cast<std::int64_t>(f.fileSize))
          .bind(7, static_cast<std::int64_t>(f.numberOfFrames));
      if (insertInstance.step() != SQLITE_DONE) return rollback(dbError(db_, "instance insert failed"));
      ++report.instancesAdded;
    } else if (existingPath == path) {
      ++report.instancesUnchanged;
    } else {
      std::error_code ec;
      if (!managed && fs::exists(existingPath, ec)) {
        // Same instance at a second place: keep the first reference.
        ++report.instancesUnchanged;
        continue;
      }
      updateInstance.reset();
      updateInstance.bind(1, *existingId).bind(2, path).bind(3, managed ? 1 : 0).bind(4, static_cast<std::int64_t>(f.fileSize));
      if (updateInstance.step() != SQLITE_DONE) return rollback(dbError(db_, "instance update failed"));
      ++report.instancesUpdated;
    }
  }
  return exec("COMMIT");
}

Status StudyDatabase::storeResult(const std::filesystem::path& file) { return storeResults({file}); }

Status StudyDatabase::storeResults(const std::vector<std::filesystem::path>& files) {
  ImportOptions io;
  io.copyToStore = true;
  auto stored = import(files, io);
  if (!stored) return stored.error();
  if (stored->instancesAdded + stored->instancesUpdated + stored->instancesUnchanged != files.size())
    return Error(ErrorCode::Database, "the study database did not take it" +
                                          (stored->skipped.empty() ? std::string() : ": " + stored->skipped.front().reason),
                 stored->skipped.empty() ? files.front().string() : stored->skipped.front().path);
  return {};
}

Result<ImportReport> StudyDatabase::import(const std::vector<fs::path>& inputs, const ImportOptions& options,
                                           const Progress& progress, const CancelToken& cancel) {
  ImportReport report;
  std::vector<std::string> notes;
  progress.unknown("Listing files");
  const auto files = dicom::enumerateInputs(inputs, report.skipped, notes);
  report.filesScanned = files.size();
  // Parse and commit in batches: memory stays bounded for huge folders, and each batch
  // is one transaction (a cancelled or crashed import keeps the batches already done).
  const std::size_t kBatch = std::max<std::size_t>(1, options.batchSize);
  const int threads = resolveThreadCount(options.threads);
  for (std::size_t b = 0; b < files.size(); b += kBatch) {
    if (cancel.isCancelled()) return Error(ErrorCode::Cancelled, "import cancelled");
    const std::size_t e = std::min(files.size(), b + kBatch);
    std::vector<std::optional<Result<dicom::FileInfo>>> parsed(e - b);
    parallelFor(e - b, threads, cancel, [&](std::size_t i, int) {
      parsed[i] = dicom::readFileInfo(files[b + i]);
      // Results beside the images (SEG, SR, PDF, ...) are series of their study too.
      if (!*parsed[i] && parsed[i]->error().code == ErrorCode::Unsupported) {
        auto id = dicom::readFileIdentity(files[b + i]);
        if (id && dicom::isResultObjectClass(id->sopClassUid) && !id->study.studyInstanceUid.empty() &&
            !id->series.seriesInstanceUid.empty() && !id->sopInstanceUid.empty())
          parsed[i] = std::move(id);
      }
    });
    if (cancel.isCancelled()) return Error(ErrorCode::Cancelled, "import cancelled");
    std::vector<dicom::FileInfo> ok;
    for (auto& r : parsed) {
      if (!r) continue;
      if (r->ok()) ok.push_back(std::move(r->value()));
      else report.skipped.push_back({r->error().resource, r->error().message});
    }
    if (auto s = importBatch(ok, 0, ok.size(), options, report); !s) return s.error();
    progress.report(static_cast<double>(e) / static_cast<double>(files.size()), "Importing");
  }
  return report;
}

fs::path StudyDatabase::managedPath(const std::string& studyUid, const std::string& seriesUid,
                                    const std::string& sopUid) const {
  return storeDir() / safeComponent(studyUid) / safeComponent(seriesUid) / (safeComponent(sopUid) + ".dcm");
}

Result<ImportReport> StudyDatabase::addStoredInstances(const std::vector<dicom::FileInfo>& files) {
  ImportReport report;
  report.filesScanned = files.size();
  if (auto s = importBatch(files, 0, files.size(), ImportOptions{}, report, /*alreadyInStore=*/true); !s) return s.error();
  return report;
}

Result<std::optional<InstanceRow>> StudyDatabase::findInstance(const std::string& sopUid) {
  Stmt s(db_, "SELECT id, sop_uid, path, managed, instance_number FROM instances WHERE sop_uid = ?1");
  if (!s.ok()) return Error(ErrorCode::Database, s.error());
  s.bind(1, sopUid);
  if (s.next()) return std::optional<InstanceRow>(InstanceRow{s.i64(0), s.text(1), s.text(2), s.i32(3) != 0, s.i32(4)});
  if (!s.finished()) return incomplete(db_, s, "looking up an instance");
  return std::optional<InstanceRow>();
}

Result<std::optional<std::int64_t>> StudyDatabase::studyIdOf(const std::string& studyUid) {
  Stmt s(db_, "SELECT id FROM studies WHERE study_uid = ?1");
  if (!s.ok()) return Error(ErrorCode::Database, s.error());
  s.bind(1, studyUid);
  if (s.next()) return std::optional<std::int64_t>(s.i64(0));
  if (!s.finished()) return incomplete(db_, s, "looking up a study");
  return std::optional<std::int64_t>();
}

Result<std::vector<InstanceRow>> StudyDatabase::instancesWhere(const char* sql, const std::string& uid) {
  Stmt s(db_, sql);
  if (!s.ok()) return Error(ErrorCode::Database, s.error());
  s.bind(1, uid);
  std::vector<InstanceRow> rows;
  while (s.next()) rows.push_back({s.i64(0), s.text(1), s.text(2), s.i32(3) != 0, s.i32(4)});
  if (!s.finished()) return incomplete(db_, s, "listing instances");
  return rows;
}

Result<std::vector<InstanceRow>> StudyDatabase::instancesOfStudy(const std::string& studyUid) {
  return instancesWhere(
      "SELECT i.id, i.sop_uid, i.path, i.managed, i.instance_number FROM instances i JOIN series se ON i.series_ref = se.id "
      "JOIN studies st ON se.study_ref = st.id WHERE st.study_uid = ?1 ORDER BY se.number, i.instance_number, i.path",
      studyUid);
}

Result<std::vector<InstanceRow>> StudyDatabase::instancesOfSeries(const std::string& seriesUid) {
  return instancesWhere(
      "SELECT i.id, i.sop_uid, i.path, i.managed, i.instance_number FROM instances i JOIN series se ON i.series_ref = se.id "
      "WHERE se.series_uid = ?1 ORDER BY i.instance_number, i.path",
      seriesUid);
}

Result<std::vector<PatientRow>> StudyDatabase::patients() {
  Stmt s(db_,
         "SELECT p.id, p.patient_id, p.name, p.birth_date, p.sex, COUNT(st.id) FROM patients p "
         "LEFT JOIN studies st ON st.patient_ref = p.id GROUP BY p.id ORDER BY p.name, p.patient_id");
  if (!s.ok()) return Error(ErrorCode::Database, s.error());
  std::vector<PatientRow> rows;
  while (s.next()) {
    PatientRow r;
    r.id = s.i64(0);
    r.info = {s.text(1), s.text(2), s.text(3), s.text(4)};
    r.studyCount = s.i32(5);
    rows.push_back(std::move(r));
  }
  if (!s.finished()) return incomplete(db_, s, "listing patients");
  return rows;
}

Result<std::vector<StudyRow>> StudyDatabase::studies(const StudyQuery& q) {
  Stmt s(db_,
         "SELECT st.id, st.patient_ref, p.patient_id, p.name, p.birth_date, p.sex, st.study_uid, st.date, st.time, "
         "st.description, st.accession, st.study_id, "
         "(SELECT group_concat(m, '\\') FROM (SELECT DISTINCT se.modality AS m FROM series se WHERE se.study_ref = st.id "
         "ORDER BY m)), "
         "(SELECT COUNT(*) FROM series se WHERE se.study_ref = st.id), "
         "(SELECT COUNT(*) FROM instances i JOIN series se ON i.series_ref = se.id WHERE se.study_ref = st.id) "
         "FROM studies st JOIN patients p ON p.id = st.patient_ref "
         "WHERE (?1 = '' OR lower(p.name) LIKE '%' || lower(?1) || '%' OR lower(p.patient_id) LIKE '%' || lower(?1) || '%' "
         "  OR lower(st.description) LIKE '%' || lower(?1) || '%' OR lower(st.accession) LIKE '%' || lower(?1) || '%' "
         "  OR EXISTS (SELECT 1 FROM series se WHERE se.study_ref = st.id AND lower(se.description) LIKE '%' || lower(?1) || '%')) "
         "AND (?2 = '' OR EXISTS (SELECT 1 FROM series se WHERE se.study_ref = st.id AND upper(se.modality) = upper(?2))) "
         "AND (?3 = '' OR st.date >= ?3) AND (?4 = '' OR st.date <= ?4) "
         "ORDER BY st.date DESC, st.time DESC, st.id");
  if (!s.ok()) return Error(ErrorCode::Database, s.error());
  s.bind(1, q.text).bind(2, q.modality).bind(3, q.dateFrom).bind(4, q.dateTo);
  std::vector<StudyRow> rows;
  while (s.next()) {
    StudyRow r;
    r.id = s.i64(0);
    r.patientId = s.i64(1);
    r.patient = {s.text(2), s.text(3), s.text(4), s.text(5)};
    r.info.studyInstanceUid = s.text(6);
    r.info.date = s.text(7);
    r.info.time = s.text(8);
    r.info.description = s.text(9);
    r.info.accessionNumber = s.text(10);
    r.info.studyId = s.text(11);
    r.modalities = s.text(12);
    r.seriesCount = s.i32(13);
    r.instanceCount = s.i32(14);
    rows.push_back(std::move(r));
  }
  if (!s.finished()) return incomplete(db_, s, "listing studies");
  return rows;
}

Result<std::vector<SeriesRow>> StudyDatabase::series(std::int64_t studyId) {
  Stmt s(db_,
         "SELECT se.id, se.study_ref, se.series_uid, se.modality, se.number, se.description, se.body_part, se.date, "
         "se.time, (SELECT COUNT(*) FROM instances i WHERE i.series_ref = se.id) FROM series se "
         "WHERE se.study_ref = ?1 ORDER BY se.number, se.series_uid");
  if (!s.ok()) return Error(ErrorCode::Database, s.error());
  s.bind(1, studyId);
  std::vector<SeriesRow> rows;
  while (s.next()) {
    SeriesRow r;
    r.id = s.i64(0);
    r.studyId = s.i64(1);
    r.info.seriesInstanceUid = s.text(2);
    r.info.modality = s.text(3);
    r.info.seriesNumber = s.i32(4);
    r.info.description = s.text(5);
    r.info.bodyPart = s.text(6);
    r.info.date = s.text(7);
    r.info.time = s.text(8);
    r.instanceCount = s.i32(9);
    rows.push_back(std::move(r));
  }
  if (!s.finished()) return incomplete(db_, s, "listing series");
  return rows;
}

Result<std::vector<InstanceRow>> StudyDatabase::instances(std::int64_t seriesId) {
  return instancesWhere("SELECT id, sop_uid, path, managed, instance_number FROM instances WHERE series_ref = ?1 "
                        "ORDER BY instance_number, path",
                        std::to_string(seriesId));
}

Result<DeleteReport> StudyDatabase::deleteLevel(Level level, std::int64_t id, bool deleteManagedFiles) {
  DeleteReport report;
  std::vector<std::string> managedFiles;
  const bool study = level == Level::Study;
  {
    Stmt s(db_, study ? "SELECT i.path, i.managed FROM instances i JOIN series se ON i.series_ref = se.id WHERE se.study_ref = ?1"
                      : "SELECT i.path, i.managed FROM instances i WHERE i.series_ref = ?1");
    if (!s.ok()) return Error(ErrorCode::Database, s.error());
    s.bind(1, id);
    while (s.next()) {
      ++report.instancesRemoved;
      if (s.i32(1)) managedFiles.push_back(s.text(0));
    }
    if (!s.finished()) return incomplete(db_, s, "listing the files to delete");
  }
  if (auto st = exec("BEGIN IMMEDIATE"); !st) return st.error();
  // The measurements of the series go with them.
  Stmt dm(db_, study ? "DELETE FROM measurements WHERE series_uid IN (SELECT series_uid FROM series WHERE study_ref = ?1)"
                     : "DELETE FROM measurements WHERE series_uid IN (SELECT series_uid FROM series WHERE id = ?1)");
  dm.bind(1, id);
  if (dm.step() != SQLITE_DONE) {
    (void)exec("ROLLBACK");
    return dbError(db_, "delete failed");
  }
  Stmt d(db_, study ? "DELETE FROM studies WHERE id = ?1" : "DELETE FROM series WHERE id = ?1");
  d.bind(1, id);
  if (d.step() != SQLITE_DONE) {
    (void)exec("ROLLBACK");
    return dbError(db_, "delete failed");
  }
  // Studies left without series and patients without studies go too.
  if (auto st = exec("DELETE FROM studies WHERE id NOT IN (SELECT study_ref FROM series);"
                     "DELETE FROM patients WHERE id NOT IN (SELECT patient_ref FROM studies);");
      !st) {
    (void)exec("ROLLBACK");
    return st.error();
  }
  if (auto st = exec("COMMIT"); !st) return st.error();
  if (deleteManagedFiles) {
    const fs::path store = fs::weakly_canonical(storeDir());
    for (const auto& f : managedFiles) {
      std::error_code ec;
      const fs::path p = fs::weakly_canonical(f, ec);
      // Only ever delete inside the managed store, whatever the database says.
      const auto rel = p.lexically_relative(store);
      if (ec || rel.empty() || *rel.begin() == "..") continue;
      if (fs::remove(p, ec)) ++report.filesDeleted;
    }
  }
  return report;
}

Result<DeleteReport> StudyDatabase::deleteStudy(std::int64_t studyId, bool deleteManagedFiles) {
  return deleteLevel(Level::Study, studyId, deleteManagedFiles);
}

Result<DeleteReport> StudyDatabase::deleteSeries(std::int64_t seriesId, bool deleteManagedFiles) {
  return deleteLevel(Level::Series, seriesId, deleteManagedFiles);
}


Status StudyDatabase::saveMeasurementDocument(const std::string& seriesUid, const std::string& volume,
                                              const std::string& document) {
  if (seriesUid.empty()) return Error(ErrorCode::InvalidArgument, "measurements need a series UID to be saved");
  // An empty list removes the row: nothing is kept that the reader deleted.
  Stmt s(db_, document.empty()
                  ? "DELETE FROM measurements WHERE series_uid = ?1 AND volume = ?2"
                  : "INSERT INTO measurements(series_uid, volume, document) VALUES(?1, ?2, ?3) "
                    "ON CONFLICT(series_uid, volume) DO UPDATE SET document = excluded.document, "
                    "modified = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')");
  if (!s.ok()) return Error(ErrorCode::Database, s.error(), (dataDir_ / "lumen.db").string());
  s.bind(1, seriesUid).bind(2, volume);
  if (!document.empty()) s.bind(3, document);
  if (s.step() != SQLITE_DONE) return dbError(db_, "saving measurements failed");
  return {};
}

Result<std::string> StudyDatabase::measurementDocument(const std::string& seriesUid, const std::string& volume) {
  Stmt s(db_, "SELECT document FROM measurements WHERE series_uid = ?1 AND volume = ?2");
  if (!s.ok()) return Error(ErrorCode::Database, s.error(), (dataDir_ / "lumen.db").string());
  s.bind(1, seriesUid).bind(2, volume);
  if (s.next()) return s.text(0);
  if (!s.finished()) return incomplete(db_, s, "reading measurements");
  return std::string();
}

}  // namespace lumen::db
