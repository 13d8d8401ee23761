// lumen-cli batch: AI models over many studies of a node, with the results (DICOM SEG and
// SR) sent back, restartable and idempotent through a job database (imaging/BatchJobs),
// run by local worker processes or as a Slurm job array. Each study's work runs in child
// processes of lumen-cli itself (infer, report): a model that crashes fails one study, not
// the batch, and LibTorch stays out of this process.

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "ChildProcess.h"
#include "CliCommands.h"
#include "RemoteNode.h"
#include "lumen/core/DurableFile.h"
#include "lumen/core/Sha256.h"
#include "lumen/imaging/BatchJobs.h"
#include "lumen/imaging/StudyDatabase.h"

namespace lumen::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A classifier's class in a result, "" when it gave none ("predicted": null: not graded).
std::string predictedClass(const json& result) {
  const auto it = result.find("predicted");
  return it != result.end() && it->is_string() ? it->get<std::string>() : std::string();
}


double secondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Paths {
  fs::path work, jobs, data, results, logs;
  explicit Paths(const fs::path& w)
      : work(w), jobs(w / "batch.db"), data(w / "data"), results(w / "results"), logs(w / "logs") {}
};

// The models of a batch, as `lumen-cli models --json` describes them, with the condition
// (--when) under which each runs.
struct ModelStep {
  std::string name, task, sha256;
  std::vector<std::string> classes;  // a classifier's class names
  std::string whenModel;             // run only when this classifier predicted one of whenClasses
  std::vector<std::string> whenClasses;
};

std::vector<std::string> splitOn(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, sep);)
    if (!part.empty()) out.push_back(part);
  return out;
}

Result<std::vector<ModelStep>> resolveModels(const std::vector<std::string>& names, const std::vector<std::string>& when,
                                             const fs::path& log) {
  std::string out;
  auto rc = runProcess({selfExe().string(), "models", "--json"}, log, 300, &out);
  if (!rc) return rc.error();
  if (*rc != 0) return Error(ErrorCode::Internal, "`lumen-cli models` failed: " + lastErrorLine(log));
  json j;
  try {
    j = json::parse(out);
  } catch (const std::exception&) {
    return Error(ErrorCode::Internal, "`lumen-cli models --json` gave no JSON");
  }
  std::vector<ModelStep> steps;
  for (const auto& name : names) {
    const json* found = nullptr;
    for (const auto& m : j["models"])
      if (m.value("name", "") == name) found = &m;
    if (!found) return Error(ErrorCode::NotFound, "--model " + name + ": no such model (see `lumen-cli models`)");
    const std::string task = found->value("task", ""), trust = found->value("trust", "");
    if (task != "segmentation" && task != "classification" && task != "enhancement")
      return Error(ErrorCode::Unsupported, "--model " + name + ": a " + task + " model, which a batch cannot send back");
    if (trust != "shipped" && trust != "trusted")
      return Error(ErrorCode::InvalidArgument,
                   "--model " + name + ": " + trust + " (trust it first: `lumen-cli models --trust " + name + "`)");
    ModelStep step{name, task, found->value("sha256", ""), {}, {}, {}};
    if (task == "classification" && found->contains("labels"))
      for (const auto& [k, v] : (*found)["labels"].items()) step.classes.push_back(v.get<std::string>());
    steps.push_back(step);
  }
  // MODEL:CLASSIFIER=CLASS[,CLASS...], the classifier before the model in the pipeline.
  for (const auto& w : when) {
    const auto colon = w.find(':'), eq = w.find('=');
    if (colon == std::string::npos || eq == std::string::npos || eq < colon)
      return Error(ErrorCode::InvalidArgument, "--when " + w + ": expected MODEL:CLASSIFIER=CLASS[,CLASS...]");
    const std::string model = w.substr(0, colon), classifier = w.substr(colon + 1, eq - colon - 1);
    const auto classes = splitOn(w.substr(eq + 1), ',');
    const auto find = [&](const std::string& n) {
      return std::find_if(steps.begin(), steps.end(), [&](const ModelStep& s) { return s.name == n; });
    };
    const auto target = find(model), by = find(classifier);
    if (target == steps.end()) return Error(ErrorCode::InvalidArgument, "--when " + w + ": " + model + " is not a --model of this batch");
    if (by == steps.end() || by >= target || by->task != "classification")
      return Error(ErrorCode::InvalidArgument,
                   "--when " + w + ": " + classifier + " must be a classification --model before " + model);
    if (!target->whenModel.empty()) return Error(ErrorCode::InvalidArgument, "--when " + w + ": " + model + " has a condition already");
    if (classes.empty()) return Error(ErrorCode::InvalidArgument, "--when " + w + ": no class named");
    for (const auto& c : classes)
      if (std::find(by->classes.begin(), by->classes.end(), c) == by->classes.end()) {
        std::string known;
        for (const auto& k : by->classes) known += (known.empty() ? "" : ", ") + k;
        return Error(ErrorCode::InvalidArgument, "--when " + w + ": " + classifier + " has no class " + c + " (its classes: " + known + ")");
      }
    target->whenModel = classifier;
    target->whenClasses = classes;
  }
  return steps;
}

bool isResultModality(const std::string& m) {
  return m == "SEG" || m == "SR" || m == "DOC" || m == "RTSTRUCT" || m == "PR" || m == "KO";
}

// One study: retrieve its image series, run the models, write SEG and SR, send them.
// Returns the result JSON, or the reason it failed.
Result<json> processStudy(const std::string& studyUid, const json& config, const Paths& p, const fs::path& log) {
  const auto t0 = std::chrono::steady_clock::now();
  json timings = json::object();
  const int timeout = config.value("timeout", 60);
  auto source = remoteNode(config["node"].get<std::string>(), timeout);
  if (!source) return source.error();
  // The image series: the one with the most instances, the lowest series number among
  // equals. Results of earlier runs are not input: result objects, and the derived series
  // this batch makes (its UIDs are known beforehand).
  const std::string seed = config["batch_id"].get<std::string>() + "/" + studyUid;
  std::set<std::string> ours;
  for (const auto& m : config["models"])
    if (m["task"] == "enhancement")
      ours.insert(Sha256::uidOfText(seed + "/" + m["name"].get<std::string>() + "/derived/series"));
  net::QueryFilter f;
  f.level = net::QueryLevel::Series;
  f.studyUid = studyUid;
  auto series = web::query(*source, f);
  if (!series) return series.error();
  const net::QueryMatch* input = nullptr;
  for (const auto& s : *series) {
    if (s.studyUid != studyUid || isResultModality(s.modalities) || ours.count(s.seriesUid)) continue;
    if (!input || s.instanceCount > input->instanceCount ||
        (s.instanceCount == input->instanceCount && s.seriesNumber < input->seriesNumber))
      input = &s;
  }
  if (!input) return Error(ErrorCode::NotFound, "the node has no image series in this study");
  auto db = db::StudyDatabase::open(p.data);
  if (!db) return db.error();
  auto t = std::chrono::steady_clock::now();
  auto got = web::retrieve(*source, studyUid, input->seriesUid, **db);
  if (!got) return got.error();
  if (got->failed) return Error(ErrorCode::Io, std::to_string(got->failed) + " instance(s) not retrieved");
  timings["retrieve_s"] = secondsSince(t);
  auto files = (*db)->instancesOfSeries(input->seriesUid);
  if (!files) return files.error();
  if (files->empty()) return Error(ErrorCode::NotFound, "the series was not retrieved");
  db->reset();  // the children write to the same database

  const fs::path dir = p.results / studyUid;
  fs::create_directories(dir);
  const std::string exe = selfExe().string();
  const std::string inputPath = fs::path((*files)[0].path).parent_path().string();
  json models = json::object();
  std::vector<fs::path> toSend;
  std::vector<std::string> aiJson;
  t = std::chrono::steady_clock::now();
  for (const auto& m : config["models"]) {
    const std::string name = m["name"], task = m["task"];
    if (m.contains("when")) {
      const std::string by = m["when"]["model"];
      const std::string predicted = models.contains(by) ? predictedClass(models[by]) : std::string();
      bool run = false;
      for (const auto& c : m["when"]["classes"]) run = run || c.get<std::string>() == predicted;
      if (!run) {
        const bool ran = models.contains(by) && !models[by].contains("skipped");
        models[name] = {{"task", task},
                        {"skipped", by + (!ran ? " did not run" : predicted.empty() ? " gave no class" : " predicted " + predicted)}};
        continue;
      }
    }
    const fs::path report = dir / (name + ".json");
    std::vector<std::string> argv = {exe, "infer", "-m", name, inputPath, "--series", input->seriesUid};
    fs::path derived;
    if (task == "segmentation" || task == "enhancement") {
      // A SEG, or a folder of derived images (made again from nothing when a study is redone).
      const fs::path out = task == "segmentation" ? dir / (name + "-seg.dcm") : dir / (name + "-series");
      if (task == "enhancement") {
        // Made again from nothing (the writer itself removes what a killed attempt left).
        derived = out;
        std::error_code ec;
        fs::remove_all(out, ec);
      }
      for (const std::string& a : {std::string("-o"), out.string() + (derived.empty() ? "" : "/"), std::string("--report"),
                                   report.string(), std::string("--data-dir"), p.data.string(), std::string("--uid-seed"),
                                   seed + "/" + name})
        argv.push_back(a);
      if (derived.empty()) toSend.push_back(out);
    } else {
      argv.push_back("-o");
      argv.push_back(report.string());
      aiJson.push_back(report.string());
    }
    auto rc = runProcess(argv, log, config.value("step_timeout", 3600));
    if (!rc) return Error(ErrorCode::Internal, name + ": " + rc.error().message);
    if (*rc != 0) return Error(ErrorCode::Internal, name + ": " + lastErrorLine(log));
    json r;
    try {
      std::ifstream in(report);
      r = json::parse(in);
    } catch (const std::exception&) {
      return Error(ErrorCode::Internal, name + ": no result written");
    }
    json keep = {{"task", task}, {"version", r.value("version", "")}, {"device", r.value("device", "")},
                 {"seconds", r.value("seconds", 0.0)}};
    if (r.contains("predicted")) keep["predicted"] = r["predicted"], keep["probabilities"] = r["probabilities"];
    if (r.contains("detail")) keep["detail"] = r["detail"];
    if (r.contains("labels")) keep["labels"] = r["labels"];
    if (!derived.empty()) {
      std::vector<fs::path> made;
      for (const auto& e : fs::directory_iterator(derived)) made.push_back(e.path());
      std::sort(made.begin(), made.end());
      if (made.empty()) return Error(ErrorCode::Internal, name + ": no derived series written");
      toSend.insert(toSend.end(), made.begin(), made.end());
      keep["derived_series_uid"] = r.value("derived_series_uid", "");
      keep["instances"] = made.size();
    }
    models[name] = keep;
  }
  timings["infer_s"] = secondsSince(t);
  // The SR: per-segment volumes of the SEGs just stored, classifications with the models.
  t = std::chrono::steady_clock::now();
  const fs::path sr = dir / "report-sr.dcm";
  std::vector<std::string> argv = {exe,  "report", "--study", studyUid, "--series", input->seriesUid, "--sr", sr.string(),
                                   "--data-dir", p.data.string(), "--uid-seed", seed};
  for (const auto& a : aiJson) argv.insert(argv.end(), {"--ai", a});
  auto rc = runProcess(argv, log, config.value("step_timeout", 3600));
  if (!rc) return Error(ErrorCode::Internal, "report: " + rc.error().message);
  if (*rc != 0) return Error(ErrorCode::Internal, "report: " + lastErrorLine(log));
  toSend.push_back(sr);
  timings["report_s"] = secondsSince(t);
  json result = {{"study_uid", studyUid}, {"series_uid", input->seriesUid}, {"models", models}};
  if (!config.value("no_send", false)) {
    auto dest = remoteNode(config["send_to"].get<std::string>(), timeout);
    if (!dest) return dest.error();
    t = std::chrono::steady_clock::now();
    auto sent = web::send(*dest, toSend);
    if (!sent) return sent.error();
    if (sent->failed) return Error(ErrorCode::Io, std::to_string(sent->failed) + " result(s) not sent");
    timings["send_s"] = secondsSince(t);
    result["sent"] = sent->stored;
  }
  std::vector<std::string> outputs;  // files, and derived series as their folders
  for (const auto& f2 : toSend) {
    const std::string name = f2.parent_path() == dir ? f2.filename().string() : f2.parent_path().filename().string() + "/";
    if (outputs.empty() || outputs.back() != name) outputs.push_back(name);
  }
  result["outputs"] = outputs;
  timings["total_s"] = secondsSince(t0);
  result["timings"] = timings;
  return result;
}

// The retrieved images are not kept (a batch of thousands would fill the disk), whether
// the study succeeded or not: the results stay in results/<study>/, and a study done again
// retrieves its images again. "" or why they could not be removed.
std::string removeRetrievedImages(const Paths& p, const std::string& studyUid) {
  auto db = db::StudyDatabase::open(p.data);
  if (!db) return db.error().toString();
  auto id = (*db)->studyIdOf(studyUid);
  if (!id) return id.error().toString();
  if (*id)
    if (auto removed = (*db)->deleteStudy(**id, true); !removed) return removed.error().toString();
  return {};
}

std::string csvField(std::string v) {
  if (v.find_first_of(",\"\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// results.csv and results.json in the work folder: one row per study, from the job database.
Status writeResultTables(batch::JobDatabase& jobs, const Paths& p) {
  auto all = jobs.all();
  if (!all) return all.error();
  json rows = json::array();
  std::string csv =
      "study_uid,status,attempts,series_uid,predictions,volumes_ml,derived_series,skipped,retrieve_s,infer_s,report_s,send_s,"
      "total_s,error\n";
  for (const auto& j : *all) {
    json r = j.result.empty() ? json::object() : json::parse(j.result, nullptr, false);
    if (r.is_discarded()) r = json::object();
    std::string predictions, volumes, derived, skipped;
    if (r.contains("models"))
      for (const auto& [name, m] : r["models"].items()) {
        if (m.contains("predicted"))
          predictions += (predictions.empty() ? "" : "; ") + name + "=" + (predictedClass(m).empty() ? "not graded" : predictedClass(m));
        if (m.contains("derived_series_uid"))
          derived += (derived.empty() ? "" : "; ") + name + "=" + m["derived_series_uid"].get<std::string>();
        if (m.contains("skipped")) skipped += (skipped.empty() ? "" : "; ") + name + " (" + m["skipped"].get<std::string>() + ")";
        if (m.contains("labels"))
          for (const auto& [label, v] : m["labels"].items()) {
            char b[64];
            std::snprintf(b, sizeof b, "%.3f", v.value("volume_ml", 0.0));
            volumes += (volumes.empty() ? "" : "; ") + name + ":" + label + "=" + b;
          }
      }
    const json t = r.value("timings", json::object());
    const auto sec = [&](const char* k) {
      if (!t.contains(k)) return std::string();
      char b[32];
      std::snprintf(b, sizeof b, "%.2f", t[k].get<double>());
      return std::string(b);
    };
    csv += csvField(j.studyUid) + "," + j.status + "," + std::to_string(j.attempts) + "," +
           csvField(r.value("series_uid", "")) + "," + csvField(predictions) + "," + csvField(volumes) + "," +
           csvField(derived) + "," + csvField(skipped) + "," +
           sec("retrieve_s") + "," + sec("infer_s") + "," + sec("report_s") + "," + sec("send_s") + "," + sec("total_s") +
           "," + csvField(j.status == "done" ? std::string() : j.lastError) + "\n";
    rows.push_back({{"study_uid", j.studyUid}, {"status", j.status}, {"attempts", j.attempts}, {"error", j.lastError},
                    {"result", r}});
  }
  if (auto st = writeFileDurably(p.work / "results.csv", csv); !st) return st;
  return writeFileDurably(p.work / "results.json", rows.dump(2) + "\n");
}

bool slurmJobActive(const std::string& jobId) {
  if (jobId.empty()) return false;
  std::string out;
  auto rc = runProcess({"/usr/bin/squeue", "-h", "-j", jobId, "-o", "%i"}, "/dev/null", 60, &out);
  return rc && *rc == 0 && out.find_first_not_of(" \n") != std::string::npos;
}

bool processAlive(const std::string& pid) {
  if (pid.empty()) return false;
  const long n = std::strtol(pid.c_str(), nullptr, 10);
  return n > 0 && ::kill(static_cast<pid_t>(n), 0) == 0;
}

std::string newBatchId() {
  std::random_device rd;
  char b[40];
  std::snprintf(b, sizeof b, "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  return b;
}

// Compares an option given again with what the batch was started with: a batch is one
// set of models and nodes, never silently another.
Status sameAsBefore(const char* option, const std::string& before, const std::string& now) {
  if (now.empty() || before.empty() || before == now) return {};
  return Error(ErrorCode::InvalidArgument, std::string(option) + " " + now + ": this work folder is a batch with " + option +
                                               " " + before + " (use another folder for another batch)");
}

int printStatus(batch::JobDatabase& jobs, const Paths& p, const CommonOptions& common) {
  if (auto st = writeResultTables(jobs, p); !st) return fail(st.error().toString());
  auto all = jobs.all();
  if (!all) return fail(all.error().toString());
  std::map<std::string, int> counts;
  for (const auto& j : *all) ++counts[j.status];
  auto slurm = jobs.config("slurm_job");
  const bool active = slurm && slurmJobActive(*slurm);
  if (common.json) {
    json out = {{"studies", all->size()}, {"counts", counts}, {"results_csv", (p.work / "results.csv").string()}};
    if (slurm && !slurm->empty()) out["slurm_job"] = *slurm, out["slurm_active"] = active;
    json failed = json::array();
    for (const auto& j : *all)
      if (j.status == "failed") failed.push_back({{"study_uid", j.studyUid}, {"attempts", j.attempts}, {"error", j.lastError}});
    out["failed"] = failed;
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << all->size() << " studies: " << counts["done"] << " done, " << counts["failed"] << " failed, "
              << counts["running"] << " running, " << counts["pending"] << " pending";
    if (slurm && !slurm->empty()) std::cout << "; Slurm job " << *slurm << (active ? " queued or running" : " finished");
    std::cout << "\n";
    for (const auto& j : *all)
      if (j.status == "failed")
        std::cout << "  failed (" << j.attempts << " attempt(s)): " << j.studyUid << ": " << j.lastError << "\n";
    std::cout << "results: " << (p.work / "results.csv").string() << "\n";
  }
  return 0;
}

}  // namespace

int runBatchWorker(const BatchWorkerOptions& o, const CommonOptions& /*common*/) {
  const Paths p(fs::absolute(o.work));
  if (o.tasks < 1 || o.task < 1 || o.task > o.tasks) return fail("--task must be in 1..--tasks");
  auto jobs = batch::JobDatabase::open(p.jobs);
  if (!jobs) return fail(jobs.error().toString());
  auto text = (*jobs)->config("batch");
  if (!text) return fail(text.error().toString());
  if (text->empty()) return fail(p.work.string() + ": not a batch folder (start one with `lumen-cli batch run`)");
  const json config = json::parse(*text);
  const char* slurmJob = std::getenv("SLURM_JOB_ID");
  const std::string owner = (slurmJob ? "slurm " + std::string(slurmJob) : "pid " + std::to_string(::getpid())) +
                            " task " + std::to_string(o.task);
  const int maxAttempts = config.value("retries", 2) + 1;
  fs::create_directories(p.logs);
  int failed = 0;
  for (;;) {
    auto job = (*jobs)->claim(o.task, o.tasks, maxAttempts, owner);
    if (!job) return fail(job.error().toString());
    if (!*job) break;
    const fs::path log = p.logs / ((*job)->studyUid + ".log");
    std::cerr << "lumen-cli: batch task " << o.task << ": study " << (*job)->studyUid << " (attempt " << (*job)->attempts
              << ")\n";
    Result<json> r = json::object();
    try {
      r = processStudy((*job)->studyUid, config, p, log);
    } catch (const std::exception& e) {
      r = Error(ErrorCode::Internal, std::string("internal error: ") + e.what());
    }
    if (!config.value("keep_images", false)) {
      // Best effort: results already sent are not undone by a full disk here.
      if (const std::string why = removeRetrievedImages(p, (*job)->studyUid); !why.empty()) {
        std::cerr << "lumen-cli: batch task " << o.task << ": " << (*job)->studyUid
                  << ": retrieved images not removed: " << why << "\n";
        if (r) (*r)["cleanup_error"] = why;
      }
    }
    const std::string error = r ? std::string() : r.error().message;
    if (!r) {
      ++failed;
      std::cerr << "lumen-cli: batch task " << o.task << ": " << (*job)->studyUid << " failed: " << error << "\n";
    }
    if (auto st = (*jobs)->finish((*job)->studyUid, static_cast<bool>(r), error, r ? r->dump() : std::string()); !st)
      return fail(st.error().toString());
  }
  if (auto st = writeResultTables(**jobs, p); !st) return fail(st.error().toString());
  return failed ? 1 : 0;
}

int runBatchStatus(const BatchStatusOptions& o, const CommonOptions& common) {
  const Paths p(fs::absolute(o.work));
  if (!fs::exists(p.jobs)) return fail(p.work.string() + ": not a batch folder (start one with `lumen-cli batch run`)");
  auto jobs = batch::JobDatabase::open(p.jobs);
  if (!jobs) return fail(jobs.error().toString());
  return printStatus(**jobs, p, common);
}

int runBatchRun(const BatchRunOptions& o, const CommonOptions& common) {
  const Paths p(fs::absolute(o.work));
  std::error_code ec;
  fs::create_directories(p.logs, ec);
  if (ec) return fail(p.work.string() + ": cannot create the work folder (" + ec.message() + ")");
  auto jobs = batch::JobDatabase::open(p.jobs);
  if (!jobs) return fail(jobs.error().toString());
  auto text = (*jobs)->config("batch");
  if (!text) return fail(text.error().toString());
  json config = text->empty() ? json::object() : json::parse(*text);
  // The batch's identity: the models, the nodes, the retries. Given again, they must agree.
  std::string models, when;
  for (const auto& m : o.models) models += (models.empty() ? "" : ",") + m;
  for (const auto& w : o.when) when += (when.empty() ? "" : " ") + w;
  std::string before, whenBefore;
  if (config.contains("models"))
    for (const auto& m : config["models"]) before += (before.empty() ? "" : ",") + m["name"].get<std::string>();
  if (!text->empty() && !when.empty()) whenBefore = config.value("when", std::string("(none)"));
  for (const auto& st : {sameAsBefore("--model", before, models), sameAsBefore("--when", whenBefore, when),
                         sameAsBefore("--node", config.value("node", ""), o.node),
                         sameAsBefore("--send-to", config.value("send_to", ""), o.sendTo)})
    if (!st) return fail(st.error().toString());
  if (!text->empty() && o.keepImages && !config.value("keep_images", false))
    return fail("--keep-images: this work folder is a batch that does not keep the retrieved images (use another folder)");
  if (text->empty()) {
    if (o.node.empty() || o.models.empty()) return fail("a new batch needs --node and at least one --model");
    auto steps = resolveModels(o.models, o.when, p.logs / "batch.log");
    if (!steps) return fail(steps.error().toString());
    json list = json::array();
    for (const auto& s : *steps) {
      json step = {{"name", s.name}, {"task", s.task}, {"sha256", s.sha256}};
      if (!s.whenModel.empty()) step["when"] = {{"model", s.whenModel}, {"classes", s.whenClasses}};
      list.push_back(step);
    }
    config = {{"batch_id", newBatchId()}, {"node", o.node}, {"send_to", o.sendTo.empty() ? o.node : o.sendTo},
              {"models", list}, {"retries", o.retries}, {"no_send", o.noSend}, {"timeout", o.timeout}};
    if (!when.empty()) config["when"] = when;
    config["keep_images"] = o.keepImages;
    if (auto st = (*jobs)->setConfig("batch", config.dump()); !st) return fail(st.error().toString());
  }
  // No two runs of one batch at once: a study would be worked on twice.
  auto slurmJob = (*jobs)->config("slurm_job");
  auto localPid = (*jobs)->config("local_pid");
  if (slurmJob && slurmJobActive(*slurmJob))
    return fail("Slurm job " + *slurmJob + " of this batch is still queued or running (scancel it, or wait)");
  if (localPid && processAlive(*localPid) && *localPid != std::to_string(::getpid()))
    return fail("process " + *localPid + " still runs this batch");
  // The studies: those named, or those a query on the node finds. Added ones keep their state.
  std::vector<std::string> studies = o.studies;
  if (!o.studiesFile.empty()) {
    std::ifstream in(o.studiesFile);
    if (!in) return fail(o.studiesFile + ": cannot read the list of studies");
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty() && line[0] != '#') studies.push_back(line);
    }
  }
  if (o.query) {
    auto node = remoteNode(config["node"].get<std::string>(), o.timeout);
    if (!node) return fail(node.error().toString());
    auto found = web::query(*node, o.filter);
    if (!found) return fail(found.error().toString());
    for (const auto& m : *found) studies.push_back(m.studyUid);
  }
  auto added = (*jobs)->addStudies(studies);
  if (!added) return fail(added.error().toString());
  auto released = (*jobs)->releaseInterrupted();
  if (!released) return fail(released.error().toString());
  std::cerr << "lumen-cli: batch " << p.work.string() << ": " << *added << " new stud" << (*added == 1 ? "y" : "ies");
  if (*released) std::cerr << ", " << *released << " interrupted one(s) to do again";
  std::cerr << "\n";
  const int tasks = std::max(1, o.workers);
  const std::string exe = selfExe().string();
  if (o.slurm) {
    std::string script = "#!/bin/sh\n#SBATCH --job-name=lumen-batch\n#SBATCH --array=1-" + std::to_string(tasks) +
                         "\n#SBATCH --output=" + (p.logs / "task-%A_%a.out").string() + "\n";
    if (!o.partition.empty()) script += "#SBATCH --partition=" + o.partition + "\n";
    if (!o.gres.empty()) script += "#SBATCH --gres=" + o.gres + "\n";  // Slurm sets CUDA_VISIBLE_DEVICES: infer's auto uses it
    script += "exec '" + exe + "' batch worker --work '" + p.work.string() +
              "' --task \"$SLURM_ARRAY_TASK_ID\" --tasks \"$SLURM_ARRAY_TASK_COUNT\"\n";
    const fs::path file = p.work / "batch.sbatch";
    if (auto st = writeFileDurably(file, script, 0755); !st) return fail(st.error().toString());
    std::string out;
    std::vector<std::string> argv = {"/usr/bin/sbatch", "--parsable"};
    if (o.wait) argv.push_back("--wait");
    argv.push_back(file.string());
    // sbatch --parsable prints the job id at once; with --wait it returns when the array ends.
    auto rc = runProcess(argv, p.logs / "sbatch.log", 7 * 24 * 3600, &out);
    if (!rc) return fail("sbatch: " + rc.error().message);
    const std::string id = out.substr(0, out.find_first_of(";\n"));
    if (!id.empty()) (void)(*jobs)->setConfig("slurm_job", id);
    if (*rc != 0 && id.empty()) return fail("sbatch failed: " + lastErrorLine(p.logs / "sbatch.log"));
    std::cout << "Slurm job " << id << ": " << tasks << " array task(s); `lumen-cli batch status --work " << p.work.string()
              << "` follows it\n";
    if (!o.wait) return 0;
    return printStatus(**jobs, p, common) == 0 && *rc == 0 ? 0 : 1;
  }
  // Local: worker processes, each with its share.
  (void)(*jobs)->setConfig("local_pid", std::to_string(::getpid()));
  std::vector<std::thread> threads;
  std::vector<int> codes(static_cast<std::size_t>(tasks), 0);
  for (int k = 1; k <= tasks; ++k)
    threads.emplace_back([&, k] {
      auto rc = runProcess({exe, "batch", "worker", "--work", p.work.string(), "--task", std::to_string(k), "--tasks",
                            std::to_string(tasks)},
                           p.logs / ("worker-" + std::to_string(k) + ".log"), 30 * 24 * 3600);
      codes[static_cast<std::size_t>(k - 1)] = rc ? *rc : 1;
    });
  for (auto& t : threads) t.join();
  (void)(*jobs)->setConfig("local_pid", "");
  const int status = printStatus(**jobs, p, common);
  for (int c : codes)
    if (c != 0) return 1;
  return status;
}

}  // namespace lumen::cli
