#pragma once
// The local study database: patients, studies, series and instances with their files,
// in SQLite (WAL mode) in the user's data directory. Files are referenced where they are
// or copied into a managed store. Re-importing is idempotent; every batch of an import is
// one transaction, so an interrupted import leaves a consistent database.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lumen/core/Metadata.h"
#include "lumen/core/Progress.h"
#include "lumen/core/Result.h"
#include "lumen/imaging/DicomScanner.h"

struct sqlite3;

namespace lumen::db {

struct ImportOptions {
  bool copyToStore = false;  // copy files into the managed store instead of referencing them
  int threads = 0;
  std::size_t batchSize = 256;  // files per transaction
};

struct ImportReport {
  std::size_t filesScanned = 0;
  std::size_t instancesAdded = 0;
  std::size_t instancesUpdated = 0;    // known instance, file moved or changed
  std::size_t instancesUnchanged = 0;  // already imported from the same file
  std::vector<dicom::SkippedFile> skipped;
};

struct PatientRow {
  std::int64_t id = 0;
  PatientInfo info;
  int studyCount = 0;
};

struct StudyRow {
  std::int64_t id = 0;
  std::int64_t patientId = 0;
  PatientInfo patient;
  StudyInfo info;
  std::string modalities;  // distinct modalities of its series, '\'-separated
  int seriesCount = 0;
  int instanceCount = 0;
};

struct SeriesRow {
  std::int64_t id = 0;
  std::int64_t studyId = 0;
  SeriesInfo info;
  int instanceCount = 0;
};

struct InstanceRow {
  std::int64_t id = 0;
  std::string sopInstanceUid;
  std::string path;
  bool managed = false;  // lives in the managed store
  int instanceNumber = 0;
};

/// Study search. Empty fields match everything; text matches patient name or ID, study
/// description, accession number or series description (case-insensitive, substring).
struct StudyQuery {
  std::string text;
  std::string modality;
  std::string dateFrom;  // YYYYMMDD, inclusive
  std::string dateTo;
};

struct DeleteReport {
  std::size_t instancesRemoved = 0;
  std::size_t filesDeleted = 0;  // only managed-store files, only when asked
};

class StudyDatabase {
 public:
  static constexpr int kSchemaVersion = 3;

  /// $LUMEN_DATA_DIR, else $XDG_DATA_HOME/lumen, else ~/.local/share/lumen.
  static std::filesystem::path defaultDataDir();

  /// Opens (creating and migrating as needed) `dataDir`/lumen.db.
  /// `busyTimeoutMs`: how long a query waits for another program's lock before it fails
  /// with "busy" (never an empty answer).
  static Result<std::unique_ptr<StudyDatabase>> open(const std::filesystem::path& dataDir, int busyTimeoutMs = 5000);
  /// For tests of migrations: creates a database at an older schema version.
  static Status createAtVersion(const std::filesystem::path& dataDir, int version);

  ~StudyDatabase();
  StudyDatabase(const StudyDatabase&) = delete;
  StudyDatabase& operator=(const StudyDatabase&) = delete;

  /// -1 when it cannot be read.
  int schemaVersion() const;
  const std::filesystem::path& dataDir() const { return dataDir_; }
  std::filesystem::path storeDir() const { return dataDir_ / "store"; }

  Result<ImportReport> import(const std::vector<std::filesystem::path>& inputs, const ImportOptions& options,
                              const Progress& progress = {}, const CancelToken& cancel = {});
  /// Copies one file Lumen made (a SEG, SR, report) into the managed store, as an instance
  /// of its study; an error, naming the file, when the database does not take it.
  Status storeResult(const std::filesystem::path& file);
  /// The same for the instances of one result series (a derived image series).
  Status storeResults(const std::vector<std::filesystem::path>& files);

  /// Where the managed store keeps an instance: store/<study>/<series>/<sop>.dcm (UIDs
  /// that are not plain digits and dots are hashed, so no header can shape a path).
  std::filesystem::path managedPath(const std::string& studyUid, const std::string& seriesUid,
                                    const std::string& sopUid) const;

  /// Records instances whose files are already complete at their managedPath() (received
  /// from the network), in one transaction. A known SOP instance is updated, not doubled.
  Result<ImportReport> addStoredInstances(const std::vector<dicom::FileInfo>& files);

  /// Finds an instance by its SOP Instance UID.
  Result<std::optional<InstanceRow>> findInstance(const std::string& sopUid);

  /// The database id of a study, by its UID (none when unknown).
  Result<std::optional<std::int64_t>> studyIdOf(const std::string& studyUid);

  /// The files of a study or series given by UID (empty when unknown).
  Result<std::vector<InstanceRow>> instancesOfStudy(const std::string& studyUid);
  Result<std::vector<InstanceRow>> instancesOfSeries(const std::string& seriesUid);

  Result<std::vector<PatientRow>> patients();
  Result<std::vector<StudyRow>> studies(const StudyQuery& query = {});
  Result<std::vector<SeriesRow>> series(std::int64_t studyId);
  Result<std::vector<InstanceRow>> instances(std::int64_t seriesId);

  /// Removes the study (or series) from the database. Files outside the managed store
  /// are never touched; managed copies are deleted only when `deleteManagedFiles`.
  Result<DeleteReport> deleteStudy(std::int64_t studyId, bool deleteManagedFiles);
  Result<DeleteReport> deleteSeries(std::int64_t seriesId, bool deleteManagedFiles);

  /// The measurements of one volume of a series (`volume`: its split label, "" for a
  /// series that is one volume) as a JSON document (MeasurementIO.h); an empty document
  /// removes them. Deleting the series deletes them.
  Status saveMeasurementDocument(const std::string& seriesUid, const std::string& volume, const std::string& document);
  /// "" when there are none.
  Result<std::string> measurementDocument(const std::string& seriesUid, const std::string& volume);

 private:
  StudyDatabase(sqlite3* db, std::filesystem::path dataDir);
  Status migrate(int targetVersion);
  Result<int> readSchemaVersion() const;
  Status exec(const char* sql);
  Status importBatch(const std::vector<dicom::FileInfo>& files, std::size_t begin, std::size_t end,
                     const ImportOptions& options, ImportReport& report, bool alreadyInStore = false);
  Result<std::vector<InstanceRow>> instancesWhere(const char* sql, const std::string& uid);
  enum class Level { Study, Series };
  Result<DeleteReport> deleteLevel(Level level, std::int64_t id, bool deleteManagedFiles);

  sqlite3* db_ = nullptr;
  std::filesystem::path dataDir_;
};

}  // namespace lumen::db
