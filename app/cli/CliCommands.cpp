#include "CliCommands.h"

#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "lumen/core/Log.h"
#include "lumen/imaging/DicomScanner.h"
#include "lumen/imaging/ImageIO.h"
#include "lumen/imaging/StudyDatabase.h"
#include "lumen/imaging/VolumeLoader.h"
#include "lumen/imaging/VolumePlanner.h"

namespace lumen::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

int fail(const std::string& message) {
  std::fprintf(stderr, "lumen-cli: error: %s\n", message.c_str());
  return 1;
}

// A progress line on stderr, redrawn in place; only when asked for and stderr is a tty.
Progress makeProgress(const CommonOptions& common) {
  if (!common.progress || !isatty(STDERR_FILENO)) return {};
  auto mutex = std::make_shared<std::mutex>();
  auto last = std::make_shared<int>(-1);
  return Progress([mutex, last](double f, std::string_view msg) {
    std::lock_guard<std::mutex> lock(*mutex);
    const int pct = std::isnan(f) ? -1 : static_cast<int>(f * 100);
    if (pct == *last) return;
    *last = pct;
    if (pct < 0) std::fprintf(stderr, "\r%.*s...          ", static_cast<int>(msg.size()), msg.data());
    else std::fprintf(stderr, "\r%.*s %3d%%", static_cast<int>(msg.size()), msg.data(), pct);
    if (pct == 100) std::fprintf(stderr, "\n");
  });
}

namespace {

std::vector<fs::path> toPaths(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

std::string num(double v) {
  std::ostringstream s;
  s << std::setprecision(10) << v;
  return s.str();
}

std::string vec(const Vec3& v) { return num(v.x) + ", " + num(v.y) + ", " + num(v.z); }

json geometryJson(const ImageGeometry& g) {
  json d = json::array();
  for (int r = 0; r < 3; ++r) d.push_back({g.direction(r, 0), g.direction(r, 1), g.direction(r, 2)});
  return {{"size", {g.size[0], g.size[1], g.size[2]}},
          {"spacing_mm", {g.spacingMm.x, g.spacingMm.y, g.spacingMm.z}},
          {"origin_lps_mm", {g.originLps.x, g.originLps.y, g.originLps.z}},
          {"direction_lps", d},
          {"orientation", orientationCode(g.direction)},
          {"oblique", isOblique(g.direction)}};
}

// No patient name/ID/birth date here: `info` output is pasted into tickets and logs.
json planJson(const dicom::VolumePlan& p, std::size_t index) {
  json windows = json::array();
  for (const auto& w : p.info.windows) windows.push_back({{"center", w.center}, {"width", w.width}, {"name", w.name}});
  return {{"index", index},
          {"modality", p.info.series.modality},
          {"series_uid", p.info.series.seriesInstanceUid},
          {"series_number", p.info.series.seriesNumber},
          {"series_description", p.info.series.description},
          {"study_uid", p.info.study.studyInstanceUid},
          {"study_description", p.info.study.description},
          {"split", p.info.splitLabel},
          {"kind", toString(p.info.stackKind)},
          {"pixel_type", toString(p.pixelType)},
          {"units", p.info.units},
          {"photometric", p.info.photometric},
          {"transfer_syntaxes", p.info.transferSyntaxes},
          {"files", p.info.files.size()},
          {"source_frames", p.sourceFrames},
          {"resampled", p.resampled},
          {"windows", windows},
          {"warnings", p.info.warnings},
          {"geometry", geometryJson(p.geometry)}};
}

void printPlan(const dicom::VolumePlan& p, std::size_t index) {
  const auto& g = p.geometry;
  std::cout << "Volume " << index << ": " << p.info.series.modality;
  if (!p.info.series.description.empty()) std::cout << " \"" << p.info.series.description << "\"";
  std::cout << ", series " << p.info.series.seriesNumber;
  if (!p.info.splitLabel.empty()) std::cout << " [" << p.info.splitLabel << "]";
  std::cout << "\n  series UID   " << p.info.series.seriesInstanceUid << "\n"
            << "  size         " << g.size[0] << " x " << g.size[1] << " x " << g.size[2] << " (" << toString(p.info.stackKind)
            << ", " << p.sourceFrames << " frame(s) from " << p.info.files.size() << " file(s))\n"
            << "  spacing      " << vec(g.spacingMm) << " mm\n"
            << "  origin       " << vec(g.originLps) << " mm (LPS)\n"
            << "  direction    [" << vec(g.direction.column(0)) << "] [" << vec(g.direction.column(1)) << "] ["
            << vec(g.direction.column(2)) << "]\n"
            << "  orientation  " << orientationCode(g.direction) << (isOblique(g.direction) ? " (oblique)" : "") << "\n"
            << "  voxels       " << toString(p.pixelType) << (p.info.units.empty() ? "" : " " + p.info.units) << ", "
            << p.info.photometric << "\n  encoding     ";
  for (std::size_t i = 0; i < p.info.transferSyntaxes.size(); ++i)
    std::cout << (i ? ", " : "") << p.info.transferSyntaxes[i];
  std::cout << "\n";
  for (const auto& w : p.info.warnings) std::cout << "  warning      " << w << "\n";
}

void printSkipped(const std::vector<dicom::SkippedFile>& skipped, std::ostream& os) {
  for (const auto& s : skipped) os << "skipped: " << s.path << ": " << s.reason << "\n";
}

struct Scanned {
  dicom::ScanResult scan;
  std::vector<dicom::VolumePlan> plans;
  std::vector<dicom::SkippedFile> skipped;  // scan skips + files in no volume
};

std::optional<Scanned> scanAndPlan(const std::vector<fs::path>& paths, const CommonOptions& common, int& exitCode) {
  dicom::ScanOptions so;
  so.threads = common.threads;
  auto scan = dicom::scanInputs(paths, so, makeProgress(common));
  if (!scan) {
    exitCode = fail(scan.error().toString());
    return std::nullopt;
  }
  Scanned s;
  s.scan = std::move(scan.value());
  s.skipped = s.scan.skipped;
  s.plans = dicom::planVolumes(s.scan, &s.skipped);
  return s;
}

}  // namespace

int runInfo(const std::vector<std::string>& paths, const CommonOptions& common) {
  int code = 0;
  auto s = scanAndPlan(toPaths(paths), common, code);
  if (!s) return code;
  if (common.json) {
    json out;
    out["volumes"] = json::array();
    for (std::size_t i = 0; i < s->plans.size(); ++i) out["volumes"].push_back(planJson(s->plans[i], i + 1));
    out["skipped"] = json::array();
    for (const auto& k : s->skipped) out["skipped"].push_back({{"path", k.path}, {"reason", k.reason}});
    out["notes"] = s->scan.notes;
    out["files_read"] = s->scan.files.size();
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << s->plans.size() << " volume(s) from " << s->scan.files.size() << " image file(s); "
              << s->skipped.size() << " file(s) skipped\n";
    for (const auto& n : s->scan.notes) std::cout << "note: " << n << "\n";
    for (std::size_t i = 0; i < s->plans.size(); ++i) printPlan(s->plans[i], i + 1);
    printSkipped(s->skipped, std::cout);
  }
  if (const auto* e = dicom::firstListingError(s->skipped))
    return fail(e->path + ": " + e->reason + "; volumes found there may be incomplete");
  if (s->plans.empty()) {
    if (s->skipped.size() == 1) return fail(s->skipped.front().path + ": " + s->skipped.front().reason);
    return fail("no image volume found in the input (" + std::to_string(s->skipped.size()) + " file(s) skipped)");
  }
  return 0;
}

int runConvert(const ConvertOptions& o, const CommonOptions& common) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  if (isSegConversion(o)) return runConvertSeg(o, common);
  if (io::formatFromPath(o.output) == io::ImageFormat::Unknown)
    return fail(o.output + ": unknown output format (use .nii, .nii.gz, .nrrd, or .dcm for a SEG with --reference)");
  int code = 0;
  auto s = scanAndPlan({fs::path(o.input)}, common, code);
  if (!s) return code;
  printSkipped(s->skipped, std::cerr);
  if (s->plans.empty()) {
    if (s->skipped.size() == 1) return fail(s->skipped.front().path + ": " + s->skipped.front().reason);
    return fail(o.input + ": no image volume found (" + std::to_string(s->skipped.size()) + " file(s) skipped)");
  }

  // A folder that could not be listed to its end may hide slices of the series.
  if (const auto* e = dicom::firstListingError(s->skipped))
    return fail(e->path + ": " + e->reason + "; the volume may be incomplete, nothing converted");
  auto choice = dicom::chooseVolume(s->plans, o.seriesUid, o.volumeIndex, o.input);
  if (!choice) return fail(choice.error().toString());
  const std::size_t chosen = choice->index;
  if (o.volumeIndex == 0 && !choice->others.empty()) {
    std::cerr << "lumen-cli: " << choice->others.size() + 1 << " volumes found; converting volume " << (chosen + 1)
              << " (the one with the most slices). Others (choose with --volume N or --series UID):\n";
    for (std::size_t c : choice->others) {
      const auto& p = s->plans[c];
      std::cerr << "  volume " << (c + 1) << ": " << p.info.series.modality << " series " << p.info.series.seriesNumber
                << " " << p.info.series.seriesInstanceUid << (p.info.splitLabel.empty() ? "" : " [" + p.info.splitLabel + "]")
                << ", " << p.geometry.size[0] << "x" << p.geometry.size[1] << "x" << p.geometry.size[2] << "\n";
    }
  }
  const auto& plan = s->plans[chosen];
  const auto tScan = Clock::now();
  for (const auto& w : plan.info.warnings) std::cerr << "lumen-cli: warning: " << w << "\n";

  dicom::LoadOptions lo;
  lo.threads = common.threads;
  auto vol = dicom::loadVolume(s->scan, plan, lo, makeProgress(common));
  if (!vol) return fail(vol.error().toString());
  const auto t1 = Clock::now();
  if (auto w = io::writeImage(*vol, o.output); !w) return fail(w.error().toString());
  const auto t2 = Clock::now();
  if (o.timing) {
    const auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    std::fprintf(stderr, "timing: scan_ms=%.1f load_ms=%.1f write_ms=%.1f total_ms=%.1f\n", ms(tScan - t0), ms(t1 - t0),
                 ms(t2 - t1), ms(t2 - t0));
  }
  if (!common.json) {
    const auto& g = vol->geometry();
    std::cout << "wrote " << o.output << ": " << g.size[0] << " x " << g.size[1] << " x " << g.size[2] << " "
              << toString(vol->pixelType()) << "\n";
  }
  return 0;
}

int runImport(const std::vector<std::string>& paths, bool copy, const CommonOptions& common) {
  auto db = db::StudyDatabase::open(common.dataDir.empty() ? db::StudyDatabase::defaultDataDir() : common.dataDir);
  if (!db) return fail(db.error().toString());
  db::ImportOptions io;
  io.copyToStore = copy;
  io.threads = common.threads;
  auto r = (*db)->import(toPaths(paths), io, makeProgress(common));
  if (!r) return fail(r.error().toString());
  if (common.json) {
    json out{{"files_scanned", r->filesScanned},
             {"added", r->instancesAdded},
             {"updated", r->instancesUpdated},
             {"unchanged", r->instancesUnchanged},
             {"skipped", json::array()}};
    for (const auto& k : r->skipped) out["skipped"].push_back({{"path", k.path}, {"reason", k.reason}});
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << "imported " << r->filesScanned << " file(s): " << r->instancesAdded << " added, " << r->instancesUpdated
              << " updated, " << r->instancesUnchanged << " already known, " << r->skipped.size() << " skipped\n";
    printSkipped(r->skipped, std::cerr);
  }
  if (const auto* e = dicom::firstListingError(r->skipped))
    return fail(e->path + ": " + e->reason + "; import again once it can be read (re-import is idempotent)");
  if (r->instancesAdded + r->instancesUpdated + r->instancesUnchanged == 0)
    return fail("nothing imported (" + std::to_string(r->skipped.size()) + " file(s) skipped)");
  return 0;
}

int runList(const CommonOptions& common) {
  auto db = db::StudyDatabase::open(common.dataDir.empty() ? db::StudyDatabase::defaultDataDir() : common.dataDir);
  if (!db) return fail(db.error().toString());
  auto patients = (*db)->patients();
  if (!patients) return fail(patients.error().toString());
  auto studies = (*db)->studies();
  if (!studies) return fail(studies.error().toString());
  json out = json::array();
  for (const auto& p : *patients) {
    json pj{{"patient_id", p.info.patientId}, {"name", p.info.name}, {"studies", json::array()}};
    if (!common.json)
      std::cout << "Patient " << (p.info.name.empty() ? "(no name)" : p.info.name) << " [" << p.info.patientId << "]: "
                << p.studyCount << " study(ies)\n";
    for (const auto& st : *studies) {
      if (st.patientId != p.id) continue;
      json sj{{"study_uid", st.info.studyInstanceUid}, {"date", st.info.date}, {"description", st.info.description},
              {"modalities", st.modalities}, {"series_count", st.seriesCount}, {"instance_count", st.instanceCount},
              {"series", json::array()}};
      if (!common.json)
        std::cout << "  Study " << st.info.date << " \"" << st.info.description << "\" " << st.modalities << ": "
                  << st.seriesCount << " series, " << st.instanceCount << " instance(s)  " << st.info.studyInstanceUid << "\n";
      auto series = (*db)->series(st.id);
      if (!series) return fail(series.error().toString());
      for (const auto& se : *series) {
        sj["series"].push_back({{"series_uid", se.info.seriesInstanceUid}, {"modality", se.info.modality},
                                {"number", se.info.seriesNumber}, {"description", se.info.description},
                                {"instance_count", se.instanceCount}});
        if (!common.json)
          std::cout << "    Series " << se.info.seriesNumber << " " << se.info.modality << " \"" << se.info.description
                    << "\": " << se.instanceCount << " instance(s)  " << se.info.seriesInstanceUid << "\n";
      }
      pj["studies"].push_back(sj);
    }
    out.push_back(pj);
  }
  if (common.json) std::cout << json{{"patients", out}}.dump(2) << "\n";
  else if (patients->empty()) std::cout << "the study database is empty (" << ((*db)->dataDir() / "lumen.db").string() << ")\n";
  return 0;
}

}  // namespace lumen::cli
