// Label objects read onto a voxel grid: DICOM SEG (parsed directly, not through dcmseg, so
// SEGs of any writer take one path) and RT Structure Set contours.

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "DcmtkSupport.h"
#include "lumen/imaging/DicomSeg.h"

namespace fs = std::filesystem;

namespace lumen::dicom {

namespace {

constexpr const char* kRtStructureSet = "1.2.840.10008.5.1.4.1.1.481.3";

Error corrupt(const std::string& path, const std::string& why) { return Error(ErrorCode::Corrupt, why, path); }

struct Contour {
  long k = 0;
  std::vector<std::pair<double, double>> ij;  // continuous in-plane voxel indices
};

}  // namespace

bool isRtStructFile(const fs::path& path) {
  auto id = readFileIdentity(path);
  return id && id->sopClassUid == kRtStructureSet;
}

bool isLabelObjectFile(const fs::path& path) {
  auto id = readFileIdentity(path);
  return id && (id->sopClassUid == kRtStructureSet || id->sopClassUid == UID_SegmentationStorage);
}

Result<SegReadResult> readLabelObject(const fs::path& path, const ImageGeometry& reference,
                                      const std::string& frameOfReferenceUid) {
  if (isRtStructFile(path)) return readRtStruct(path, reference, frameOfReferenceUid);
  return readSegmentation(path, reference, frameOfReferenceUid);
}

Result<SegReadResult> readRtStruct(const fs::path& path, const ImageGeometry& reference,
                                   const std::string& frameOfReferenceUid) {
  initializeDicomLibrary();
  const std::string where = path.string();
  if (!reference.isValid()) return Error(ErrorCode::InvalidArgument, "the reference grid is not valid", where);
  DcmFileFormat ff;
  auto loaded = loadDicomObject(ff, where, kRtStructureSet, "an RT Structure Set");
  if (!loaded) return loaded.error();
  DcmDataset* ds = *loaded;

  SegReadResult out;
  // ROIs: number, name, frame of reference.
  DcmSequenceOfItems* rois = nullptr;
  if (ds->findAndGetSequence(DCM_StructureSetROISequence, rois).bad() || !rois || rois->card() == 0)
    return corrupt(where, "no Structure Set ROI Sequence");
  if (rois->card() > 255) return corrupt(where, std::to_string(rois->card()) + " ROIs: Lumen's label maps hold 255 labels");
  std::map<long, int> labelOf;  // ROI number -> label value
  for (unsigned long i = 0; i < rois->card(); ++i) {
    DcmItem* it = rois->getItem(i);
    Sint32 number = 0;
    if (it->findAndGetSint32(DCM_ROINumber, number).bad()) return corrupt(where, "ROI " + std::to_string(i + 1) + " has no ROI Number");
    if (labelOf.count(number)) return corrupt(where, "ROI number " + std::to_string(number) + " is used twice");
    const std::string forUid = getString(it, DCM_ReferencedFrameOfReferenceUID);
    if (out.frameOfReferenceUid.empty()) out.frameOfReferenceUid = forUid;
    if (!frameOfReferenceUid.empty() && !forUid.empty() && forUid != frameOfReferenceUid)
      return corrupt(where, "ROI '" + getString(it, DCM_ROIName) + "' is in another frame of reference than the series it is shown on");
    const int label = static_cast<int>(i) + 1;
    labelOf[number] = label;
    LabelInfo info;
    info.value = label;
    info.name = getString(it, DCM_ROIName);
    if (info.name.empty()) info.name = "ROI " + std::to_string(number);
    info.color = defaultLabelColor(label);
    out.infos.push_back(info);
  }

  auto vol = Volume::zeros(PixelType::UInt8, reference);
  if (!vol) return vol.error();
  out.labels = std::make_shared<Volume>(std::move(vol.value()));
  std::uint8_t* dst = out.labels->data<std::uint8_t>();
  const auto& g = reference;
  std::size_t offSlice = 0, notPlanar = 0, overlaps = 0, outside = 0;

  DcmSequenceOfItems* contours = nullptr;
  ds->findAndGetSequence(DCM_ROIContourSequence, contours);
  const unsigned long nRoiContours = contours ? contours->card() : 0;
  for (unsigned long r = 0; r < nRoiContours; ++r) {
    DcmItem* roi = contours->getItem(r);
    Sint32 number = 0;
    if (roi->findAndGetSint32(DCM_ReferencedROINumber, number).bad() || !labelOf.count(number))
      return corrupt(where, "ROI Contour " + std::to_string(r + 1) + " names no ROI of the Structure Set ROI Sequence");
    const int label = labelOf[number];
    auto& info = out.infos[static_cast<std::size_t>(label - 1)];
    Sint32 rgb[3];
    bool hasColour = true;
    for (int k = 0; k < 3; ++k) hasColour = hasColour && roi->findAndGetSint32(DCM_ROIDisplayColor, rgb[k], static_cast<unsigned long>(k)).good();
    if (hasColour)
      info.color = {static_cast<std::uint8_t>(std::clamp(rgb[0], 0, 255)), static_cast<std::uint8_t>(std::clamp(rgb[1], 0, 255)),
                    static_cast<std::uint8_t>(std::clamp(rgb[2], 0, 255))};
    DcmSequenceOfItems* seq = nullptr;
    if (roi->findAndGetSequence(DCM_ContourSequence, seq).bad() || !seq) continue;  // an ROI without contours
    std::map<long, std::vector<Contour>> bySlice;
    for (unsigned long ci = 0; ci < seq->card(); ++ci) {
      DcmItem* ct = seq->getItem(ci);
      const std::string type = getString(ct, DCM_ContourGeometricType);
      if (type != "CLOSED_PLANAR") {
        if (type != "POINT") ++notPlanar;  // open contours enclose nothing; points are markers
        continue;
      }
      const unsigned long values = valueCount(ct, DCM_ContourData);
      if (values < 9 || values % 3 != 0) return corrupt(where, "a contour of ROI '" + info.name + "' has " + std::to_string(values) + " coordinates");
      Contour contour;
      double kSum = 0;
      bool onSlice = true;
      double k0 = 0;
      for (unsigned long p = 0; p < values; p += 3) {
        Float64 x = 0, y = 0, z = 0;
        if (ct->findAndGetFloat64(DCM_ContourData, x, p).bad() || ct->findAndGetFloat64(DCM_ContourData, y, p + 1).bad() ||
            ct->findAndGetFloat64(DCM_ContourData, z, p + 2).bad() || !std::isfinite(x) || !std::isfinite(y) || !std::isfinite(z))
          return corrupt(where, "a contour of ROI '" + info.name + "' has a coordinate that is not a number");
        const Vec3 ijk = g.lpsToIjk({x, y, z});
        if (p == 0) k0 = ijk.z;
        onSlice = onSlice && std::abs(ijk.z - k0) < 0.1;
        kSum += ijk.z;
        contour.ij.emplace_back(ijk.x, ijk.y);
      }
      const double k = kSum / static_cast<double>(values / 3);
      contour.k = std::lround(k);
      if (!onSlice || std::abs(k - contour.k) > 0.1) {
        ++offSlice;
        continue;
      }
      if (contour.k < 0 || contour.k >= static_cast<long>(g.size[2])) {
        ++outside;
        continue;
      }
      bySlice[contour.k].push_back(std::move(contour));
    }
    // Even-odd fill of each slice's contours: a scanline through the voxel centres of
    // each row, crossings of every contour's edges collected together.
    for (const auto& [k, list] : bySlice) {
      std::uint8_t* sl = dst + static_cast<std::size_t>(k) * g.sliceVoxelCount();
      std::vector<double> xs;
      for (std::size_t j = 0; j < g.size[1]; ++j) {
        const double y = static_cast<double>(j);
        xs.clear();
        for (const auto& ct : list) {
          const auto& pts = ct.ij;
          for (std::size_t a = 0, b = pts.size() - 1; a < pts.size(); b = a++) {
            const double ya = pts[a].second, yb = pts[b].second;
            if ((ya > y) != (yb > y)) xs.push_back(pts[a].first + (y - ya) * (pts[b].first - pts[a].first) / (yb - ya));
          }
        }
        std::sort(xs.begin(), xs.end());
        for (std::size_t s = 0; s + 1 < xs.size(); s += 2) {
          const long i0 = std::max(0L, static_cast<long>(std::ceil(xs[s])));
          const long i1 = std::min(static_cast<long>(g.size[0]) - 1, static_cast<long>(std::floor(xs[s + 1])));
          for (long i = i0; i <= i1; ++i) {
            std::uint8_t& v = sl[j * g.size[0] + static_cast<std::size_t>(i)];
            if (v != 0 && v != label) ++overlaps;
            v = static_cast<std::uint8_t>(std::max<int>(v, label));
          }
        }
      }
    }
  }
  if (offSlice > 0)
    out.notes.push_back(std::to_string(offSlice) + " contour(s) do not lie on a slice of the series' grid: left out");
  if (outside > 0) out.notes.push_back(std::to_string(outside) + " contour(s) lie outside the series: left out");
  if (notPlanar > 0) out.notes.push_back(std::to_string(notPlanar) + " open contour(s) enclose nothing: left out");
  out.overlappingVoxels = overlaps;
  if (overlaps > 0)
    out.notes.push_back(std::to_string(overlaps) + " voxel(s) belong to more than one ROI: each shows the highest ROI");
  DcmItem* study = nullptr;
  if (ds->findAndGetSequenceItem(DCM_ReferencedFrameOfReferenceSequence, study, 0).good() && study) {
    DcmItem* st = nullptr;
    DcmItem* se = nullptr;
    if (study->findAndGetSequenceItem(DCM_RTReferencedStudySequence, st, 0).good() && st &&
        st->findAndGetSequenceItem(DCM_RTReferencedSeriesSequence, se, 0).good() && se)
      out.referencedSeriesUid = getString(se, DCM_SeriesInstanceUID);
  }
  out.algorithmType = "MANUAL";
  return out;
}

bool isSegmentationFile(const fs::path& path) {
  auto id = readFileIdentity(path);
  return id && id->sopClassUid == UID_SegmentationStorage;
}

std::string referencedSeriesOf(const fs::path& segFile) {
  initializeDicomLibrary();
  DcmFileFormat ff;
  if (!loadDicomHeader(ff, segFile.string()).empty()) return {};
  DcmDataset* ds = ff.getDataset();
  DcmItem* item = nullptr;
  if (ds->findAndGetSequenceItem(DCM_ReferencedSeriesSequence, item, 0).good() && item)
    return getString(item, DCM_SeriesInstanceUID);
  // An RT Structure Set names its series under its frame of reference.
  DcmItem* forItem = nullptr;
  DcmItem* study = nullptr;
  if (ds->findAndGetSequenceItem(DCM_ReferencedFrameOfReferenceSequence, forItem, 0).good() && forItem &&
      forItem->findAndGetSequenceItem(DCM_RTReferencedStudySequence, study, 0).good() && study &&
      study->findAndGetSequenceItem(DCM_RTReferencedSeriesSequence, item, 0).good() && item)
    return getString(item, DCM_SeriesInstanceUID);
  return {};
}

namespace {

bool readVec(DcmItem* item, const DcmTagKey& tag, double* out, int n) {
  if (!item) return false;
  for (int i = 0; i < n; ++i) {
    Float64 v = 0;
    if (item->findAndGetFloat64(tag, v, static_cast<unsigned long>(i)).bad() || !std::isfinite(v)) return false;
    out[i] = v;
  }
  return true;
}

DcmItem* groupItem(DcmItem* fg, const DcmTagKey& seq) {
  if (!fg) return nullptr;
  DcmItem* it = nullptr;
  return fg->findAndGetSequenceItem(seq, it, 0).good() ? it : nullptr;
}

CodedConcept codeOf(DcmItem* segItem, const DcmTagKey& seq) {
  DcmItem* it = nullptr;
  if (segItem->findAndGetSequenceItem(seq, it, 0).bad() || !it) return {};
  return {getString(it, DCM_CodeValue), getString(it, DCM_CodingSchemeDesignator), getString(it, DCM_CodeMeaning)};
}

struct SegFrame {
  int segment = 0;
  Vec3 position, row, col;
  double spacingI = 1, spacingJ = 1, thickness = 0;
};

}  // namespace

Result<SegReadResult> readSegmentation(const fs::path& path, const ImageGeometry& reference,
                                       const std::string& frameOfReferenceUid) {
  initializeDicomLibrary();
  const std::string where = path.string();
  if (!reference.isValid()) return Error(ErrorCode::InvalidArgument, "the reference grid is not valid", where);
  DcmFileFormat ff;
  auto loaded = loadDicomObject(ff, where, UID_SegmentationStorage, "a DICOM Segmentation");
  if (!loaded) return loaded.error();
  DcmDataset* ds = *loaded;
  if (ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr).bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit))
    return corrupt(where, "its pixel data cannot be decompressed");

  Uint16 rows = 0, cols = 0, bitsAllocated = 0;
  ds->findAndGetUint16(DCM_Rows, rows);
  ds->findAndGetUint16(DCM_Columns, cols);
  ds->findAndGetUint16(DCM_BitsAllocated, bitsAllocated);
  Sint32 nFrames = 1;  // absent: one frame
  if (ds->tagExistsWithValue(DCM_NumberOfFrames)) ds->findAndGetSint32(DCM_NumberOfFrames, nFrames);
  const std::string type = getString(ds, DCM_SegmentationType);
  if (rows == 0 || cols == 0 || nFrames <= 0) return corrupt(where, "no frames (Rows, Columns or Number of Frames missing)");
  const bool binary = type == "BINARY";
  if (binary ? bitsAllocated != 1 : (type != "FRACTIONAL" || bitsAllocated != 8))
    return corrupt(where, "segmentation type '" + type + "' with " + std::to_string(bitsAllocated) +
                               " bits allocated is not supported (BINARY with 1 bit, or FRACTIONAL with 8)");
  Uint16 maxFractional = 255;
  if (!binary) ds->findAndGetUint16(DCM_MaximumFractionalValue, maxFractional);

  SegReadResult out;
  out.frameOfReferenceUid = getString(ds, DCM_FrameOfReferenceUID);
  DcmItem* refSeries = nullptr;
  if (ds->findAndGetSequenceItem(DCM_ReferencedSeriesSequence, refSeries, 0).good() && refSeries)
    out.referencedSeriesUid = getString(refSeries, DCM_SeriesInstanceUID);

  // Segments.
  DcmSequenceOfItems* segSeq = nullptr;
  if (ds->findAndGetSequence(DCM_SegmentSequence, segSeq).bad() || !segSeq || segSeq->card() == 0)
    return corrupt(where, "no Segment Sequence");
  std::map<int, int> labelOf;  // segment number -> label value
  for (unsigned long i = 0; i < segSeq->card(); ++i) {
    DcmItem* it = segSeq->getItem(i);
    Uint16 number = 0;
    if (it->findAndGetUint16(DCM_SegmentNumber, number).bad() || number == 0)
      return corrupt(where, "segment " + std::to_string(i + 1) + " has no Segment Number");
    if (number > 255) return corrupt(where, "segment number " + std::to_string(number) + ": Lumen's label maps hold 255 labels");
    if (labelOf.count(number)) return corrupt(where, "segment number " + std::to_string(number) + " is used twice");
    labelOf[number] = number;
    LabelInfo info;
    info.value = number;
    info.name = getString(it, DCM_SegmentLabel);
    if (info.name.empty()) info.name = "Segment " + std::to_string(number);
    std::array<std::uint16_t, 3> lab{};
    bool hasLab = true;
    for (int k = 0; k < 3; ++k) hasLab = hasLab && it->findAndGetUint16(DCM_RecommendedDisplayCIELabValue, lab[k], k).good();
    info.color = hasLab ? dicomLabToRgb(lab) : Rgb8{255, 0, 0};
    info.category = codeOf(it, DCM_SegmentedPropertyCategoryCodeSequence);
    info.type = codeOf(it, DCM_SegmentedPropertyTypeCodeSequence);
    if (out.algorithmType.empty()) out.algorithmType = getString(it, DCM_SegmentAlgorithmType);
    out.infos.push_back(info);
  }

  // Frame geometry: per-frame groups override shared ones.
  DcmItem* shared = nullptr;
  ds->findAndGetSequenceItem(DCM_SharedFunctionalGroupsSequence, shared, 0);
  DcmSequenceOfItems* perFrameSeq = nullptr;
  ds->findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, perFrameSeq);
  if (!perFrameSeq || perFrameSeq->card() != static_cast<unsigned long>(nFrames))
    return corrupt(where, "it describes " + std::to_string(perFrameSeq ? perFrameSeq->card() : 0) +
                               " frame(s) in its Per-frame Functional Groups but has " + std::to_string(nFrames) +
                               " (Number of Frames" + (ds->tagExistsWithValue(DCM_NumberOfFrames) ? ")" : " absent)"));
  const auto lookup = [&](DcmItem* perFrame, const DcmTagKey& seq) {
    DcmItem* it = groupItem(perFrame, seq);
    return it ? it : groupItem(shared, seq);
  };
  std::vector<SegFrame> frames(static_cast<std::size_t>(nFrames));
  for (std::size_t f = 0; f < frames.size(); ++f) {
    DcmItem* pf = perFrameSeq->getItem(static_cast<unsigned long>(f));
    auto& fr = frames[f];
    const std::string name = "frame " + std::to_string(f + 1);
    Uint16 segNumber = 0;
    DcmItem* segId = lookup(pf, DCM_SegmentIdentificationSequence);
    if (!segId || segId->findAndGetUint16(DCM_ReferencedSegmentNumber, segNumber).bad() || !labelOf.count(segNumber))
      return corrupt(where, name + " names no segment of the Segment Sequence");
    fr.segment = segNumber;
    double v[6];
    if (!readVec(lookup(pf, DCM_PlanePositionSequence), DCM_ImagePositionPatient, v, 3))
      return corrupt(where, name + " has no Image Position (Patient)");
    fr.position = {v[0], v[1], v[2]};
    if (!readVec(lookup(pf, DCM_PlaneOrientationSequence), DCM_ImageOrientationPatient, v, 6))
      return corrupt(where, name + " has no Image Orientation (Patient)");
    fr.row = Vec3{v[0], v[1], v[2]}.normalized();
    fr.col = Vec3{v[3], v[4], v[5]}.normalized();
    DcmItem* pm = lookup(pf, DCM_PixelMeasuresSequence);
    if (!readVec(pm, DCM_PixelSpacing, v, 2) || !(v[0] > 0) || !(v[1] > 0))
      return corrupt(where, name + " has no Pixel Spacing");
    fr.spacingJ = v[0];
    fr.spacingI = v[1];
    if (readVec(pm, DCM_SpacingBetweenSlices, v, 1) && v[0] > 0) fr.thickness = v[0];
    else if (readVec(pm, DCM_SliceThickness, v, 1) && v[0] > 0) fr.thickness = v[0];
  }

  if (!frameOfReferenceUid.empty() && !out.frameOfReferenceUid.empty() && out.frameOfReferenceUid != frameOfReferenceUid)
    return corrupt(where, "its frame of reference is not the one of the series it is shown on");

  // Pixel data.
  const Uint8* pixels = nullptr;
  unsigned long length = 0;
  if (ds->findAndGetUint8Array(DCM_PixelData, pixels, &length).bad() || !pixels)
    return corrupt(where, "no Pixel Data");
  const std::size_t frameSize = static_cast<std::size_t>(rows) * cols;
  const std::size_t needed = binary ? (frames.size() * frameSize + 7) / 8 : frames.size() * frameSize;
  if (length < needed)
    return corrupt(where, "Pixel Data holds " + std::to_string(length) + " bytes, " + std::to_string(needed) +
                               " are needed for " + std::to_string(frames.size()) + " frames");
  const Uint8 threshold = static_cast<Uint8>(std::max<int>(1, (maxFractional + 1) / 2));
  const auto inside = [&](std::size_t f, std::size_t i, std::size_t j) {
    const std::size_t p = f * frameSize + j * cols + i;
    return binary ? ((pixels[p >> 3] >> (p & 7)) & 1u) != 0 : pixels[p] >= threshold;
  };

  auto vol = Volume::zeros(PixelType::UInt8, reference);
  if (!vol) return vol.error();
  out.labels = std::make_shared<Volume>(std::move(vol.value()));
  std::uint8_t* dst = out.labels->data<std::uint8_t>();
  Mat3 refInv;
  if (!reference.indexToPhysical().inverse(refInv)) return Error(ErrorCode::InvalidArgument, "the reference grid is degenerate", where);
  const Vec3 refRow = reference.direction.column(0), refCol = reference.direction.column(1);
  std::size_t outside = 0, overlaps = 0, resampledFrames = 0;
  const auto put = [&](std::size_t idx, int label) {
    if (dst[idx] != 0 && dst[idx] != label) ++overlaps;
    dst[idx] = static_cast<std::uint8_t>(std::max<int>(dst[idx], label));
  };
  for (std::size_t f = 0; f < frames.size(); ++f) {
    const auto& fr = frames[f];
    const int label = labelOf[fr.segment];
    // Exactly on a slice of the grid (same axes and spacing, integer offsets): copy.
    const Vec3 o = refInv * (fr.position - reference.originLps);
    const double tol = 1e-2;
    const bool aligned = (fr.row - refRow).norm() < 1e-4 && (fr.col - refCol).norm() < 1e-4 &&
                         std::abs(fr.spacingI - reference.spacingMm.x) < 1e-4 * reference.spacingMm.x &&
                         std::abs(fr.spacingJ - reference.spacingMm.y) < 1e-4 * reference.spacingMm.y &&
                         std::abs(o.x - std::round(o.x)) < tol && std::abs(o.y - std::round(o.y)) < tol &&
                         std::abs(o.z - std::round(o.z)) < tol;
    if (aligned) {
      const long oi = std::lround(o.x), oj = std::lround(o.y), ok = std::lround(o.z);
      bool any = false;
      if (ok < 0 || ok >= static_cast<long>(reference.size[2])) {
        ++outside;
        continue;
      }
      for (std::size_t j = 0; j < rows; ++j) {
        const long rj = oj + static_cast<long>(j);
        for (std::size_t i = 0; i < cols; ++i) {
          if (!inside(f, i, j)) continue;
          const long ri = oi + static_cast<long>(i);
          if (ri < 0 || rj < 0 || ri >= static_cast<long>(reference.size[0]) || rj >= static_cast<long>(reference.size[1])) {
            any = true;
            continue;
          }
          put(static_cast<std::size_t>(ri) + reference.size[0] * (static_cast<std::size_t>(rj) + reference.size[1] * static_cast<std::size_t>(ok)),
              label);
        }
      }
      if (any) ++outside;
      continue;
    }
    // Otherwise nearest neighbour: every grid voxel whose centre lies within half a slice
    // of the frame's plane takes the frame pixel its centre falls in.
    ++resampledFrames;
    const Vec3 normal = fr.row.cross(fr.col);
    // Half a slice either side, at most two of the grid's voxels (a hostile thickness must
    // not turn every frame into a scan of the whole volume).
    const double maxHalf = 2.0 * std::max({reference.spacingMm.x, reference.spacingMm.y, reference.spacingMm.z});
    const double half = std::min(maxHalf, 0.5 * (fr.thickness > 0 ? fr.thickness : std::min(fr.spacingI, fr.spacingJ)));
    const Mat3 i2p = reference.indexToPhysical();
    // The frame's footprint on the grid (its corners, one voxel of margin): only there.
    double lo[2] = {1e300, 1e300}, hi[2] = {-1e300, -1e300};
    for (int corner = 0; corner < 4; ++corner) {
      const Vec3 p = fr.position + fr.row * (fr.spacingI * ((corner & 1) ? cols : 0)) + fr.col * (fr.spacingJ * ((corner & 2) ? rows : 0));
      for (const double dn : {-half, half}) {
        const Vec3 ijk = reference.lpsToIjk(p + fr.row.cross(fr.col) * dn);
        lo[0] = std::min(lo[0], ijk.x), hi[0] = std::max(hi[0], ijk.x);
        lo[1] = std::min(lo[1], ijk.y), hi[1] = std::max(hi[1], ijk.y);
      }
    }
    const auto clampIndex = [](double v, std::size_t n) {
      return static_cast<std::size_t>(std::clamp(v, 0.0, static_cast<double>(n) - 1.0));
    };
    const std::size_t i0 = clampIndex(std::floor(lo[0]) - 1, reference.size[0]), i1 = clampIndex(std::ceil(hi[0]) + 1, reference.size[0]);
    const std::size_t j0 = clampIndex(std::floor(lo[1]) - 1, reference.size[1]), j1 = clampIndex(std::ceil(hi[1]) + 1, reference.size[1]);
    if (hi[0] < -1 || hi[1] < -1 || lo[0] > static_cast<double>(reference.size[0]) || lo[1] > static_cast<double>(reference.size[1]))
      continue;
    for (std::size_t k = 0; k < reference.size[2]; ++k) {
      // Skip slices that the slab does not reach (distance of the slice's corners).
      double dmin = 1e300, dmax = -1e300;
      for (int corner = 0; corner < 4; ++corner) {
        const Vec3 ijk{(corner & 1) ? static_cast<double>(reference.size[0] - 1) : 0.0,
                       (corner & 2) ? static_cast<double>(reference.size[1] - 1) : 0.0, static_cast<double>(k)};
        const double d = normal.dot(reference.ijkToLps(ijk) - fr.position);
        dmin = std::min(dmin, d);
        dmax = std::max(dmax, d);
      }
      if (dmin > half || dmax < -half) continue;
      for (std::size_t j = j0; j <= j1; ++j)
        for (std::size_t i = i0; i <= i1; ++i) {
          const Vec3 rel = reference.originLps + i2p * Vec3{static_cast<double>(i), static_cast<double>(j), static_cast<double>(k)} -
                           fr.position;
          if (std::abs(normal.dot(rel)) > half) continue;
          const long fi = std::lround(fr.row.dot(rel) / fr.spacingI), fj = std::lround(fr.col.dot(rel) / fr.spacingJ);
          if (fi < 0 || fj < 0 || fi >= cols || fj >= rows) continue;
          if (inside(f, static_cast<std::size_t>(fi), static_cast<std::size_t>(fj)))
            put(i + reference.size[0] * (j + reference.size[1] * k), label);
        }
    }
  }
  if (resampledFrames > 0)
    out.notes.push_back(std::to_string(resampledFrames) +
                        " frame(s) do not lie on the series' grid: resampled onto it by nearest neighbour");
  if (outside > 0)
    out.notes.push_back(std::to_string(outside) + " frame(s) lie partly or wholly outside the series' grid: that part is not shown");
  out.overlappingVoxels = overlaps;
  if (overlaps > 0)
    out.notes.push_back(std::to_string(overlaps) +
                        " voxel(s) belong to more than one segment: each shows the highest segment number");
  std::size_t set = 0;
  for (std::size_t v = 0; v < out.labels->voxelCount(); ++v) set += dst[v] != 0;
  if (set == 0 && frames.size() > 0 && outside + resampledFrames > 0)
    return corrupt(where, "none of its segments falls on the series' grid (is it a segmentation of another series?)");
  return out;
}

}  // namespace lumen::dicom
