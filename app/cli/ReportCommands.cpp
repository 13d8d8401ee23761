// lumen-cli report: a study's measurements, segment volumes (from its SEGs) and AI results
// as a DICOM SR (TID 1500), stored as a new series of the study.

#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "CliCommands.h"
#include "lumen/imaging/DicomSeg.h"
#include "lumen/imaging/DicomSr.h"
#include "lumen/imaging/MeasurementIO.h"
#include "lumen/imaging/StudyDatabase.h"
#include "lumen/imaging/VolumeLoader.h"

namespace lumen::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct Loaded {
  dicom::ScanResult scan;
  std::vector<dicom::VolumePlan> plans;
};

Result<Loaded> scanFiles(const std::vector<fs::path>& files) {
  auto scan = dicom::scanInputs(files, {});
  if (!scan) return scan.error();
  Loaded l;
  l.scan = std::move(scan.value());
  l.plans = dicom::planVolumes(l.scan);
  return l;
}

Result<dicom::SrClassification> classificationFrom(const std::string& path, const std::string& seriesUid) {
  std::ifstream f(path);
  if (!f) return Error(ErrorCode::NotFound, "cannot read", path);
  json j;
  try {
    j = json::parse(f);
  } catch (const std::exception& e) {
    return Error(ErrorCode::Corrupt, std::string("not JSON: ") + e.what(), path);
  }
  if (j.value("task", std::string()) != "classification" || !j.contains("probabilities"))
    return Error(ErrorCode::InvalidArgument, "not a classification result of `lumen-cli infer`", path);
  const std::string from = j.contains("input") ? j["input"].value("series_uid", std::string()) : std::string();
  if (from != seriesUid) return Error(ErrorCode::Inconsistent, "this result is of another series than the one reported", path);
  dicom::SrClassification c;
  c.model = j.value("model", "");
  c.version = j.value("version", "");
  c.sha256 = j.value("sha256", "");
  c.device = j.value("device", "");
  c.predicted = j.value("predicted", "");
  for (const auto& [k, v] : j["probabilities"].items()) c.probabilities.emplace_back(k, v.get<double>());
  return c;
}

}  // namespace

int runReport(const ReportOptions& o, const CommonOptions& common) {
  if (o.srPath.empty()) return fail("say where the report goes: --sr out.dcm");
  auto db = db::StudyDatabase::open(common.dataDir.empty() ? db::StudyDatabase::defaultDataDir() : common.dataDir);
  if (!db) return fail(db.error().toString());
  auto studies = (*db)->studies();
  if (!studies) return fail(studies.error().toString());
  const db::StudyRow* study = nullptr;
  for (const auto& s : *studies)
    if (s.info.studyInstanceUid == o.studyUid) study = &s;
  if (!study) return fail("study " + o.studyUid + " is not in the study database (lumen-cli list)");
  auto series = (*db)->series(study->id);
  if (!series) return fail(series.error().toString());

  // What each image series has to report: measurements per volume, SEGs made on it.
  struct Content {
    std::vector<std::pair<std::string, std::vector<Measurement>>> measurements;  // volume label -> list
    std::vector<fs::path> segs;
  };
  std::map<std::string, Content> content;
  std::map<std::string, std::vector<fs::path>> filesOf;
  for (const auto& s : *series) {
    auto inst = (*db)->instances(s.id);
    if (!inst) return fail(inst.error().toString());
    for (const auto& i : *inst) filesOf[s.info.seriesInstanceUid].push_back(i.path);
  }
  for (const auto& s : *series) {
    const std::string& uid = s.info.seriesInstanceUid;
    if (s.info.modality == "SEG") {
      for (const auto& f : filesOf[uid]) {
        const std::string ref = dicom::referencedSeriesOf(f);
        if (ref.empty()) std::cerr << "lumen-cli: note: " << f.string() << ": the SEG names no source series; left out\n";
        else content[ref].segs.push_back(f);
      }
      continue;
    }
    if (!o.seriesUid.empty() && uid != o.seriesUid) continue;
    auto whole = (*db)->measurementDocument(uid, "");
    if (!whole) return fail(whole.error().toString());
    if (!whole->empty()) {
      auto list = measurementsFromDocument(*whole, "measurements of series " + uid);
      if (!list) return fail(list.error().toString());
      if (!list->empty()) content[uid].measurements.emplace_back("", std::move(list.value()));
    }
  }
  std::vector<std::string> candidates;
  for (const auto& [uid, c] : content)
    if ((o.seriesUid.empty() || uid == o.seriesUid) && (!c.measurements.empty() || !c.segs.empty() || !o.aiResults.empty()))
      candidates.push_back(uid);
  if (!o.seriesUid.empty() && candidates.empty()) candidates.push_back(o.seriesUid);
  if (candidates.empty()) return fail("study " + o.studyUid + " has no measurements or segmentations to report");
  if (candidates.size() > 1) {
    std::string list;
    for (const auto& c : candidates) list += " " + c;
    return fail("several series of the study have results; choose one with --series:" + list);
  }
  const std::string seriesUid = candidates.front();
  if (!filesOf.count(seriesUid)) return fail("series " + seriesUid + " is not in study " + o.studyUid);

  auto loaded = scanFiles(filesOf[seriesUid]);
  if (!loaded) return fail(loaded.error().toString());
  auto choice = dicom::chooseVolume(loaded->plans, seriesUid, 0, "series " + seriesUid);
  if (!choice) return fail(choice.error().toString());
  const auto& plan = loaded->plans[choice->index];
  auto image = dicom::loadVolume(loaded->scan, plan);
  if (!image) return fail(image.error().toString());

  dicom::SrInput in;
  in.images = dicom::segReferenceOf(loaded->scan, plan);
  in.units = plan.info.units;
  in.observerName = o.observer;
  in.softwareVersion = LUMEN_VERSION;
  const Content& c = content[seriesUid];
  for (const auto& [volume, list] : c.measurements)
    for (const auto& m : list) {
      dicom::SrMeasurement sm{m, std::nullopt};
      if (isRoi(m.kind))
        if (auto st = roiStatistics(m, *image); st) sm.stats = *st;
      in.measurements.push_back(std::move(sm));
    }
  for (const auto& f : c.segs) {
    auto seg = dicom::readSegmentation(f, plan.geometry, plan.info.series.frameOfReferenceUid);
    if (!seg) return fail(seg.error().toString());
    auto id = dicom::readFileIdentity(f);
    if (!id) return fail(id.error().toString());
    dicom::SrSegmentation s{id->sopInstanceUid, id->series.seriesInstanceUid, {}};
    for (const auto& lm : measureLabels(*seg->labels, &*image)) {
      auto info = std::find_if(seg->infos.begin(), seg->infos.end(), [&](const LabelInfo& i) { return i.value == lm.label; });
      s.segments.push_back({lm.label, info != seg->infos.end() ? info->name : std::string(),
                            info != seg->infos.end() ? info->type : CodedConcept{}, lm.volumeMl, lm.mean, lm.sd});
    }
    in.segmentations.push_back(std::move(s));
  }
  for (const auto& a : o.aiResults) {
    auto cl = classificationFrom(a, seriesUid);
    if (!cl) return fail(cl.error().toString());
    in.classifications.push_back(std::move(cl.value()));
  }

  auto w = dicom::writeMeasurementReport(in, o.srPath);
  if (!w) return fail(w.error().toString());
  for (const auto& n : w->notes) std::cerr << "lumen-cli: note: " << n << "\n";
  // The report is a series of its study: kept in the managed store like a received instance.
  db::ImportOptions io;
  io.copyToStore = true;
  auto stored = (*db)->import({fs::path(o.srPath)}, io);
  if (!stored) return fail(o.srPath + " was written but could not be added to the study database: " + stored.error().toString());
  if (stored->instancesAdded + stored->instancesUpdated + stored->instancesUnchanged != 1)
    return fail(o.srPath + " was written but the study database did not take it" +
                (stored->skipped.empty() ? std::string() : ": " + stored->skipped.front().reason));
  if (common.json) {
    std::cout << json{{"sr", o.srPath}, {"sop_instance_uid", w->sopInstanceUid}, {"series_instance_uid", w->seriesInstanceUid},
                      {"groups", w->groups}, {"notes", w->notes}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "wrote " << o.srPath << ": TID 1500 measurement report, " << in.measurements.size() << " measurement(s), "
              << in.segmentations.size() << " segmentation(s), " << in.classifications.size()
              << " AI result(s); stored as a series of the study\n";
  }
  return 0;
}

}  // namespace lumen::cli
