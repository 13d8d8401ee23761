// RT Structure Set contours onto a voxel grid.

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

Error rtError(const std::string& path, const std::string& why) { return Error(ErrorCode::Corrupt, why, path); }

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
    return rtError(where, "no Structure Set ROI Sequence");
  if (rois->card() > 255) return rtError(where, std::to_string(rois->card()) + " ROIs: Lumen's label maps hold 255 labels");
  std::map<long, int> labelOf;  // ROI number -> label value
  for (unsigned long i = 0; i < rois->card(); ++i) {
    DcmItem* it = rois->getItem(i);
    Sint32 number = 0;
    if (it->findAndGetSint32(DCM_ROINumber, number).bad()) return rtError(where, "ROI " + std::to_string(i + 1) + " has no ROI Number");
    if (labelOf.count(number)) return rtError(where, "ROI number " + std::to_string(number) + " is used twice");
    const std::string forUid = getString(it, DCM_ReferencedFrameOfReferenceUID);
    if (out.frameOfReferenceUid.empty()) out.frameOfReferenceUid = forUid;
    if (!frameOfReferenceUid.empty() && !forUid.empty() && forUid != frameOfReferenceUid)
      return rtError(where, "ROI '" + getString(it, DCM_ROIName) + "' is in another frame of reference than the series it is shown on");
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
      return rtError(where, "ROI Contour " + std::to_string(r + 1) + " names no ROI of the Structure Set ROI Sequence");
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
      if (values < 9 || values % 3 != 0) return rtError(where, "a contour of ROI '" + info.name + "' has " + std::to_string(values) + " coordinates");
      Contour contour;
      double kSum = 0;
      bool onSlice = true;
      double k0 = 0;
      for (unsigned long p = 0; p < values; p += 3) {
        Float64 x = 0, y = 0, z = 0;
        if (ct->findAndGetFloat64(DCM_ContourData, x, p).bad() || ct->findAndGetFloat64(DCM_ContourData, y, p + 1).bad() ||
            ct->findAndGetFloat64(DCM_ContourData, z, p + 2).bad() || !std::isfinite(x) || !std::isfinite(y) || !std::isfinite(z))
          return rtError(where, "a contour of ROI '" + info.name + "' has a coordinate that is not a number");
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

}  // namespace lumen::dicom
