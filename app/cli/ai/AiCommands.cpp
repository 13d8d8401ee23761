// lumen-cli infer / models. Built as a plug-in (liblumen_cli_ai.so) that lumen-cli loads
// only for these commands: LibTorch takes ~100 MB and a noticeable start-up time that the
// DICOM commands must not pay.

#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "lumen/core/InstallPaths.h"
#include "lumen/core/Sha256.h"
#include "lumen/core/Log.h"
#include "lumen/imaging/DerivedSeries.h"
#include "lumen/imaging/DicomScanner.h"
#include "lumen/imaging/DicomSeg.h"
#include "lumen/imaging/ImageIO.h"
#include "lumen/imaging/StudyDatabase.h"
#include "lumen/imaging/VolumeLoader.h"
#include "lumen/imaging/VolumePlanner.h"
#include "lumen/models/Bundle.h"
#include "lumen/models/Inference.h"
#include "lumen/models/Trust.h"
#include "lumen/core/LabelEditor.h"
#include "lumen/core/LabelStatistics.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace lumen;

namespace {

int fail(const std::string& m) {
  std::fprintf(stderr, "lumen-cli: error: %s\n", m.c_str());
  return 1;
}

fs::path shippedModels() { return shippedModelsDir(LUMEN_SHIPPED_MODELS); }

struct LoadedInput {
  Volume volume;
  std::string seriesUid;
  std::string modality;
  std::optional<dicom::SegReference> reference;  // DICOM input: what a SEG of it references
  std::optional<dicom::ScanResult> scan;          // DICOM input: the instances a derived series copies
  std::optional<dicom::VolumePlan> plan;
};

Result<LoadedInput> loadInput(const std::string& path, const std::string& seriesUid, int volumeIndex) {
  LoadedInput in;
  if (io::formatFromPath(path) != io::ImageFormat::Unknown) {
    auto v = io::readImage(path);
    if (!v) return v.error();
    in.volume = std::move(v.value());
    return in;
  }
  auto scan = dicom::scanInputs({fs::path(path)}, {});
  if (!scan) return scan.error();
  std::vector<dicom::SkippedFile> skipped = scan->skipped;
  auto plans = dicom::planVolumes(*scan, &skipped);
  if (const auto* e = dicom::firstListingError(skipped))
    return Error(ErrorCode::Io, e->reason + "; the volume may be incomplete", e->path);
  if (plans.empty() && skipped.size() == 1) return Error(ErrorCode::NotFound, skipped[0].reason, skipped[0].path);
  auto choice = dicom::chooseVolume(plans, seriesUid, volumeIndex, path);
  if (!choice) return choice.error();
  const std::size_t chosen = choice->index;
  if (volumeIndex == 0 && !choice->others.empty())
    std::cerr << "lumen-cli: " << choice->others.size() + 1 << " volumes found; using volume " << (chosen + 1)
              << " (most slices); choose with --volume N or --series UID\n";
  for (const auto& w : plans[chosen].info.warnings) std::cerr << "lumen-cli: warning: " << w << "\n";
  auto v = dicom::loadVolume(*scan, plans[chosen]);
  if (!v) return v.error();
  in.volume = std::move(v.value());
  in.seriesUid = plans[chosen].info.series.seriesInstanceUid;
  in.modality = plans[chosen].info.series.modality;
  in.reference = dicom::segReferenceOf(*scan, plans[chosen]);
  in.plan = plans[chosen];
  in.scan = std::move(scan.value());
  return in;
}

std::vector<int> parseRoi(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, ',')) out.push_back(std::stoi(part));
  return out;
}

bool endsWith(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

// Enhancement results keep integer HU where the input had them.
// Whether a bundle may run: shipped ones by their compiled-in pin, others by the user's list.
std::string trustState(const models::Bundle& b, const models::TrustStore& store) {
  return models::toString(models::trustOf(b.root.string(), b.modelSha256, store, shippedModels()));
}

int runModels(bool asJson, const std::string& trust, const std::string& untrust) {
  const auto path = models::modelSearchPath(shippedModels());
  auto store = models::TrustStore::load();
  if (!store) return fail(store.error().toString());
  if (!trust.empty() || !untrust.empty()) {
    auto b = models::findBundle(trust.empty() ? untrust : trust, path);
    if (!b) return fail(b.error().toString());
    if (!trust.empty()) {
      if (auto st = store->add({b->modelSha256, b->name, b->root.string()}); !st) return fail(st.error().toString());
      std::cout << "trusted " << b->name << " (SHA-256 " << b->modelSha256 << "); listed in " << store->file().string() << "\n";
    } else {
      auto removed = store->remove(b->modelSha256);
      if (!removed) return fail(removed.error().toString());
      std::cout << (*removed ? "no longer trusted: " : "was not in the trusted list: ") << b->name << "\n";
    }
    return 0;
  }
  const auto entries = models::discoverBundles(path);
  json out = json::array();
  for (const auto& e : entries) {
    if (!e.bundle) {
      out.push_back({{"folder", e.dir.string()}, {"error", e.error}});
      if (!asJson) std::cout << e.dir.filename().string() << "  (unusable: " << e.error << ")\n";
      continue;
    }
    const auto& b = *e.bundle;
    const std::string state = trustState(b, *store);
    json labels = json::object();
    for (const auto& [k, v] : b.output.channelDef) labels[std::to_string(k)] = v;
    out.push_back({{"name", b.name}, {"display_name", b.displayName()}, {"version", b.version}, {"task", models::toString(b.task)},
                   {"modality", b.extras.modalityFilter.empty() ? b.input.modality : b.extras.modalityFilter},
                   {"labels", labels}, {"sha256", b.modelSha256}, {"folder", b.root.string()}, {"trust", state}});
    if (!asJson) {
      std::cout << b.name << "  " << b.version << "  " << models::toString(b.task) << "  "
                << (b.extras.modalityFilter.empty() ? b.input.modality : b.extras.modalityFilter) << "  [";
      bool first = true;
      for (const auto& [k, v] : b.output.channelDef) {
        std::cout << (first ? "" : ", ") << k << ": " << v;
        first = false;
      }
      std::cout << "]  sha256 " << b.modelSha256.substr(0, 16) << "...  " << state << "  " << b.root.string() << "\n";
    }
  }
  if (asJson) std::cout << json{{"search_path", [&] {
                                   json p = json::array();
                                   for (const auto& s : path) p.push_back(s.string());
                                   return p;
                                 }()},
                                {"trusted_list", store->file().string()},
                                {"models", out}}
                               .dump(2)
                         << "\n";
  else if (entries.empty()) {
    std::cout << "no model bundles found in:";
    for (const auto& s : path) std::cout << " " << s.string();
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int lumen_cli_ai_main(int argc, char** argv) {
  CLI::App app{"Lumen AI commands", "lumen-cli"};
  app.require_subcommand(1);
  int verbosity = 0;
  app.add_flag("-v,--verbose", verbosity, "More log output");
  // lumen-cli's global options, before the command, mean the same here.
  int globalThreads = 0;
  bool globalProgress = false;
  app.add_option("--threads", globalThreads, "Worker threads (0 = all cores)")->check(CLI::Range(0, 256));
  app.add_flag("--progress", globalProgress, "Show progress on stderr");

  std::string model, input, output, device = "auto", roi, blend, precision = "fp32", seriesUid, saliencyPath, uncertaintyPath,
      reportPath,
      dataDir, uidSeed;
  int threads = 0, swBatch = 0, volumeIndex = 0;
  double overlap = -1;
  bool tta = false, modelsJson = false;
  auto* infer = app.add_subcommand("infer", "Run a model (MONAI bundle) on a volume");
  infer->add_option("--model,-m", model, "Bundle folder or model name (see `lumen-cli models`)")->required();
  infer->add_option("input", input, "DICOM folder/file, NIfTI or NRRD")->required();
  infer->add_option("--output,-o", output,
                    "Result: .nii, .nii.gz or .nrrd (label map / image), .dcm (DICOM SEG of a DICOM input), .json, or "
                    "a folder ending in / (an enhancement model's images as a derived DICOM series of a DICOM input)")
      ->required();
  infer->add_option("--data-dir", dataDir,
                    "Data folder holding lumen.db: a SEG of a series in it is stored there too, as a series of its study");
  infer->add_option("--uid-seed", uidSeed,
                    "SEG or derived series: derive the UIDs from this text (the same text, the same UIDs)");
  infer->add_option("--device", device, "auto, cpu, cuda or cuda:N");
  infer->add_option("--threads", threads, "CPU threads (0: LibTorch's default)");
  infer->add_option("--roi", roi, "Sliding-window size X,Y,Z (overrides the bundle)");
  infer->add_option("--overlap", overlap, "Window overlap in [0, 1)");
  infer->add_option("--sw-batch", swBatch, "Windows per forward pass");
  infer->add_option("--blend", blend, "constant or gaussian");
  infer->add_option("--precision", precision, "fp32, fp16 or bf16 (CUDA only)");
  infer->add_flag("--tta", tta, "Test-time augmentation by flips");
  infer->add_option("--series", seriesUid, "Series Instance UID (DICOM input)");
  infer->add_option("--volume", volumeIndex, "Volume number as listed by `lumen-cli info` (DICOM input)");
  infer->add_option("--saliency", saliencyPath, "Classification: write the saliency map here (.nii.gz, .nrrd)");
  infer->add_option("--uncertainty", uncertaintyPath,
                    "Segmentation: write the voxel uncertainty map here (.nii.gz, .nrrd; normalised entropy, 0..1)");
  infer->add_option("--report", reportPath, "Also write the JSON report (model, hash, device, timings) here");
  bool trustFlag = false;
  infer->add_flag("--trust", trustFlag, "Run this model even if its SHA-256 is not in the trusted list (this run only)");
  std::string trustName, untrustName;
  auto* list = app.add_subcommand("models", "List the model bundles Lumen finds; trust one (its code runs inside Lumen)");
  list->add_flag("--json", modelsJson, "Machine-readable output");
  list->add_option("--trust", trustName, "Add this bundle's SHA-256 (name or folder) to the trusted list");
  list->add_option("--untrust", untrustName, "Remove this bundle's SHA-256 from the trusted list");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  setLogLevel(verbosity >= 1 ? LogLevel::Info : LogLevel::Warning);
  try {
    if (list->parsed()) return runModels(modelsJson, trustName, untrustName);

    const bool jsonOut = endsWith(output, ".json");
    const bool segOut = endsWith(output, ".dcm");
    std::error_code ec;
    const bool seriesOut = endsWith(output, "/") || fs::is_directory(output, ec);
    if (!jsonOut && !segOut && !seriesOut && io::formatFromPath(output) == io::ImageFormat::Unknown)
      return fail(output + ": unknown output format (use .nii, .nii.gz, .nrrd, .dcm, .json or a folder/)");
    auto bundle = models::findBundle(model, models::modelSearchPath(shippedModels()));
    if (!bundle) return fail(bundle.error().toString());
    if (bundle->task == models::Task::Classification && !jsonOut)
      return fail("a classification model gives probabilities: use --output result.json (and --saliency map.nii.gz)");
    if (!saliencyPath.empty() && bundle->task != models::Task::Classification)
      return fail("--saliency: " + bundle->name + " is a " + models::toString(bundle->task) +
                  " model; only a classification has a saliency map");
    if (!uncertaintyPath.empty() && bundle->task != models::Task::Segmentation)
      return fail("--uncertainty: " + bundle->name + " is a " + models::toString(bundle->task) +
                  " model; only a segmentation has an uncertainty map");
    if (!uncertaintyPath.empty() && io::formatFromPath(uncertaintyPath) == io::ImageFormat::Unknown)
      return fail(uncertaintyPath + ": unknown format for --uncertainty (use .nii, .nii.gz or .nrrd)");
    if (segOut && bundle->task != models::Task::Segmentation)
      return fail(output + ": a DICOM SEG holds a segmentation; " + bundle->name + " is a " + models::toString(bundle->task) +
                  " model");
    if (seriesOut && bundle->task != models::Task::Enhancement)
      return fail(output + ": a derived image series holds an enhancement model's images; " + bundle->name + " is a " +
                  models::toString(bundle->task) + " model");
    if (seriesOut && fs::exists(output, ec) && !fs::is_empty(output, ec))
      return fail(output + ": the folder is not empty (a derived series goes into a folder of its own)");
    // Results are stored in the study database when their series is in it (a database that
    // does not exist yet is not created for them).
    const fs::path dbDir = dataDir.empty() ? db::StudyDatabase::defaultDataDir() : fs::path(dataDir);
    if (!dataDir.empty() && (segOut || seriesOut) && !fs::exists(dbDir / "lumen.db", ec))
      return fail("--data-dir " + dataDir + " holds no study database to store the result in");

    auto store = models::TrustStore::load();
    if (!store) return fail(store.error().toString());
    const std::string state = trustState(*bundle, *store);
    if (state == "modified")
      return fail(bundle->modelPath.string() + ": this shipped model does not match the SHA-256 Lumen was built with "
                  "(the installation was changed); reinstall Lumen, or copy the bundle elsewhere and trust it");
    models::InferenceOptions o;
    o.trustedSha256 = store->trustedHashes();
    o.trustThisModel = trustFlag;
    if (trustFlag && state == "not trusted")
      std::cerr << "lumen-cli: warning: running untrusted model " << bundle->name << " (--trust, this run only)\n";
    o.device = device;
    o.threads = threads > 0 ? threads : globalThreads;
    if (!roi.empty()) {
      try {
        o.roiSize = parseRoi(roi);
      } catch (const std::exception&) {
        return fail("--roi expects integers X,Y,Z");
      }
    }
    if (overlap >= 0) o.overlap = overlap;
    if (swBatch > 0) o.swBatchSize = swBatch;
    if (!blend.empty()) {
      if (blend != "constant" && blend != "gaussian") return fail("--blend must be constant or gaussian");
      o.blend = blend == "gaussian" ? models::BlendMode::Gaussian : models::BlendMode::Constant;
    }
    if (precision == "fp16") o.precision = models::Precision::Float16;
    else if (precision == "bf16") o.precision = models::Precision::BFloat16;
    else if (precision != "fp32") return fail("--precision must be fp32, fp16 or bf16");
    o.testTimeFlips = tta;
    o.saliency = !saliencyPath.empty();  // gradients cost memory and time: only when asked for

    auto in = loadInput(input, seriesUid, volumeIndex);
    if (!in) return fail(in.error().toString());
    if (segOut && !in->reference)
      return fail(input + ": a DICOM SEG references the images it segments: the input must be a DICOM series");
    if (seriesOut && !in->plan)
      return fail(input + ": a derived DICOM series copies its source's instances: the input must be a DICOM series");
    if (!bundle->extras.modalityFilter.empty() && !in->modality.empty() && in->modality != bundle->extras.modalityFilter)
      std::cerr << "lumen-cli: warning: the model is meant for " << bundle->extras.modalityFilter << ", the input is "
                << in->modality << "\n";

    // A result of a series in the study database becomes a series of its study there.
    const auto storeInDatabase = [&](const std::vector<fs::path>& files) -> Status {
      if (!fs::exists(dbDir / "lumen.db", ec)) return {};
      auto db = db::StudyDatabase::open(dbDir);
      if (!db) return db.error();
      auto rows = (*db)->instancesOfSeries(in->seriesUid);
      if (!rows) return rows.error();
      if (rows->empty()) {
        if (!dataDir.empty()) std::cerr << "lumen-cli: note: not stored: the series is not in the study database of --data-dir\n";
        return {};
      }
      if (auto st = (*db)->storeResults(files); !st) return Error(st.error().code, "not stored: " + st.error().toString());
      std::cerr << "lumen-cli: note: stored in the study database as a series of its study\n";
      return {};
    };

    std::string derivedSeriesUid;
    auto r = models::runInference(*bundle, in->volume, o);
    if (!r) return fail(r.error().toString());
    for (const auto& l : r->log) std::cerr << "lumen-cli: " << l << "\n";

    if (segOut) {
      if (!r->channelMasks.empty())
        return fail(output + ": this model gives overlapping channel masks; write them as .nii.gz (a SEG of one label "
                    "map per voxel is what Lumen writes)");
      // A copy: the output still gives the label volumes of the JSON report below.
      auto labels = r->output.pixelType() == PixelType::UInt8 ? Result<Volume>(r->output.clone())
                                                              : r->output.convertTo(PixelType::UInt8);
      if (!labels) return fail(labels.error().toString());
      std::vector<LabelInfo> infos;
      for (const auto& [value, name] : r->labelNames) {
        if (value <= 0 || value > 255) continue;
        LabelInfo li;
        li.value = value;
        li.name = name;
        li.color = defaultLabelColor(value);
        infos.push_back(li);
      }
      dicom::SegWriteOptions so;
      so.algorithm = {dicom::SegAlgorithm::Type::Automatic, r->model, r->version, r->sha256};
      so.seriesDescription = "AI segmentation: " + r->model;
      so.softwareVersion = LUMEN_VERSION;
      if (!uidSeed.empty()) {
        so.seriesInstanceUid = Sha256::uidOfText(uidSeed + "/seg-series");
        so.sopInstanceUid = Sha256::uidOfText(uidSeed + "/seg");
      }
      auto w = dicom::writeSegmentation(*labels, infos, *in->reference, so, output);
      if (!w) return fail(w.error().toString());
      for (const auto& n : w->notes) std::cerr << "lumen-cli: note: " << n << "\n";
      if (auto st = storeInDatabase({fs::path(output)}); !st) return fail(output + " was written, but " + st.error().toString());
    } else if (seriesOut) {
      auto out = models::inInputType(std::move(r->output), r->task, in->volume.pixelType());
      if (!out) return fail(out.error().toString());
      dicom::DerivedSeriesOptions so;
      so.seriesDescription = "AI enhanced: " + r->model;
      so.derivationDescription = "Made by the AI model " + r->model + " " + r->version + " (SHA-256 " + r->sha256 +
                                 ") in Lumen " + LUMEN_VERSION;
      if (!uidSeed.empty()) so.uidSeed = uidSeed + "/derived";
      auto w = dicom::writeDerivedSeries(*out, *in->scan, *in->plan, so, output);
      if (!w) return fail(w.error().toString());
      for (const auto& n : w->notes) std::cerr << "lumen-cli: note: " << n << "\n";
      if (auto st = storeInDatabase(w->files); !st) return fail(output + " was written, but " + st.error().toString());
      derivedSeriesUid = w->seriesInstanceUid;
    } else if (!jsonOut) {
      // Several channel masks (a threshold kept them all): one 4D image, channels last.
      if (!r->channelMasks.empty()) {
        if (auto s = io::writeChannels(r->channelMasks, output); !s) return fail(s.error().toString());
      } else if (r->task == models::Task::Segmentation) {
        // Written as it is (labels need no conversion) and kept: the report counts them below.
        if (auto s = io::writeImage(r->output, output); !s) return fail(s.error().toString());
      } else {
        auto out = models::inInputType(std::move(r->output), r->task, in->volume.pixelType());
        if (!out) return fail(out.error().toString());
        if (auto s = io::writeImage(*out, output); !s) return fail(s.error().toString());
      }
    }
    if (!saliencyPath.empty() && !r->saliency.empty())
      if (auto s = io::writeImage(r->saliency, saliencyPath); !s) return fail(s.error().toString());
    if (!uncertaintyPath.empty()) {
      if (r->uncertainty.empty())
        return fail("--uncertainty: " + bundle->name + " gives no uncertainty map (its output is neither softmax nor sigmoid)");
      if (auto s = io::writeImage(r->uncertainty, uncertaintyPath); !s) return fail(s.error().toString());
    }

    json j{{"model", r->model}, {"version", r->version}, {"sha256", r->sha256}, {"device", r->device},
           {"task", models::toString(r->task)}, {"seconds", r->seconds}, {"forward_seconds", r->forwardSeconds},
           {"windows", r->windows}, {"log", r->log}};
    if (!bundle->extras.disclaimer.empty()) j["disclaimer"] = bundle->extras.disclaimer;  // for reports
    if (!derivedSeriesUid.empty()) j["derived_series_uid"] = derivedSeriesUid;
    const auto& g = in->volume.geometry();
    j["input"] = {{"path", input}, {"series_uid", in->seriesUid}, {"size", {g.size[0], g.size[1], g.size[2]}},
                  {"spacing_mm", {g.spacingMm.x, g.spacingMm.y, g.spacingMm.z}}};
    if (r->task == models::Task::Classification) {
      json p = json::object();
      for (std::size_t i = 0; i < r->probabilities.size(); ++i) p[r->classNames[i]] = r->probabilities[i];
      j["probabilities"] = p;
      const int top = r->predictedClass();
      j["predicted"] = top < 0 ? json() : json(r->classNames[static_cast<std::size_t>(top)]);
      if (!r->notGraded.empty()) j["not_graded"] = r->notGraded;
      if (const std::string d = models::classificationDetail(*r); !d.empty()) j["detail"] = d;
      if (!r->sliceProbabilities.empty()) j["slice_probabilities"] = r->sliceProbabilities;
      if (const auto& e = r->estimate) {
        json slices = json::array();
        for (double v : e->slices) slices.push_back(std::isfinite(v) ? json(v) : json());  // null: not graded
        j["estimate"] = {{"name", e->name}, {"unit", e->unit}, {"value", e->value}, {"known_range", {e->lo, e->hi}}};
        if (!e->slices.empty()) j["estimate"]["slices"] = slices;
        if (const auto& rf = e->referred) {  // what the classes grade (the bundle's size_reference)
          json referredSlices = json::array();
          for (double v : rf->slices) referredSlices.push_back(std::isfinite(v) ? json(v) : json());
          j["estimate"]["referred"] = {{"reference_diameter_mm", rf->diameterMm}, {"value", rf->value},
                                       {"slices", referredSlices}, {"water_equivalent_diameter_mm", rf->sliceDiametersMm}};
        }
      }
    } else if (r->task == models::Task::Segmentation) {
      // Voxel counts and volumes of each label, or of each channel mask.
      json labels = json::object();
      const auto add = [&](const LabelStatistic& st, int label) {
        auto it = r->labelNames.find(label);
        json entry = {{"label", label}, {"voxels", st.voxels}, {"volume_ml", st.volumeMl}};
        if (auto u = r->labelUncertainty.find(label); u != r->labelUncertainty.end()) entry["mean_uncertainty"] = u->second;
        labels[it != r->labelNames.end() ? it->second : std::to_string(label)] = entry;
      };
      if (r->channelMasks.empty()) {
        for (const auto& st : labelStatistics(r->output)) add(st, st.label);
      } else {
        for (std::size_t c = 0; c < r->channelMasks.size(); ++c)
          for (const auto& st : labelStatistics(r->channelMasks[c])) add(st, static_cast<int>(c) + 1);
        j["channels"] = r->channelMasks.size();
      }
      j["labels"] = labels;
    }
    j["model_grid"] = {{"size", r->modelGridSize}, {"affine_ras", r->modelGridAffine}};
    for (const std::string& path : {jsonOut ? output : std::string(), reportPath}) {
      if (path.empty()) continue;
      std::ofstream f(path);
      f << j.dump(2) << "\n";
      if (!f) return fail(path + ": cannot write");
    }
    std::cout << "lumen-cli: " << r->model << " (" << models::toString(r->task) << ") on " << r->device << " in "
              << std::round(r->seconds * 100) / 100 << " s";
    if (r->task == models::Task::Classification) {
      const std::string detail = j.value("detail", std::string());
      if (const int top = r->predictedClass(); top >= 0)
        std::cout << ": " << r->classNames[static_cast<std::size_t>(top)] << " (p = " << r->probabilities[static_cast<std::size_t>(top)]
                  << ")" << (detail.empty() ? "" : "; ") << detail;
      else
        std::cout << ": " << detail;
    }
    std::cout << "; wrote " << output << "\n";
    return 0;
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what());
  }
}
