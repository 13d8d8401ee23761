#include "lumen/imaging/DicomSeg.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmfg/fgderimg.h>
#include <dcmtk/dcmfg/fgfracon.h>
#include <dcmtk/dcmfg/fgpixmsr.h>
#include <dcmtk/dcmfg/fgplanor.h>
#include <dcmtk/dcmfg/fgplanpo.h>
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "DcmtkSupport.h"
#include "lumen/core/DurableFile.h"

namespace fs = std::filesystem;

namespace lumen::dicom {

namespace {

constexpr const char* kSegmentationStorage = UID_SegmentationStorage;

std::string num(double v) {
  // DS allows 16 characters: %.10g keeps sub-micrometre precision for positions in mm.
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", std::abs(v) < 1e-9 ? 0.0 : v);
  return buf;
}

Error segError(const std::string& path, const std::string& why) { return Error(ErrorCode::Corrupt, why, path); }

std::string conditionText(const OFCondition& c) { return c.text() ? c.text() : "unknown DCMTK error"; }

// sRGB <-> CIE XYZ (D50, Bradford-adapted: the ICC profile connection space DICOM names).
constexpr double kToXyz[3][3] = {{0.4360747, 0.3850649, 0.1430804},
                                 {0.2225045, 0.7168786, 0.0606169},
                                 {0.0139322, 0.0971045, 0.7141733}};
constexpr double kToRgb[3][3] = {{3.1338561, -1.6168667, -0.4906146},
                                 {-0.9787684, 1.9161415, 0.0334540},
                                 {0.0719453, -0.2289914, 1.4052427}};
constexpr double kWhite[3] = {0.96422, 1.0, 0.82521};

double srgbToLinear(double c) { return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4); }
double linearToSrgb(double c) { return c <= 0.0031308 ? 12.92 * c : 1.055 * std::pow(c, 1.0 / 2.4) - 0.055; }
double labF(double t) { return t > 216.0 / 24389.0 ? std::cbrt(t) : (24389.0 / 27.0 * t + 16.0) / 116.0; }
double labFInv(double f) { return f * f * f > 216.0 / 24389.0 ? f * f * f : (116.0 * f - 16.0) / (24389.0 / 27.0); }

std::uint16_t clamp16(double v) { return static_cast<std::uint16_t>(std::clamp(std::lround(v), 0L, 65535L)); }

}  // namespace

std::array<std::uint16_t, 3> rgbToDicomLab(Rgb8 rgb) {
  const double lin[3] = {srgbToLinear(rgb.r / 255.0), srgbToLinear(rgb.g / 255.0), srgbToLinear(rgb.b / 255.0)};
  double f[3];
  for (int r = 0; r < 3; ++r)
    f[r] = labF((kToXyz[r][0] * lin[0] + kToXyz[r][1] * lin[1] + kToXyz[r][2] * lin[2]) / kWhite[r]);
  const double L = 116.0 * f[1] - 16.0, a = 500.0 * (f[0] - f[1]), b = 200.0 * (f[1] - f[2]);
  return {clamp16(L * 65535.0 / 100.0), clamp16((a + 128.0) * 65535.0 / 255.0), clamp16((b + 128.0) * 65535.0 / 255.0)};
}

Rgb8 dicomLabToRgb(const std::array<std::uint16_t, 3>& lab) {
  const double L = lab[0] * 100.0 / 65535.0, a = lab[1] * 255.0 / 65535.0 - 128.0, b = lab[2] * 255.0 / 65535.0 - 128.0;
  const double fy = (L + 16.0) / 116.0, fx = fy + a / 500.0, fz = fy - b / 200.0;
  const double xyz[3] = {labFInv(fx) * kWhite[0], labFInv(fy) * kWhite[1], labFInv(fz) * kWhite[2]};
  std::uint8_t out[3];
  for (int r = 0; r < 3; ++r) {
    const double lin = kToRgb[r][0] * xyz[0] + kToRgb[r][1] * xyz[1] + kToRgb[r][2] * xyz[2];
    out[r] = static_cast<std::uint8_t>(std::clamp(std::lround(linearToSrgb(std::clamp(lin, 0.0, 1.0)) * 255.0), 0L, 255L));
  }
  return {out[0], out[1], out[2]};
}

const char* toString(SegAlgorithm::Type type) {
  switch (type) {
    case SegAlgorithm::Type::Manual: return "MANUAL";
    case SegAlgorithm::Type::SemiAutomatic: return "SEMIAUTOMATIC";
    case SegAlgorithm::Type::Automatic: return "AUTOMATIC";
  }
  return "MANUAL";
}

SegReference segReferenceOf(const ScanResult& scan, const VolumePlan& plan) {
  SegReference ref;
  ref.geometry = plan.geometry;
  ref.seriesInstanceUid = plan.info.series.seriesInstanceUid;
  ref.frameOfReferenceUid = plan.info.series.frameOfReferenceUid;
  ref.seriesNumber = plan.info.series.seriesNumber;
  const auto frameOf = [&](const FrameRef& f) {
    const auto& file = scan.files[f.file];
    SegReference::Frame out{file.sopClassUid, file.sopInstanceUid, 0};
    if (file.numberOfFrames > 1) out.frameNumber = f.frame + 1;
    return out;
  };
  for (const auto& s : plan.slices) {
    std::vector<SegReference::Frame> frames{frameOf(s.a)};
    if (s.weightB != 0.0 && !(s.b == s.a)) frames.push_back(frameOf(s.b));
    if (ref.firstFile.empty()) ref.firstFile = scan.files[s.a.file].path;
    ref.slices.push_back(std::move(frames));
    ref.direct.push_back(s.direct() && plan.frameColumns == plan.geometry.size[0] && plan.frameRows == plan.geometry.size[1]);
  }
  return ref;
}

Result<SegReference> loadSegReference(const fs::path& input, const std::string& seriesUid, int volume) {
  auto scan = scanInputs({input}, {});
  if (!scan) return scan.error();
  std::vector<SkippedFile> skipped = scan->skipped;
  const auto plans = planVolumes(*scan, &skipped);
  if (const auto* e = firstListingError(skipped))
    return Error(ErrorCode::Io, e->reason + "; the series may be incomplete", e->path);
  if (plans.empty() && skipped.size() == 1) return Error(ErrorCode::NotFound, skipped[0].reason, skipped[0].path);
  auto choice = chooseVolume(plans, seriesUid, volume, input.string());
  if (!choice) return choice.error();
  return segReferenceOf(*scan, plans[choice->index]);
}

// ---------------------------------------------------------------- writing

namespace {

DcmSegTypes::E_SegmentAlgoType algoType(SegAlgorithm::Type t) {
  switch (t) {
    case SegAlgorithm::Type::Manual: return DcmSegTypes::SAT_MANUAL;
    case SegAlgorithm::Type::SemiAutomatic: return DcmSegTypes::SAT_SEMIAUTOMATIC;
    case SegAlgorithm::Type::Automatic: return DcmSegTypes::SAT_AUTOMATIC;
  }
  return DcmSegTypes::SAT_MANUAL;
}

bool validContentLabel(const std::string& s) {
  if (s.empty() || s.size() > 16) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ' '; });
}

// The standard's packing: pixel p of frame f is bit (f * rows * columns + p) of the pixel
// data, least significant bit first; frames do not start on byte boundaries.
void setBit(std::vector<Uint8>& bits, std::size_t index) { bits[index >> 3] |= static_cast<Uint8>(1u << (index & 7)); }

}  // namespace

Result<SegWriteReport> writeSegmentation(const Volume& labels, const std::vector<LabelInfo>& infos,
                                         const SegReference& ref, const SegWriteOptions& options,
                                         const fs::path& path) {
  initializeDicomLibrary();
  const std::string where = path.string();
  if (labels.empty() || labels.pixelType() != PixelType::UInt8)
    return Error(ErrorCode::InvalidArgument, "a SEG is written from an 8-bit label map", where);
  if (!sameGrid(labels.geometry(), ref.geometry, 1e-3))
    return Error(ErrorCode::InvalidArgument, "the label map is not on the grid of the series it refers to", where);
  const auto& g = labels.geometry();
  if (ref.slices.size() != g.size[2] || ref.firstFile.empty())
    return Error(ErrorCode::InvalidArgument, "the source series' slices are not known: cannot reference them", where);
  if (g.size[0] > 65535 || g.size[1] > 65535)
    return Error(ErrorCode::InvalidArgument, "slices larger than 65535 pixels cannot be written as DICOM", where);
  if (ref.frameOfReferenceUid.empty())
    return Error(ErrorCode::InvalidArgument,
                 "the source series has no frame of reference (no patient geometry): a SEG of it cannot be placed", where);
  if (!validContentLabel(options.contentLabel))
    return Error(ErrorCode::InvalidArgument, "content label '" + options.contentLabel +
                                                 "' is not a DICOM CS value (A-Z, 0-9, space, _; at most 16)", where);
  if (options.algorithm.type != SegAlgorithm::Type::Manual && options.algorithm.name.empty())
    return Error(ErrorCode::InvalidArgument, "an automatic or semi-automatic segmentation needs the algorithm's name", where);

  const std::size_t rows = g.size[1], cols = g.size[0], slice = rows * cols;
  // Which labels are present, and on which slices.
  std::array<std::vector<char>, 256> onSlice;
  std::array<bool, 256> present{};
  for (std::size_t k = 0; k < g.size[2]; ++k) {
    const std::uint8_t* s = labels.slice<std::uint8_t>(k);
    std::array<bool, 256> here{};
    for (std::size_t p = 0; p < slice; ++p) here[s[p]] = true;
    for (int v = 1; v < 256; ++v)
      if (here[v]) {
        if (!present[v]) onSlice[v].assign(g.size[2], 0);
        present[v] = true;
        onSlice[v][k] = 1;
      }
  }
  SegWriteReport report;
  for (int v = 1; v < 256; ++v)
    if (present[v]) report.segmentLabels.push_back(v);
  if (report.segmentLabels.empty()) return Error(ErrorCode::InvalidArgument, "the label map is empty: no segment to write", where);

  DcmSegmentation* raw = nullptr;
  IODGeneralEquipmentModule::EquipmentInfo equipment("Lumen", "Lumen", "0", options.softwareVersion.c_str());
  ContentIdentificationMacro ident("1", options.contentLabel.c_str(), options.seriesDescription.c_str(),
                                   options.contentCreator.c_str());
  OFCondition c = DcmSegmentation::createBinarySegmentation(raw, static_cast<Uint16>(rows), static_cast<Uint16>(cols),
                                                            equipment, ident);
  if (c.bad() || !raw) return segError(where, "cannot create the segmentation: " + conditionText(c));
  std::unique_ptr<DcmSegmentation> seg(raw);
  c = seg->importFromSourceImage(ref.firstFile.c_str());
  if (c.bad()) return segError(ref.firstFile, "cannot take patient and study from the source image: " + conditionText(c));
  const int seriesNumber = options.seriesNumber > 0 ? options.seriesNumber : ref.seriesNumber + 1000;
  seg->getSegmentationSeriesModule().setSeriesNumber(std::to_string(seriesNumber).c_str());
  seg->getSeries().setSeriesDescription(options.seriesDescription.c_str());
  if (!options.seriesInstanceUid.empty()) seg->getSeries().setSeriesInstanceUID(options.seriesInstanceUid.c_str());
  if (!options.sopInstanceUid.empty()) seg->getSOPCommon().setSOPInstanceUID(options.sopInstanceUid.c_str());

  // Segments, numbered 1..N in label order.
  for (std::size_t n = 0; n < report.segmentLabels.size(); ++n) {
    const int value = report.segmentLabels[n];
    auto it = std::find_if(infos.begin(), infos.end(), [&](const LabelInfo& i) { return i.value == value; });
    LabelInfo info = it != infos.end() ? *it : LabelInfo{};
    if (it == infos.end()) {
      info.value = value;
      info.color = defaultLabelColor(value);
    }
    if (info.name.empty()) info.name = "Label " + std::to_string(value);
    if (info.category.empty() || info.type.empty()) {
      // Category and type are required: an uncoded label is written as tissue, and said so.
      info.category = {"85756007", "SCT", "Tissue"};
      info.type = {"85756007", "SCT", "Tissue"};
      report.notes.push_back("label " + std::to_string(value) + " (" + info.name +
                             ") has no category/type code: written as SCT 85756007 Tissue");
    }
    if (static_cast<int>(n + 1) != value)
      report.notes.push_back("label " + std::to_string(value) + " is segment " + std::to_string(n + 1));
    DcmSegment* segment = nullptr;
    c = DcmSegment::create(segment, info.name.c_str(),
                           CodeSequenceMacro(info.category.value.c_str(), info.category.scheme.c_str(),
                                             info.category.meaning.c_str()),
                           CodeSequenceMacro(info.type.value.c_str(), info.type.scheme.c_str(), info.type.meaning.c_str()),
                           algoType(options.algorithm.type), options.algorithm.name.c_str());
    if (c.bad() || !segment) return segError(where, "segment '" + info.name + "': " + conditionText(c));
    const auto lab = rgbToDicomLab(info.color);
    segment->setRecommendedDisplayCIELabValue(lab[0], lab[1], lab[2]);
    Uint16 number = 0;
    c = seg->addSegment(segment, number);
    if (c.bad() || number != n + 1) {
      delete segment;
      return segError(where, "cannot add segment '" + info.name + "': " + conditionText(c));
    }
  }

  // Geometry shared by all frames.
  const Vec3 rowDir = g.direction.column(0), colDir = g.direction.column(1);
  FGPixelMeasures measures;
  measures.setPixelSpacing((num(g.spacingMm.y) + "\\" + num(g.spacingMm.x)).c_str());
  measures.setSliceThickness(num(g.spacingMm.z).c_str());
  measures.setSpacingBetweenSlices(num(g.spacingMm.z).c_str());
  std::unique_ptr<FGPlaneOrientationPatient> orientation(FGPlaneOrientationPatient::createMinimal(
      num(rowDir.x).c_str(), num(rowDir.y).c_str(), num(rowDir.z).c_str(), num(colDir.x).c_str(), num(colDir.y).c_str(),
      num(colDir.z).c_str()));
  if (!orientation || seg->addForAllFrames(measures).bad() || seg->addForAllFrames(*orientation).bad())
    return segError(where, "cannot write the frames' shared geometry");
  char dimensionUid[100];
  dcmGenerateUniqueIdentifier(dimensionUid, SITE_INSTANCE_UID_ROOT);
  auto& dims = seg->getDimensions();
  if (dims.addDimensionIndex(DCM_ReferencedSegmentNumber, dimensionUid, DCM_SegmentIdentificationSequence,
                             "ReferencedSegmentNumber").bad() ||
      dims.addDimensionIndex(DCM_ImagePositionPatient, dimensionUid, DCM_PlanePositionSequence, "ImagePositionPatient").bad())
    return segError(where, "cannot write the dimension index");

  // Frames: per segment, every slice holding it. DCMTK's own packing is kept only for its
  // bookkeeping; the pixel data is replaced below with the standard's packing.
  std::vector<std::pair<int, std::size_t>> frames;  // (label value, slice)
  std::vector<Uint8> frame(slice);
  for (std::size_t n = 0; n < report.segmentLabels.size(); ++n) {
    const int value = report.segmentLabels[n];
    for (std::size_t k = 0; k < g.size[2]; ++k) {
      if (!onSlice[value][k]) continue;
      const std::uint8_t* s = labels.slice<std::uint8_t>(k);
      for (std::size_t p = 0; p < slice; ++p) frame[p] = s[p] == value ? 1 : 0;
      const Vec3 pos = g.ijkToLps({0.0, 0.0, static_cast<double>(k)});
      std::unique_ptr<FGPlanePosPatient> position(
          FGPlanePosPatient::createMinimal(num(pos.x).c_str(), num(pos.y).c_str(), num(pos.z).c_str()));
      FGFrameContent content;
      content.setDimensionIndexValues(static_cast<Uint32>(n + 1), 0);
      content.setDimensionIndexValues(static_cast<Uint32>(k + 1), 1);
      FGDerivationImage derivation;
      DerivationImageItem* item = nullptr;
      if (!position || derivation.addDerivationImageItem(CodeSequenceMacro("113076", "DCM", "Segmentation"), "", item).bad() ||
          !item)
        return segError(where, "cannot describe frame " + std::to_string(frames.size() + 1));
      for (const auto& src : ref.slices[k]) {
        auto* si = new SourceImageItem();
        si->getPurposeOfReferenceCode().set("121322", "DCM", "Source image for image processing operation");
        si->getImageSOPInstanceReference().setReferencedSOPClassUID(src.sopClassUid.c_str());
        si->getImageSOPInstanceReference().setReferencedSOPInstanceUID(src.sopInstanceUid.c_str());
        if (src.frameNumber > 0) si->getImageSOPInstanceReference().addReferencedFrameNumber(static_cast<Uint16>(src.frameNumber));
        item->getSourceImageItems().push_back(si);
      }
      OFVector<FGBase*> perFrame;
      perFrame.push_back(position.get());
      perFrame.push_back(&content);
      perFrame.push_back(&derivation);
      c = seg->addFrame(frame.data(), static_cast<Uint16>(n + 1), perFrame);
      if (c.bad()) return segError(where, "cannot add frame " + std::to_string(frames.size() + 1) + ": " + conditionText(c));
      frames.emplace_back(value, k);
    }
  }
  report.segments = report.segmentLabels.size();
  report.frames = frames.size();

  DcmFileFormat ff;
  DcmDataset* ds = ff.getDataset();
  c = seg->writeDataset(*ds);
  if (c.bad()) return segError(where, "cannot build the SEG data set: " + conditionText(c));

  std::vector<Uint8> bits((frames.size() * slice + 7) / 8, 0);
  for (std::size_t f = 0; f < frames.size(); ++f) {
    const std::uint8_t* s = labels.slice<std::uint8_t>(frames[f].second);
    const std::size_t base = f * slice;
    for (std::size_t p = 0; p < slice; ++p)
      if (s[p] == frames[f].first) setBit(bits, base + p);
  }
  // OB values have even length.
  if (bits.size() % 2) bits.push_back(0);
  ds->findAndDeleteElement(DCM_PixelData);
  if (ds->putAndInsertUint8Array(DCM_PixelData, bits.data(), static_cast<unsigned long>(bits.size())).bad())
    return segError(where, "cannot write the pixel data");

  // Common Instance Reference: the source series and every instance referenced.
  ds->findAndDeleteElement(DCM_ReferencedSeriesSequence);
  DcmItem* seriesItem = nullptr;
  if (ds->findOrCreateSequenceItem(DCM_ReferencedSeriesSequence, seriesItem, 0).bad() || !seriesItem)
    return segError(where, "cannot write the referenced series");
  seriesItem->putAndInsertString(DCM_SeriesInstanceUID, ref.seriesInstanceUid.c_str());
  std::set<std::string> listed;
  long idx = 0;
  for (const auto& sl : ref.slices)
    for (const auto& src : sl) {
      if (!listed.insert(src.sopInstanceUid).second) continue;
      DcmItem* inst = nullptr;
      if (seriesItem->findOrCreateSequenceItem(DCM_ReferencedInstanceSequence, inst, idx++).bad() || !inst)
        return segError(where, "cannot write the referenced instances");
      inst->putAndInsertString(DCM_ReferencedSOPClassUID, src.sopClassUid.c_str());
      inst->putAndInsertString(DCM_ReferencedSOPInstanceUID, src.sopInstanceUid.c_str());
    }

  // The algorithm's identity (DCMTK 3.6.7 does not write this sequence): family, name,
  // version and, for a model, the SHA-256 of the file that ran.
  if (options.algorithm.type != SegAlgorithm::Type::Manual) {
    DcmSequenceOfItems* segments = nullptr;
    if (ds->findAndGetSequence(DCM_SegmentSequence, segments).bad() || !segments)
      return segError(where, "cannot find the segments written");
    const bool ai = !options.algorithm.sha256.empty() || options.algorithm.type == SegAlgorithm::Type::Automatic;
    for (unsigned long i = 0; i < segments->card(); ++i) {
      DcmItem* algo = nullptr;
      DcmItem* family = nullptr;
      if (segments->getItem(i)->findOrCreateSequenceItem(DCM_SegmentationAlgorithmIdentificationSequence, algo, 0).bad() ||
          algo->findOrCreateSequenceItem(DCM_AlgorithmFamilyCodeSequence, family, 0).bad())
        return segError(where, "cannot write the algorithm identification");
      family->putAndInsertString(DCM_CodeValue, ai ? "123110" : "123109");
      family->putAndInsertString(DCM_CodingSchemeDesignator, "DCM");
      family->putAndInsertString(DCM_CodeMeaning, ai ? "Artificial Intelligence" : "Manual Processing");
      algo->putAndInsertString(DCM_AlgorithmName, options.algorithm.name.c_str());
      algo->putAndInsertString(DCM_AlgorithmVersion,
                               options.algorithm.version.empty() ? "unknown" : options.algorithm.version.c_str());
      if (!options.algorithm.sha256.empty())
        algo->putAndInsertString(DCM_AlgorithmParameters, ("model SHA-256 " + options.algorithm.sha256).c_str());
    }
  }

  report.sopInstanceUid = getString(ds, DCM_SOPInstanceUID);
  report.seriesInstanceUid = getString(ds, DCM_SeriesInstanceUID);

  if (auto st = saveDicomDurably(ff, path); !st) return st.error();
  return report;
}

}  // namespace lumen::dicom
