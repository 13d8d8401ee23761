#pragma once
// DICOM networking (DIMSE, DCMTK's dcmnet): verification, query, retrieve (C-GET into the
// study database, C-MOVE to a listener), send, and the storage listener itself.
//
// Every received instance is durable before it is acknowledged: written under a temporary
// name in the managed store, flushed, renamed into place and committed to the study
// database, and only then does the C-STORE response say success. A crash at any moment
// leaves either the old state or the new one; the sender's retry completes the study.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lumen/core/Progress.h"
#include "lumen/core/Result.h"
#include "lumen/imaging/DicomFile.h"
#include "lumen/imaging/Nodes.h"

namespace lumen::db {
class StudyDatabase;
}

namespace lumen::net {

struct DimseOptions {
  std::string callingAe = "LUMEN";  // our AE title
  int timeoutSeconds = 30;          // connect, association and each message
  std::uint64_t minFreeBytes = 256ull << 20;  // C-GET refuses instances below this much free disk
};

/// C-ECHO. An unreachable or silent node is an error naming it and saying why (refused,
/// timed out after N s, rejected with the peer's reason).
Status echo(const DimseNode& node, const DimseOptions& options);

enum class QueryLevel { Study, Series };

/// Empty fields match everything. Text fields may hold DICOM wildcards (* and ?).
struct QueryFilter {
  QueryLevel level = QueryLevel::Study;
  std::string patientName;
  std::string patientId;
  std::string studyDate;  // YYYYMMDD, or a range YYYYMMDD-YYYYMMDD (either end may be open)
  std::string modality;   // ModalitiesInStudy (study level) or Modality (series level)
  std::string accession;
  std::string studyUid;  // series level: the study whose series to list (all studies matching otherwise)
};

struct QueryMatch {
  std::string studyUid, seriesUid;
  std::string patientName, patientId, patientBirthDate;
  std::string studyDate, studyTime, studyDescription, accession;
  std::string modalities;  // study: ModalitiesInStudy; series: Modality
  std::string seriesDescription;
  int seriesNumber = 0;
  int seriesCount = -1;    // -1: the node did not say
  int instanceCount = -1;
};

Result<std::vector<QueryMatch>> find(const DimseNode& node, const QueryFilter& filter, const DimseOptions& options,
                                     const CancelToken& cancel = {});

struct TransferReport {
  std::size_t stored = 0;     // instances now in the study database
  std::size_t failed = 0;     // instances the peer or Lumen could not transfer
  std::size_t warnings = 0;   // stored with a warning status
  std::vector<std::string> problems;  // one line each, no patient data
};

/// C-GET of a study (or one series of it) into the study database, on one association.
Result<TransferReport> retrieveGet(const DimseNode& node, const std::string& studyUid, const std::string& seriesUid,
                                   db::StudyDatabase& db, const DimseOptions& options, const Progress& progress = {},
                                   const CancelToken& cancel = {});

/// C-MOVE of a study (or series) to `destinationAe`: the node opens its own association
/// to that AE (Lumen's listener when it is Lumen's own AE title). The report counts what
/// the node says it sent.
Result<TransferReport> retrieveMove(const DimseNode& node, const std::string& studyUid, const std::string& seriesUid,
                                    const std::string& destinationAe, const DimseOptions& options,
                                    const Progress& progress = {}, const CancelToken& cancel = {});

/// C-STORE of files. Each is sent in its own transfer syntax (compressed files stay
/// compressed, their bytes are not re-encoded); one that the node refuses is reported and
/// the others still go.
Result<TransferReport> send(const DimseNode& node, const std::vector<std::filesystem::path>& files,
                            const DimseOptions& options, const Progress& progress = {}, const CancelToken& cancel = {});

/// Puts complete received files into the managed store and the study database. Writers on
/// any thread hand over a finished temporary file and wait; one thread commits whatever
/// has arrived in one transaction (group commit), so concurrent associations share the
/// cost of the database's flush without anyone being acknowledged before it.
class InstanceFiler {
 public:
  explicit InstanceFiler(db::StudyDatabase& db);
  ~InstanceFiler();
  InstanceFiler(const InstanceFiler&) = delete;
  InstanceFiler& operator=(const InstanceFiler&) = delete;

  /// Folder for temporary files (on the store's file system, so a rename moves them), this
  /// filer's own. What a crashed filer left in its folder is removed on construction: it
  /// was never acknowledged.
  const std::filesystem::path& incomingDir() const { return incoming_; }

  /// Validates `tmp` (a complete DICOM file), moves it to its managed path and records
  /// it. `expectedSopUid` (if not empty) must match the file. On failure `tmp` is gone.
  Result<dicom::FileInfo> file(const std::filesystem::path& tmp, const std::string& expectedSopUid = {});

  /// As file(), without waiting for the commit: `done` is called (from the committing
  /// thread, or at once when the file is refused) with the outcome. For bulk retrieves,
  /// where nothing is acknowledged per instance; flush() before reporting them stored.
  void fileLater(const std::filesystem::path& tmp, std::function<void(Result<dicom::FileInfo>)> done);

  /// Waits until everything handed over so far is committed (or has failed).
  void flush();

  /// Called (from the committing thread) with each instance once it is committed.
  void setListener(std::function<void(const dicom::FileInfo&)> listener);

 private:
  struct Placed {
    dicom::FileInfo info;
    std::vector<std::filesystem::path> folders;  // to flush before the commit
  };
  Result<Placed> place(const std::filesystem::path& tmp, const std::string& expectedSopUid);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::filesystem::path incoming_;
  int lock_ = -1;  // flock on incoming_/.lock while this filer lives
};

/// The storage listener (SCP): C-ECHO and C-STORE for every storage SOP class, in any
/// transfer syntax, files kept exactly as received. Up to `maxAssociations` at once; more
/// are rejected (not queued), and beyond twice that many callers (served, in a TLS
/// handshake or being rejected) a caller is disconnected unanswered; unknown calling AE
/// titles are rejected when an allow-list is set; a peer silent for `timeoutSeconds` loses
/// its association.
class StorageServer {
 public:
  struct Stats {
    std::atomic<std::uint64_t> stored{0};
    std::atomic<std::uint64_t> failed{0};
    std::atomic<std::uint64_t> associations{0};
    std::atomic<std::uint64_t> rejected{0};
  };

  /// Binds the port and starts listening on a thread of its own.
  static Result<std::unique_ptr<StorageServer>> start(const LocalNode& local, InstanceFiler& filer);
  ~StorageServer();  // stops: running associations finish first

  void stop();
  const Stats& stats() const;

 private:
  StorageServer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lumen::net
