// lumen-cli report: a study's measurements, segment volumes (from its SEGs) and AI results
// as a DICOM SR (TID 1500), stored as a new series of the study.

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include <dlfcn.h>

#include "CliCommands.h"
#include "ReportContent.h"
#include "lumen/core/DurableFile.h"
#include "lumen/core/InstallPaths.h"
#include "lumen/core/Sha256.h"
#include "lumen/imaging/DicomPdf.h"
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

struct Classification {
  dicom::SrClassification sr;
  std::string disclaimer;
};

Result<Classification> classificationFrom(const std::string& path, const std::string& seriesUid) {
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
  Classification out;
  out.disclaimer = j.value("disclaimer", "");
  dicom::SrClassification& c = out.sr;
  c.model = j.value("model", "");
  c.version = j.value("version", "");
  c.sha256 = j.value("sha256", "");
  c.device = j.value("device", "");
  if (j.contains("predicted") && j["predicted"].is_string()) c.predicted = j["predicted"].get<std::string>();  // null: not graded
  if (j.contains("detail") && j["detail"].is_string()) c.detail = j["detail"].get<std::string>();
  for (const auto& [k, v] : j["probabilities"].items()) c.probabilities.emplace_back(k, v.get<double>());
  return out;
}

// The PDF is made by a plug-in that links Qt Gui (lumen-cli itself does not).
Result<std::string> renderPdf(const report::ReportContent& content) {
  const std::string path = pluginPath("LUMEN_CLI_REPORT_PLUGIN", "liblumen_cli_report.so").string();
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) return Error(ErrorCode::NotFound, std::string("PDF reports are unavailable: ") + dlerror());
  using Fn = int (*)(const report::ReportContent*, std::string*, std::string*);
  auto fn = reinterpret_cast<Fn>(dlsym(lib, "lumen_cli_report_pdf"));
  if (!fn) return Error(ErrorCode::NotFound, "not a Lumen report plug-in", path);
  std::string pdf, error;
  if (fn(&content, &pdf, &error) != 0) return Error(ErrorCode::Internal, error);
  return pdf;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// The text a measurement's row shows.
std::string valueText(const Measurement& m, const std::optional<RoiStatistics>& st, const std::string& units) {
  switch (m.kind) {
    case MeasurementKind::Distance: return fixed(lengthMm(m), 1) + " mm";
    case MeasurementKind::Angle: return fixed(angleDeg(m), 1) + " deg";
    case MeasurementKind::Point: return m.text;
    default: break;
  }
  std::string v = "area " + fixed(areaMm2(m), 1) + " mm2";
  if (st && st->samples > 0)
    v += ", mean " + fixed(st->mean, 1) + " SD " + fixed(st->sd, 1) + ", min " + fixed(st->min, 0) + " max " +
         fixed(st->max, 0) + (units.empty() ? "" : " " + units);
  return v;
}

}  // namespace

int runReport(const ReportOptions& o, const CommonOptions& common) {
  if (o.srPath.empty() && o.pdfPath.empty()) return fail("say where the report goes: --sr out.dcm and/or --pdf out.pdf");
  if (o.pdfPath.empty() && (!o.findings.empty() || !o.impression.empty() || !o.institution.empty() || !o.logo.empty()))
    return fail("--findings, --impression, --institution and --logo are for the PDF report (--pdf out.pdf)");
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

  // A series split into volumes keeps each volume's measurements under its split label.
  if (!plan.info.splitLabel.empty()) {
    auto doc = (*db)->measurementDocument(seriesUid, plan.info.splitLabel);
    if (!doc) return fail(doc.error().toString());
    auto list = measurementsFromDocument(*doc, "measurements of series " + seriesUid + " [" + plan.info.splitLabel + "]");
    if (!list) return fail(list.error().toString());
    content[seriesUid].measurements.clear();
    if (!list->empty()) content[seriesUid].measurements.emplace_back(plan.info.splitLabel, std::move(list.value()));
  }

  dicom::SrInput in;
  std::vector<std::string> disclaimers;
  std::vector<std::pair<std::shared_ptr<Volume>, std::vector<LabelInfo>>> segLabels;  // for the key images
  in.images = dicom::segReferenceOf(loaded->scan, plan);
  in.units = plan.info.units;
  in.observerName = o.observer;
  if (!o.uidSeed.empty()) {
    in.seriesInstanceUid = Sha256::uidOfText(o.uidSeed + "/sr-series");
    in.sopInstanceUid = Sha256::uidOfText(o.uidSeed + "/sr");
  }
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
    for (const auto& n : seg->notes) std::cerr << "lumen-cli: note: " << f.string() << ": " << n << "\n";
    // One label per voxel cannot give overlapping segments their volumes.
    if (seg->overlappingVoxels > 0)
      return fail(f.string() + ": its segments overlap (" + std::to_string(seg->overlappingVoxels) +
                  " voxels): their volumes would be wrong from one label per voxel; nothing written");
    auto id = dicom::readFileIdentity(f);
    if (!id) return fail(id.error().toString());
    dicom::SrSegmentation s{id->sopInstanceUid, id->series.seriesInstanceUid, {}};
    for (const auto& lm : measureLabels(*seg->labels, &*image)) {
      auto info = std::find_if(seg->infos.begin(), seg->infos.end(), [&](const LabelInfo& i) { return i.value == lm.label; });
      s.segments.push_back({lm.label, info != seg->infos.end() ? info->name : std::string(),
                            info != seg->infos.end() ? info->type : CodedConcept{}, lm.volumeMl, lm.mean, lm.sd});
    }
    in.segmentations.push_back(std::move(s));
    segLabels.emplace_back(seg->labels, seg->infos);
  }
  for (const auto& a : o.aiResults) {
    auto cl = classificationFrom(a, seriesUid);
    if (!cl) return fail(cl.error().toString());
    in.classifications.push_back(std::move(cl->sr));
    disclaimers.push_back(cl->disclaimer);
  }

  json out = json::object();
  if (!o.srPath.empty()) {
    auto w = dicom::writeMeasurementReport(in, o.srPath);
    if (!w) return fail(w.error().toString());
    for (const auto& n : w->notes) std::cerr << "lumen-cli: note: " << n << "\n";
    // The report is a series of its study: kept in the managed store like a received instance.
    if (auto st = (*db)->storeResult(o.srPath); !st)
      return fail(o.srPath + " was written but not stored in the study database: " + st.error().toString());
    out["sr"] = {{"path", o.srPath}, {"sop_instance_uid", w->sopInstanceUid}, {"series_instance_uid", w->seriesInstanceUid},
                 {"groups", w->groups}, {"notes", w->notes}};
    if (!common.json)
      std::cout << "wrote " << o.srPath << ": TID 1500 measurement report, " << in.measurements.size() << " measurement(s), "
                << in.segmentations.size() << " segmentation(s), " << in.classifications.size()
                << " AI result(s); stored as a series of the study\n";
  }

  if (!o.pdfPath.empty()) {
    report::ReportContent rc;
    const auto& info = plan.info;
    report::describeSeries(rc, info);
    rc.institution = o.institution;
    rc.logoPath = o.logo;
    rc.reader = o.observer;
    rc.findings = o.findings;
    rc.impression = o.impression;
    {
      std::time_t now = std::time(nullptr);
      char date[32];
      std::strftime(date, sizeof date, "%Y-%m-%d %H:%M", std::localtime(&now));
      rc.date = date;
    }
    // The window the series asks for, else a soft-tissue window for CT, else its range.
    double wc = 40, ww = 400;
    if (!info.windows.empty()) wc = info.windows[0].center, ww = info.windows[0].width;
    else if (info.units != "HU") {
      double lo = 1e300, hi = -1e300;
      for (std::size_t v = 0; v < image->voxelCount(); v += 7) {
        const double x = image->scalarAt(v % image->size()[0], (v / image->size()[0]) % image->size()[1],
                                         v / (image->size()[0] * image->size()[1]));
        lo = std::min(lo, x), hi = std::max(hi, x);
      }
      wc = (lo + hi) / 2, ww = std::max(1.0, hi - lo);
    }
    // Key images: each slice holding measurements, with their outlines; the slice where
    // each segment is largest, with the labels over it.
    std::map<long, std::vector<std::size_t>> bySlice;
    const auto& g = image->geometry();
    for (std::size_t i = 0; i < in.measurements.size(); ++i) {
      const auto& m = in.measurements[i].shape;
      const long k = std::lround(g.lpsToIjk(m.points[0]).z);
      bool inSlice = k >= 0 && k < static_cast<long>(g.size[2]);
      for (const auto& p : m.points) inSlice = inSlice && std::abs(g.lpsToIjk(p).z - k) < 0.05;
      rc.measurements.push_back({m.text.empty() ? std::string(toString(m.kind)) + " " + std::to_string(i + 1) : m.text,
                                 toString(m.kind), valueText(m, in.measurements[i].stats, info.units)});
      if (inSlice) bySlice[k].push_back(i);
    }
    for (const auto& [k, items] : bySlice) {
      if (rc.keyImages.size() >= 6) break;
      std::vector<std::vector<Vec3>> lines;
      std::string caption;
      for (std::size_t i : items) {
        std::vector<Vec3> line;
        for (const auto& p : outline(in.measurements[i].shape)) line.push_back(g.lpsToIjk(p));
        lines.push_back(std::move(line));
        caption += (caption.empty() ? "" : "; ") + rc.measurements[i].name + ": " + rc.measurements[i].value;
      }
      auto img = report::renderSlice(*image, static_cast<std::size_t>(k), wc, ww, nullptr, {}, lines);
      img.caption = "Image " + std::to_string(k + 1) + ": " + caption;
      rc.keyImages.push_back(std::move(img));
    }
    for (std::size_t s = 0; s < in.segmentations.size(); ++s) {
      const auto& labels = *segLabels[s].first;
      for (const auto& seg : in.segmentations[s].segments) {
        rc.segments.push_back({seg.label.empty() ? "segment " + std::to_string(seg.segmentNumber) : seg.label, "SEG",
                               fixed(seg.volumeMl, 2) + " mL, mean " + fixed(seg.mean, 1) + " SD " + fixed(seg.sd, 1) +
                                   (info.units.empty() ? "" : " " + info.units)});
        std::size_t best = 0, bestCount = 0;
        for (std::size_t k = 0; k < g.size[2]; ++k) {
          std::size_t n = 0;
          const std::uint8_t* sl = labels.slice<std::uint8_t>(k);
          for (std::size_t p = 0; p < g.sliceVoxelCount(); ++p) n += sl[p] == seg.segmentNumber;
          if (n > bestCount) best = k, bestCount = n;
        }
        if (bestCount == 0 || rc.keyImages.size() >= 8) continue;
        auto img = report::renderSlice(*image, best, wc, ww, &labels, segLabels[s].second, {});
        img.caption = "Image " + std::to_string(best + 1) + ": " + rc.segments.back().name + ", " + fixed(seg.volumeMl, 2) + " mL";
        rc.keyImages.push_back(std::move(img));
      }
    }
    for (std::size_t i = 0; i < in.classifications.size(); ++i) {
      const auto& cl = in.classifications[i];
      rc.ai.push_back({cl.model, cl.version, cl.sha256, cl.device, report::classificationResult(cl.predicted, cl.probabilities, cl.detail),
                       disclaimers[i]});
    }
    auto pdf = renderPdf(rc);
    if (!pdf) return fail(pdf.error().toString());
    if (auto st = writeFileDurably(o.pdfPath, *pdf); !st) return fail(st.error().toString());
    // And in the study, as Encapsulated PDF.
    const fs::path dataDir = common.dataDir.empty() ? db::StudyDatabase::defaultDataDir() : common.dataDir;
    const fs::path tmp = temporaryPathFor(dataDir / "report.dcm");
    dicom::EncapsulatedPdfOptions po;
    po.sourceSeriesNumber = info.series.seriesNumber;
    po.softwareVersion = LUMEN_VERSION;
    auto sop = dicom::writeEncapsulatedPdf(*pdf, in.images.firstFile, po, tmp);
    if (!sop) return fail(sop.error().toString());
    const Status stored = (*db)->storeResult(tmp);
    std::error_code ec;
    fs::remove(tmp, ec);
    if (!stored) return fail(o.pdfPath + " was written but not stored in the study: " + stored.error().toString());
    out["pdf"] = {{"path", o.pdfPath}, {"key_images", rc.keyImages.size()}, {"encapsulated_sop_instance_uid", *sop}};
    if (!common.json)
      std::cout << "wrote " << o.pdfPath << ": " << rc.measurements.size() << " measurement(s), " << rc.segments.size()
                << " segment(s), " << rc.ai.size() << " AI result(s), " << rc.keyImages.size()
                << " key image(s); stored in the study as Encapsulated PDF\n";
  }
  if (common.json) std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace lumen::cli
