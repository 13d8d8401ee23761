// lumen-cli: Lumen's command line. No GUI dependencies.

#include <CLI/CLI.hpp>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "CliCommands.h"
#include "lumen/core/InstallPaths.h"
#include "lumen/core/Log.h"

#ifndef LUMEN_VERSION
#define LUMEN_VERSION "0.0.0"
#endif

namespace {
// `infer` and `models` live in a plug-in with LibTorch: loaded only when used, so the
// other commands start fast and small.
int runAiPlugin(int argc, char** argv) {
  const std::string path = lumen::pluginPath("LUMEN_CLI_AI_PLUGIN", "liblumen_cli_ai.so").string();
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) return lumen::cli::fail(std::string("AI commands are unavailable: ") + dlerror());
  using Main = int (*)(int, char**);
  auto fn = reinterpret_cast<Main>(dlsym(lib, "lumen_cli_ai_main"));
  if (!fn) return lumen::cli::fail(path + ": not a Lumen AI plug-in");
  return fn(argc, argv);
}
}  // namespace

int main(int argc, char** argv) {
  using namespace lumen::cli;
  namespace net = lumen::net;
  // The command is the first word that is neither an option nor the value of a global
  // option that takes one (`lumen-cli --threads 2 infer ...`).
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0) {
      ++i;
      continue;
    }
    if (argv[i][0] == '-') continue;
    if (std::strcmp(argv[i], "infer") == 0 || std::strcmp(argv[i], "models") == 0) return runAiPlugin(argc, argv);
    break;
  }
  CLI::App app{"Lumen command line: import, inspect and convert medical images; exchange them with PACS nodes.",
               "lumen-cli"};
  app.set_version_flag("--version", std::string("lumen-cli ") + LUMEN_VERSION);
  app.require_subcommand(1);

  CommonOptions common;
  int verbosity = 0;
  std::string dataDir;
  app.add_option("--threads", common.threads, "Worker threads (0 = all cores)")->check(CLI::Range(0, 256));
  app.add_flag("-v,--verbose", verbosity, "More log output (-vv for debug)");
  app.add_flag("--progress", common.progress, "Show progress on stderr");

  std::vector<std::string> importPaths;
  bool copy = false;
  auto* imp = app.add_subcommand("import", "Add DICOM files or folders to the study database");
  imp->add_option("paths", importPaths, "Files, folders or DICOMDIRs")->required();
  imp->add_flag("--copy", copy, "Copy files into the managed store instead of referencing them in place");
  imp->add_option("--data-dir", dataDir, "Data folder holding lumen.db (default: $LUMEN_DATA_DIR or XDG data dir)");
  imp->add_flag("--json", common.json, "Machine-readable output");

  auto* list = app.add_subcommand("list", "List patients, studies and series in the study database");
  list->add_option("--data-dir", dataDir, "Data folder holding lumen.db");
  list->add_flag("--json", common.json, "Machine-readable output");

  std::vector<std::string> infoPaths;
  auto* info = app.add_subcommand("info", "Describe every volume found in files or folders (size, spacing, origin, ...)");
  info->add_option("paths", infoPaths, "Files, folders or DICOMDIRs")->required();
  info->add_flag("--json", common.json, "Machine-readable output");

  AnonymizeOptions an;
  std::vector<std::string> anPaths;
  auto* anonymize = app.add_subcommand(
      "anonymize", "De-identify DICOM files by PS3.15's Basic Profile (Table E.1-1) into a folder, with keyed-hash UIDs");
  anonymize->add_option("paths", anPaths, "Input files or folders, then the output folder");
  anonymize->add_option("--key", an.keyFile, "Project key file (UIDs and pseudonyms are derived from it)");
  anonymize->add_option("--make-key", an.makeKey, "Create a new project key file (mode 0600) and exit");
  anonymize->add_option("--option", an.options,
                        "Profile option: retain-longitudinal-modified-dates, retain-patient-characteristics, "
                        "clean-descriptors, retain-device-identity, retain-safe-private (repeatable)");
  anonymize->add_flag("--allow-burned-in", an.allowBurnedIn,
                      "Also export images flagged as having burned-in annotation, and US, SC, XC (check them first)");
  anonymize->add_flag("--json", common.json, "Machine-readable output");

  CompressOptions comp;
  std::vector<std::string> compPaths;
  auto* compress = app.add_subcommand(
      "compress", "Re-encode DICOM files losslessly (JPEG-LS, JPEG 2000 or deflate) into a folder; pixels unchanged");
  compress->add_option("paths", compPaths, "Input files or folders, then the output folder")->required();
  compress->add_option("--syntax", comp.syntax, "jpeg-ls, jpeg2000 or deflate")->required();
  compress->add_flag("--json", common.json, "Machine-readable output");

  ReportOptions rep;
  auto* report = app.add_subcommand(
      "report", "Write a study's measurements, segment volumes (from its SEGs) and AI results as DICOM SR (TID 1500) "
                "and/or a PDF report");
  report->add_option("--study", rep.studyUid, "Study Instance UID (in the study database)")->required();
  report->add_option("--series", rep.seriesUid, "The image series reported on (when several have results)");
  report->add_option("--sr", rep.srPath, "Output DICOM SR file; it is also stored as a series of the study");
  report->add_option("--pdf", rep.pdfPath, "Output PDF report; it is also stored in the study as Encapsulated PDF");
  report->add_option("--findings", rep.findings, "PDF: the findings, as typed");
  report->add_option("--impression", rep.impression, "PDF: the impression, as typed");
  report->add_option("--institution", rep.institution, "PDF: institution name in the header");
  report->add_option("--logo", rep.logo, "PDF: institution logo (PNG or JPEG)");
  report->add_option("--ai", rep.aiResults, "A classification result of `lumen-cli infer ... -o r.json` (repeatable)");
  report->add_option("--observer", rep.observer, "The reader's name (DICOM PN, e.g. Doe^Jane); else Lumen is the observer");
  report->add_option("--data-dir", dataDir, "Data folder holding lumen.db");
  report->add_option("--uid-seed", rep.uidSeed,
                     "SR: derive its series and instance UIDs from this text (the same text, the same UIDs)");
  report->add_flag("--json", common.json, "Machine-readable output");

  // Listed for --help; run by the AI plug-in (see runAiPlugin).
  app.add_subcommand("infer", "Run an AI model (MONAI bundle) on a volume: lumen-cli infer --help");
  app.add_subcommand("models", "List the AI models Lumen finds: lumen-cli models --help");

  ConvertOptions conv;
  auto* convert = app.add_subcommand(
      "convert", "Convert one volume to NIfTI or NRRD; a DICOM SEG to a label map, or a label map to a SEG (--reference)");
  convert->add_option("input", conv.input, "DICOM file, folder or DICOMDIR; a SEG; or a label map (.nii.gz, .nrrd) for a SEG")
      ->required();
  convert->add_option("output", conv.output, "Output file: .nii, .nii.gz or .nrrd; .dcm writes a DICOM SEG")->required();
  convert->add_option("--series", conv.seriesUid, "Series Instance UID to convert (with --reference: of the reference)");
  convert->add_option("--volume", conv.volumeIndex, "Volume number as listed by `info` (1-based)")->check(CLI::PositiveNumber);
  convert->add_option("--reference", conv.reference,
                      "The DICOM series a SEG segments: the grid a SEG is read onto, or the series a written SEG references");
  convert->add_option("--algorithm-type", conv.algorithmType, "Written SEG: manual (default), semiautomatic or automatic");
  convert->add_option("--algorithm-name", conv.algorithmName, "Written SEG: the algorithm (required unless manual)");
  convert->add_option("--series-description", conv.seriesDescription, "Written SEG: its series description");
  convert->add_flag("--timing", conv.timing, "Print load and write times on stderr");

  // ---- Network ----
  NodesOptions nodesOpt;
  auto* nodes = app.add_subcommand("nodes", "List and edit the remote DICOM nodes and Lumen's own AE title and port");
  nodes->require_subcommand(1);
  auto* nodesList = nodes->add_subcommand("list", "Show the configured nodes");
  nodesList->add_flag("--json", common.json, "Machine-readable output");
  auto* nodesAdd = nodes->add_subcommand("add", "Add a DIMSE node (--aet, --host, --port) or a DICOMweb one (--url)");
  nodesAdd->add_option("name", nodesOpt.name, "Name to call it by")->required();
  auto* aet = nodesAdd->add_option("--aet", nodesOpt.aeTitle, "DIMSE: its AE title");
  auto* host = nodesAdd->add_option("--host", nodesOpt.host, "DIMSE: host name or address");
  auto* port = nodesAdd->add_option("--port", nodesOpt.port, "DIMSE: port")->check(CLI::Range(1, 65535));
  auto* url = nodesAdd->add_option("--url", nodesOpt.url, "DICOMweb: base URL (https://host/dicom-web)");
  nodesAdd->add_option("--auth", nodesOpt.auth, "DICOMweb: basic (password from $LUMEN_NODE_PASSWORD) or bearer "
                                                "(token from $LUMEN_NODE_TOKEN)")
      ->check(CLI::IsMember({"basic", "bearer"}))
      ->needs(url);
  nodesAdd->add_option("--user", nodesOpt.user, "DICOMweb: user name for basic auth")->needs(url);
  nodesAdd->add_option("--ca-file", nodesOpt.caFile, "DICOMweb: PEM file of a private CA to trust")->needs(url);
  auto* tlsCa = nodesAdd->add_option("--tls-ca", nodesOpt.tlsCa, "DIMSE: use DICOM TLS, trusting this CA (PEM)");
  nodesAdd->add_option("--tls-cert", nodesOpt.tlsCert, "DIMSE TLS: Lumen's certificate, when the node asks for one")
      ->needs(tlsCa);
  nodesAdd->add_option("--tls-key", nodesOpt.tlsKey, "DIMSE TLS: its private key (PEM, unencrypted)")->needs(tlsCa);
  url->excludes(aet)->excludes(host)->excludes(port)->excludes(tlsCa);
  auto* nodesRemove = nodes->add_subcommand("remove", "Remove a node");
  nodesRemove->add_option("name", nodesOpt.name, "Its name")->required();
  auto* nodesLocal = nodes->add_subcommand("local", "Set Lumen's own AE title, port, listen address and allow-list");
  nodesLocal->add_option("--aet", nodesOpt.aeTitle, "Lumen's AE title");
  nodesLocal->add_option("--port", nodesOpt.port, "Port Lumen listens on")->check(CLI::Range(1, 65535));
  nodesLocal->add_option("--bind", nodesOpt.bind, "IPv4 address Lumen listens on (0.0.0.0: every interface, the default)");
  nodesLocal->add_option("--allow", nodesOpt.allow, "Calling AE titles accepted (comma-separated; empty: any)")
      ->delimiter(',')
      ->each([&](const std::string&) { nodesOpt.allowSet = true; });
  nodesLocal->add_flag("--allow-any", nodesOpt.allowSet, "Accept any calling AE title (clears the allow-list)");
  nodesLocal->add_option("--tls-cert", nodesOpt.tlsCert, "Listen with DICOM TLS: Lumen's certificate (PEM)");
  nodesLocal->add_option("--tls-key", nodesOpt.tlsKey, "Its private key (PEM, unencrypted)");
  nodesLocal->add_option("--tls-ca", nodesOpt.tlsCa, "Require callers' certificates, signed by this CA");
  nodesLocal->add_flag("--no-tls", nodesOpt.noTls, "Listen without TLS");

  std::string nodeSpec;
  int timeout = 30;
  const auto addNode = [&](CLI::App* c) {
    c->add_option("node", nodeSpec, "A configured node's name, or AE@host:port")->required();
    c->add_option("--timeout", timeout, "Seconds to wait for the node at each step")->check(CLI::Range(1, 3600));
  };
  auto* echoCmd = app.add_subcommand("echo", "Check that a node answers (C-ECHO, or a QIDO-RS request)");
  addNode(echoCmd);

  net::QueryFilter qf;
  std::string level = "study";
  auto* query = app.add_subcommand("query", "Search a node for studies or series (C-FIND or QIDO-RS)");
  addNode(query);
  query->add_option("--level", level, "study or series")->check(CLI::IsMember({"study", "series"}));
  query->add_option("--patient-name", qf.patientName, "Patient name (wildcards * and ?)");
  query->add_option("--patient-id", qf.patientId, "Patient ID");
  query->add_option("--study-date", qf.studyDate, "YYYYMMDD or a range YYYYMMDD-YYYYMMDD");
  query->add_option("--modality", qf.modality, "Modality (CT, MR, ...)");
  query->add_option("--accession", qf.accession, "Accession number");
  query->add_option("--study", qf.studyUid, "Study Instance UID (series level: the study's series)");
  query->add_flag("--json", common.json, "Machine-readable output");

  RetrieveOptions ro;
  auto* retrieve = app.add_subcommand("retrieve", "Fetch a study or series from a node into the study database");
  addNode(retrieve);
  retrieve->add_option("--study", ro.studyUid, "Study Instance UID")->required();
  retrieve->add_option("--series", ro.seriesUid, "Series Instance UID (default: the whole study)");
  retrieve->add_option("--via", ro.via, "get (C-GET) or move (C-MOVE to Lumen's listener) for DIMSE nodes, wado "
                                         "(WADO-RS) for DICOMweb ones")
      ->check(CLI::IsMember({"get", "move", "wado"}));
  retrieve->add_option("--data-dir", dataDir, "Data folder holding lumen.db");
  retrieve->add_flag("--json", common.json, "Machine-readable output");

  SendOptions so;
  auto* sendCmd = app.add_subcommand("send", "Send files, or a study or series from the database, to a node (C-STORE or STOW-RS)");
  addNode(sendCmd);
  sendCmd->add_option("paths", so.paths, "Files or folders");
  sendCmd->add_option("--study", so.studyUid, "A study in the study database");
  sendCmd->add_option("--series", so.seriesUid, "A series in the study database");
  sendCmd->add_option("--compress", so.compress,
                      "Re-encode losslessly before sending: jpeg-ls, jpeg2000 or deflate (default: the bytes as stored)");
  sendCmd->add_option("--data-dir", dataDir, "Data folder holding lumen.db");
  sendCmd->add_flag("--json", common.json, "Machine-readable output");

  ListenOptions lo;
  auto* listen = app.add_subcommand("listen", "Receive DICOM instances (storage SCP) into the study database until stopped");
  listen->add_option("--aet", lo.aeTitle, "AE title to answer to (default: the configured one)");
  listen->add_option("--port", lo.port, "Port (default: the configured one)")->check(CLI::Range(1, 65535));
  listen->add_option("--bind", lo.bind, "IPv4 address to listen on (default: the configured one, else every interface)");
  listen->add_option("--allow", lo.allow, "Accept only these calling AE titles (comma-separated)")
      ->delimiter(',')
      ->each([&](const std::string&) { lo.allowSet = true; });
  listen->add_option("--min-free-mb", lo.minFreeMb, "Refuse instances when less disk than this is free")
      ->check(CLI::Range(0, 1 << 20));
  listen->add_option("--data-dir", dataDir, "Data folder holding lumen.db");

  BatchRunOptions br;
  BatchWorkerOptions bw;
  BatchStatusOptions bs;
  auto* batchCmd = app.add_subcommand(
      "batch", "AI models over many studies of a node, results (SEG, SR, derived series) sent back; restartable; local or on Slurm");
  batchCmd->require_subcommand(1);
  auto* batchRun = batchCmd->add_subcommand("run", "Start a batch, or run it again (finished studies are skipped)");
  batchRun->add_option("--work", br.work, "The batch's folder (job database, data, results, logs)")->required();
  batchRun->add_option("--node", br.node, "The node the studies come from");
  batchRun->add_option("--send-to", br.sendTo, "The node the results go to (default: --node)");
  batchRun->add_flag("--no-send", br.noSend, "Keep the results in the work folder only");
  batchRun->add_flag("--keep-images", br.keepImages,
                     "Keep each study's retrieved images in the work folder (default: removed once the study is done or has failed)");
  batchRun->add_option("--model,-m", br.models,
                       "A classification, segmentation or enhancement model (repeatable: a pipeline, in order)");
  batchRun->add_option("--when", br.when,
                       "MODEL:CLASSIFIER=CLASS[,CLASS...]: run MODEL only on studies the classifier (earlier in the "
                       "pipeline) gave one of these classes (repeatable)");
  batchRun->add_option("--study", br.studies, "A Study Instance UID (repeatable)");
  batchRun->add_option("--studies", br.studiesFile, "A file of Study Instance UIDs, one per line");
  auto* bq = batchRun->add_flag("--query", br.query, "Take the studies a query on --node finds (the filters below)");
  batchRun->add_option("--patient-name", br.filter.patientName, "Query: patient name (wildcards * and ?)")->needs(bq);
  batchRun->add_option("--patient-id", br.filter.patientId, "Query: patient ID")->needs(bq);
  batchRun->add_option("--study-date", br.filter.studyDate, "Query: YYYYMMDD or a range YYYYMMDD-YYYYMMDD")->needs(bq);
  batchRun->add_option("--modality", br.filter.modality, "Query: modality")->needs(bq);
  batchRun->add_option("--accession", br.filter.accession, "Query: accession number")->needs(bq);
  batchRun->add_option("--workers", br.workers, "Worker processes (or Slurm array tasks)")->check(CLI::Range(1, 1024));
  batchRun->add_option("--retries", br.retries, "Attempts after a failure, per study (new batch)")->check(CLI::Range(0, 100));
  batchRun->add_option("--timeout", br.timeout, "Seconds a silent node is waited for")->check(CLI::Range(1, 3600));
  batchRun->add_flag("--slurm", br.slurm, "Submit a Slurm job array (sbatch) instead of running here");
  batchRun->add_flag("--wait", br.wait, "--slurm: return when the array has finished, with the summary");
  batchRun->add_option("--partition", br.partition, "--slurm: the partition");
  batchRun->add_option("--gres", br.gres, "--slurm: generic resources per task, e.g. gpu:1");
  batchRun->add_flag("--json", common.json, "Machine-readable summary");
  auto* batchWorker = batchCmd->add_subcommand("worker", "One worker's share of a batch (what each Slurm array task runs)");
  batchWorker->add_option("--work", bw.work, "The batch's folder")->required();
  batchWorker->add_option("--task", bw.task, "This worker's number, 1..--tasks")->required();
  batchWorker->add_option("--tasks", bw.tasks, "How many workers share the batch")->required();
  auto* batchStatus = batchCmd->add_subcommand("status", "Progress of a batch; writes results.csv and results.json");
  batchStatus->add_option("--work", bs.work, "The batch's folder")->required();
  batchStatus->add_flag("--json", common.json, "Machine-readable output");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  lumen::setLogLevel(verbosity >= 2 ? lumen::LogLevel::Debug
                                    : (verbosity == 1 ? lumen::LogLevel::Info : lumen::LogLevel::Warning));
  common.dataDir = dataDir;
  try {
    if (imp->parsed()) return runImport(importPaths, copy, common);
    if (list->parsed()) return runList(common);
    if (info->parsed()) return runInfo(infoPaths, common);
    if (convert->parsed()) return runConvert(conv, common);
    if (report->parsed()) return runReport(rep, common);
    if (compress->parsed()) {
      if (compPaths.size() < 2) return fail("give the files or folders to compress, then the output folder");
      comp.outDir = compPaths.back();
      comp.inputs.assign(compPaths.begin(), compPaths.end() - 1);
      return runCompress(comp, common);
    }
    if (nodes->parsed()) {
      nodesOpt.action = nodesList->parsed() ? "list" : nodesAdd->parsed() ? "add" : nodesRemove->parsed() ? "remove" : "local";
      return runNodes(nodesOpt, common);
    }
    if (echoCmd->parsed()) return runEcho(nodeSpec, timeout, common);
    if (query->parsed()) {
      qf.level = level == "series" ? net::QueryLevel::Series : net::QueryLevel::Study;
      return runQuery(nodeSpec, qf, timeout, common);
    }
    if (retrieve->parsed()) {
      ro.node = nodeSpec;
      ro.timeout = timeout;
      return runRetrieve(ro, common);
    }
    if (sendCmd->parsed()) {
      so.node = nodeSpec;
      so.timeout = timeout;
      if (so.paths.empty() == (so.studyUid.empty() && so.seriesUid.empty()))
        return fail("send: give files or folders, or --study / --series from the database (one of them)");
      return runSend(so, common);
    }
    if (listen->parsed()) return runListen(lo, common);
    if (batchRun->parsed()) {
      if (br.query && !br.node.empty() && br.filter.patientName.empty() && br.filter.patientId.empty() &&
          br.filter.studyDate.empty() && br.filter.modality.empty() && br.filter.accession.empty())
        return fail("batch run --query: give at least one filter (a batch over every study of a PACS is not a default)");
      return runBatchRun(br, common);
    }
    if (batchWorker->parsed()) return runBatchWorker(bw, common);
    if (batchStatus->parsed()) return runBatchStatus(bs, common);
    if (anonymize->parsed()) {
      if (an.makeKey.empty()) {
        if (anPaths.size() < 2) return fail("anonymize: give input files or folders and then the output folder");
        an.outDir = anPaths.back();
        anPaths.pop_back();
      }
      an.inputs = anPaths;
      return runAnonymize(an, common);
    }
  } catch (const std::exception& e) {
    // A bug, not a user error; still one line, still no crash.
    return fail(std::string("internal error: ") + e.what());
  }
  return fail("no command given (see --help)");
}
