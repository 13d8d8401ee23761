#include "lumen/imaging/BatchJobs.h"

#include <sqlite3.h>

namespace lumen::batch {

namespace {

// One prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) error_ = sqlite3_errmsg(db);
  }
  ~Statement() { sqlite3_finalize(s_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  void bind(int i, const std::string& v) { sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
  void bind(int i, int v) { sqlite3_bind_int(s_, i, v); }
  int step() { return sqlite3_step(s_); }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(s_, c);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  int integer(int c) const { return sqlite3_column_int(s_, c); }
  std::string lastError() const { return sqlite3_errmsg(db_); }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  std::string error_;
};

Error dbError(const std::string& what, const std::string& why) {
  return Error(ErrorCode::Database, "job database: " + what + ": " + why);
}

StudyJob rowOf(const Statement& s) {
  StudyJob j;
  j.studyUid = s.text(0);
  j.position = s.integer(1);
  j.status = s.text(2);
  j.attempts = s.integer(3);
  j.owner = s.text(4);
  j.lastError = s.text(5);
  j.result = s.text(6);
  return j;
}

constexpr const char* kColumns = "study_uid, position, status, attempts, owner, last_error, result";

}  // namespace

JobDatabase::JobDatabase(sqlite3* db) : db_(db) {}
JobDatabase::~JobDatabase() { sqlite3_close(db_); }

Status JobDatabase::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    const std::string why = msg ? msg : "error";
    sqlite3_free(msg);
    return dbError(sql, why);
  }
  return {};
}

Result<std::unique_ptr<JobDatabase>> JobDatabase::open(const std::filesystem::path& file) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    const std::string why = db ? sqlite3_errmsg(db) : "cannot open";
    sqlite3_close(db);
    return Error(ErrorCode::Database, why, file.string());
  }
  sqlite3_busy_timeout(db, 60000);  // the batch's workers take turns writing
  std::unique_ptr<JobDatabase> j(new JobDatabase(db));
  // WAL: readers (batch status) never wait for a worker; FULL: a finished study is on disk
  // before the worker goes on (a crash never forgets a result that was sent).
  if (auto st = j->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                        "CREATE TABLE IF NOT EXISTS config(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                        "CREATE TABLE IF NOT EXISTS studies(study_uid TEXT PRIMARY KEY, position INTEGER NOT NULL,"
                        "  status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,"
                        "  owner TEXT NOT NULL DEFAULT '', last_error TEXT NOT NULL DEFAULT '',"
                        "  result TEXT NOT NULL DEFAULT '');");
      !st)
    return Error(ErrorCode::Database, st.error().message, file.string());
  return j;
}

Status JobDatabase::setConfig(const std::string& key, const std::string& value) {
  Statement s(db_, "INSERT INTO config(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  if (!s.ok()) return dbError("config", s.error());
  s.bind(1, key);
  s.bind(2, value);
  if (s.step() != SQLITE_DONE) return dbError("config", s.lastError());
  return {};
}

Result<std::string> JobDatabase::config(const std::string& key) {
  Statement s(db_, "SELECT value FROM config WHERE key = ?");
  if (!s.ok()) return dbError("config", s.error());
  s.bind(1, key);
  const int rc = s.step();
  if (rc == SQLITE_ROW) return s.text(0);
  if (rc == SQLITE_DONE) return std::string();
  return dbError("config", s.lastError());
}

Result<std::size_t> JobDatabase::addStudies(const std::vector<std::string>& studyUids) {
  if (auto st = exec("BEGIN IMMEDIATE"); !st) return st.error();
  std::size_t added = 0;
  {
    Statement next(db_, "SELECT COALESCE(MAX(position) + 1, 0) FROM studies");
    if (!next.ok() || next.step() != SQLITE_ROW) {
      (void)exec("ROLLBACK");
      return dbError("adding studies", next.ok() ? next.lastError() : next.error());
    }
    int position = next.integer(0);
    for (const auto& uid : studyUids) {
      Statement one(db_, "INSERT OR IGNORE INTO studies(study_uid, position) VALUES (?, ?)");
      one.bind(1, uid);
      one.bind(2, position);
      if (one.step() != SQLITE_DONE) {
        (void)exec("ROLLBACK");
        return dbError("adding studies", one.lastError());
      }
      if (sqlite3_changes(db_) == 1) {
        ++added;
        ++position;
      }
    }
  }
  if (auto st = exec("COMMIT"); !st) return st.error();
  return added;
}

Result<std::size_t> JobDatabase::releaseInterrupted() {
  if (auto st = exec("UPDATE studies SET status = 'pending', last_error = 'interrupted (its worker stopped: ' || owner || ')',"
                     " owner = '' WHERE status = 'running'");
      !st)
    return st.error();
  return static_cast<std::size_t>(sqlite3_changes(db_));
}

Result<std::optional<StudyJob>> JobDatabase::claim(int task, int tasks, int maxAttempts, const std::string& owner) {
  if (auto st = exec("BEGIN IMMEDIATE"); !st) return st.error();
  std::optional<StudyJob> out;
  {
    Statement pick(db_, (std::string("SELECT ") + kColumns +
                         " FROM studies WHERE status = 'pending' OR (status = 'failed' AND attempts < ?3)"
                         " ORDER BY position % ?1 = ?2 DESC, attempts, position LIMIT 1")
                            .c_str());
    if (!pick.ok()) {
      (void)exec("ROLLBACK");
      return dbError("claim", pick.error());
    }
    pick.bind(1, tasks);
    pick.bind(2, task - 1);
    pick.bind(3, maxAttempts);
    const int rc = pick.step();
    if (rc == SQLITE_ROW) {
      out = rowOf(pick);
      Statement mark(db_, "UPDATE studies SET status = 'running', owner = ?, attempts = attempts + 1 WHERE study_uid = ?");
      mark.bind(1, owner);
      mark.bind(2, out->studyUid);
      if (mark.step() != SQLITE_DONE) {
        (void)exec("ROLLBACK");
        return dbError("claim", mark.lastError());
      }
      out->status = "running";
      out->owner = owner;
      ++out->attempts;
    } else if (rc != SQLITE_DONE) {
      (void)exec("ROLLBACK");
      return dbError("claim", pick.lastError());
    }
  }
  if (auto st = exec("COMMIT"); !st) return st.error();
  return out;
}

Status JobDatabase::finish(const std::string& studyUid, bool ok, const std::string& error, const std::string& resultJson) {
  Statement s(db_, "UPDATE studies SET status = ?, owner = '', last_error = ?, result = ? WHERE study_uid = ?");
  if (!s.ok()) return dbError("finish", s.error());
  s.bind(1, std::string(ok ? "done" : "failed"));
  s.bind(2, error);
  s.bind(3, resultJson);
  s.bind(4, studyUid);
  if (s.step() != SQLITE_DONE) return dbError("finish", s.lastError());
  return {};
}

Result<std::vector<StudyJob>> JobDatabase::all() {
  Statement s(db_, (std::string("SELECT ") + kColumns + " FROM studies ORDER BY position").c_str());
  if (!s.ok()) return dbError("list", s.error());
  std::vector<StudyJob> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(rowOf(s));
  if (rc != SQLITE_DONE) return dbError("list", s.lastError());
  return out;
}

}  // namespace lumen::batch
