#pragma once
// The job database of a batch (`lumen-cli batch`): one SQLite file next to the results,
// shared by every worker of the batch (local threads or Slurm array tasks on one node).
// It makes a batch restartable and idempotent: a finished study is never done again, a
// failed one is retried up to a limit with its reason kept, and a study whose worker died
// (scancel, kill) goes back to pending when the batch is run again.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lumen/core/Result.h"

struct sqlite3;

namespace lumen::batch {

struct StudyJob {
  std::string studyUid;
  int position = 0;      // order of the batch's input: worker k of n takes positions k-1 mod n first
  std::string status;    // pending, running, done, failed
  int attempts = 0;
  std::string owner;     // the worker holding it (while running)
  std::string lastError;
  std::string result;    // JSON of the finished study (timings, results, numbers)
};

class JobDatabase {
 public:
  /// Opens (creating) the job database; concurrent workers wait for each other's writes.
  static Result<std::unique_ptr<JobDatabase>> open(const std::filesystem::path& file);
  ~JobDatabase();
  JobDatabase(const JobDatabase&) = delete;
  JobDatabase& operator=(const JobDatabase&) = delete;

  Status setConfig(const std::string& key, const std::string& value);
  /// The value, or "" when it was never set.
  Result<std::string> config(const std::string& key);

  /// Adds the studies not there yet, after the others (a study already there keeps its
  /// state); returns how many were new.
  Result<std::size_t> addStudies(const std::vector<std::string>& studyUids);
  /// Studies left running by workers that are gone go back to pending, the interruption
  /// kept as their last error. Call only when no worker of the batch runs.
  Result<std::size_t> releaseInterrupted();
  /// Takes the next study that is pending, or failed with fewer than `maxAttempts`
  /// attempts, and marks it running by `owner`: first from share `task` (1-based) of
  /// `tasks` (positions task-1, task-1+tasks, ...), then, when that share has none left,
  /// from the others (a task that finishes early takes over studies the slower ones have
  /// not started).
  Result<std::optional<StudyJob>> claim(int task, int tasks, int maxAttempts, const std::string& owner);
  /// Records the outcome of a claimed study.
  Status finish(const std::string& studyUid, bool ok, const std::string& error, const std::string& resultJson);
  Result<std::vector<StudyJob>> all();

 private:
  explicit JobDatabase(sqlite3* db);
  Status exec(const char* sql);
  sqlite3* db_;
};

}  // namespace lumen::batch
