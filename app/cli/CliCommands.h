#pragma once
// The commands of lumen-cli. Each returns the process exit code and prints results to
// stdout; errors go to stderr as one line naming the file and the reason.

#include <filesystem>
#include <string>
#include <vector>

#include "lumen/core/Progress.h"
#include "RemoteNode.h"
#include "lumen/imaging/Dimse.h"

namespace lumen::cli {

struct CommonOptions {
  int threads = 0;
  std::filesystem::path dataDir;  // empty: the default data directory
  bool json = false;
  bool progress = false;
};

int runImport(const std::vector<std::string>& paths, bool copy, const CommonOptions& common);
int runList(const CommonOptions& common);
int runInfo(const std::vector<std::string>& paths, const CommonOptions& common);

struct ConvertOptions {
  std::string input;
  std::string output;
  std::string seriesUid;
  int volumeIndex = 0;  // 1-based as listed by `info`; 0 = choose
  bool timing = false;  // phase times on stderr (benchmarks)
  // DICOM SEG (SegCommands.cpp): the source series, and how a written SEG was made.
  std::string reference;
  std::string algorithmType, algorithmName, seriesDescription;
};
int runConvert(const ConvertOptions& options, const CommonOptions& common);
/// A conversion from or to DICOM SEG (--reference given, a .dcm output or a SEG input).
bool isSegConversion(const ConvertOptions& options);
int runConvertSeg(const ConvertOptions& options, const CommonOptions& common);

// ---- Lossless compression (CompressCommands.cpp) ----
struct CompressOptions {
  std::vector<std::string> inputs;
  std::string outDir;
  std::string syntax;  // jpeg-ls, jpeg2000, deflate
};
int runCompress(const CompressOptions& options, const CommonOptions& common);

// ---- Reports (ReportCommands.cpp) ----
struct ReportOptions {
  std::string studyUid, seriesUid;
  std::string srPath, pdfPath;
  std::vector<std::string> aiResults;  // JSON of `lumen-cli infer` (classification)
  std::string observer;                // the reader, DICOM PN
  std::string findings, impression;    // PDF: the reader's text
  std::string institution, logo;       // PDF header
  std::string uidSeed;                 // SR: UIDs derived from this text (batch), else new ones
};
int runReport(const ReportOptions& options, const CommonOptions& common);

// ---- De-identification (DeidCommands.cpp) ----
struct AnonymizeOptions {
  std::vector<std::string> inputs;  // files or folders; the last positional is the output
  std::string outDir;
  std::string keyFile;
  std::string makeKey;  // create this key file and exit
  std::vector<std::string> options;
  bool allowBurnedIn = false;
};
int runAnonymize(const AnonymizeOptions& options, const CommonOptions& common);

// ---- Network (NetCommands.cpp) ----
struct NodesOptions {
  std::string action;  // list, add, remove, local
  std::string name, aeTitle, host;
  int port = 0;
  std::string url, auth, user, caFile;  // DICOMweb
  std::string tlsCa, tlsCert, tlsKey;   // DICOM TLS
  bool noTls = false;
  std::string bind;  // the listener's address; empty: unchanged
  std::vector<std::string> allow;
  bool allowSet = false;
};
int runNodes(const NodesOptions& options, const CommonOptions& common);
int runEcho(const std::string& node, int timeoutSeconds, const CommonOptions& common);
int runQuery(const std::string& node, const net::QueryFilter& filter, int timeoutSeconds, const CommonOptions& common);

struct RetrieveOptions {
  std::string node, studyUid, seriesUid;
  std::string via;  // "": get for DIMSE nodes, wado for DICOMweb ones
  int timeout = 30;
};
int runRetrieve(const RetrieveOptions& options, const CommonOptions& common);

struct SendOptions {
  std::string node;
  std::vector<std::string> paths;
  std::string studyUid, seriesUid;
  std::string compress;  // "": as stored; else jpeg-ls, jpeg2000 or deflate (re-encoded losslessly first)
  int timeout = 30;
};
int runSend(const SendOptions& options, const CommonOptions& common);

struct ListenOptions {
  std::string aeTitle;
  int port = 0;
  std::string bind;  // empty: the configuration's
  std::vector<std::string> allow;
  bool allowSet = false;
  int minFreeMb = -1;  // -1: the configuration's
};
int runListen(const ListenOptions& options, const CommonOptions& common);

/// A node by name in the nodes file (or AE@host:port), with the configuration's options.
Result<web::RemoteNode> remoteNode(const std::string& spec, int timeoutSeconds);

// ---- Batch AI over a node's studies (BatchCommands.cpp) ----
struct BatchRunOptions {
  std::string work;  // the batch's folder: job database, retrieved data, results, logs
  std::string node, sendTo;
  std::vector<std::string> studies;
  std::string studiesFile;
  bool query = false;  // the studies a query on the node finds (filter)
  net::QueryFilter filter;
  std::vector<std::string> models;
  /// Conditions "MODEL:CLASSIFIER=CLASS[,CLASS...]": MODEL runs on a study only when the
  /// classifier, earlier in the pipeline, predicted one of the classes there.
  std::vector<std::string> when;
  int workers = 1;
  int retries = 2;
  int timeout = 60;
  bool noSend = false;
  bool keepImages = false;  // keep each study's retrieved images in the work folder's data/
  bool slurm = false, wait = false;
  std::string partition, gres;
};
int runBatchRun(const BatchRunOptions& options, const CommonOptions& common);
struct BatchWorkerOptions {
  std::string work;
  int task = 1, tasks = 1;
};
int runBatchWorker(const BatchWorkerOptions& options, const CommonOptions& common);
struct BatchStatusOptions {
  std::string work;
};
int runBatchStatus(const BatchStatusOptions& options, const CommonOptions& common);

/// A progress line on stderr when --progress was given and stderr is a terminal.
Progress makeProgress(const CommonOptions& common);

/// Prints "lumen-cli: error: <message>" on stderr and returns 1.
int fail(const std::string& message);

}  // namespace lumen::cli
