#include "lumen/imaging/DerivedSeries.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <limits>
#include <set>

#include "DcmtkSupport.h"
#include "lumen/core/DurableFile.h"
#include "lumen/core/Sha256.h"

namespace lumen::dicom {

namespace fs = std::filesystem;

namespace {

struct Range {
  std::int64_t lo, hi;
  bool holds(std::int64_t v) const { return v >= lo && v <= hi; }
};

Range rangeOf(int bits, bool isSigned) {
  if (isSigned) return {-(std::int64_t{1} << (bits - 1)), (std::int64_t{1} << (bits - 1)) - 1};
  return {0, (std::int64_t{1} << bits) - 1};
}

// Volume value -> stored value of the source frame: the loader's rescale and MONOCHROME1
// inversion, undone (not rounded yet: NaN and infinities must not reach llround).
struct Inverse {
  double slope = 1, intercept = 0, invertSum = 0;
  bool invert = false;
  double operator()(double v) const {
    if (invert) v = invertSum - v;
    return (v - intercept) / slope;
  }
};

// The stored value of `v` within `r`, or false (and the nearest end; NaN: the low end)
// when it lies outside.
bool toStored(double v, const Range& r, std::int64_t& out) {
  if (std::isnan(v)) {
    out = r.lo;
    return false;
  }
  const double lo = static_cast<double>(r.lo), hi = static_cast<double>(r.hi);
  const double rounded = std::nearbyint(v);
  if (rounded < lo || rounded > hi) {
    out = rounded < lo ? r.lo : r.hi;
    return false;
  }
  out = static_cast<std::int64_t>(rounded);
  return true;
}

// Now, as a DICOM DA (YYYYMMDD) or TM (HHMMSS).
enum class Part { Date, Time };
std::string now(Part part) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char b[16];
  if (part == Part::Date) std::strftime(b, sizeof b, "%Y%m%d", &tm);
  else std::strftime(b, sizeof b, "%H%M%S", &tm);
  return b;
}

std::string newUid(const char* root) {
  char uid[100];
  return dcmGenerateUniqueIdentifier(uid, root);
}

}  // namespace

Result<DerivedSeriesReport> writeDerivedSeries(const Volume& image, const ScanResult& scan, const VolumePlan& plan,
                                               const DerivedSeriesOptions& options, const fs::path& dest) {
  // "out/" and "out" are the same folder.
  const fs::path folder = dest.has_filename() ? dest : dest.parent_path();
  const std::string where = folder.string();
  if (image.pixelType() == PixelType::RGB8)
    return Error(ErrorCode::Unsupported, "a derived series of colour images is not supported", where);
  if (!sameGrid(image.geometry(), plan.geometry))
    return Error(ErrorCode::InvalidArgument, "the derived volume is not on the source series' grid", where);
  if (plan.slices.empty()) return Error(ErrorCode::InvalidArgument, "the source series has no slices", where);
  // One plain source instance per slice: then a slice's header describes its pixels exactly.
  std::set<std::uint32_t> used;
  for (std::size_t k = 0; k < plan.slices.size(); ++k) {
    const SliceSource& s = plan.slices[k];
    const FileInfo& f = scan.files[s.a.file];
    if (!s.direct() || plan.frameColumns != plan.geometry.size[0] || plan.frameRows != plan.geometry.size[1])
      return Error(ErrorCode::Unsupported,
                   "slice " + std::to_string(k + 1) +
                       " of the source was resampled on loading (missing, uneven or tilted slices): a derived series "
                       "can only copy plain slices; save the result as NIfTI or NRRD instead",
                   f.path);
    if (f.numberOfFrames != 1 || f.enhanced)
      return Error(ErrorCode::Unsupported,
                   "a multi-frame source instance: a derived series is written for single-frame series only (save the "
                   "result as NIfTI or NRRD instead)",
                   f.path);
    if (f.samplesPerPixel != 1 || f.floatPixelData || (f.bitsAllocated != 8 && f.bitsAllocated != 16))
      return Error(ErrorCode::Unsupported, "a derived series needs 8- or 16-bit grey-scale source pixels", f.path);
    if (!used.insert(s.a.file).second)
      return Error(ErrorCode::Unsupported, "one source instance gives two slices", f.path);
  }

  std::error_code ec;
  if (fs::exists(folder, ec) && !fs::is_empty(folder, ec))
    return Error(ErrorCode::InvalidArgument, "the folder is not empty (a derived series goes into a folder of its own)",
                 where);

  const std::size_t nx = plan.geometry.size[0], ny = plan.geometry.size[1], plane = nx * ny;
  const auto inverseOf = [&](const FileInfo& f) {
    Inverse inv;
    const FrameInfo fr = f.frames.empty() ? FrameInfo{} : f.frames[0];
    inv.slope = fr.rescaleSlope != 0 ? fr.rescaleSlope : 1.0;
    inv.intercept = fr.rescaleIntercept;
    inv.invert = plan.invertMonochrome;
    inv.invertSum = plan.invertSum;
    return inv;
  };
  // The stored range: the source's when every value fits, else all of Bits Allocated, with
  // the other sign convention if only that holds them; else clipped (and said so).
  std::int64_t lo = std::numeric_limits<std::int64_t>::max(), hi = std::numeric_limits<std::int64_t>::min();
  visitScalarType(image.pixelType(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (std::size_t k = 0; k < plan.slices.size(); ++k) {
      const Inverse inv = inverseOf(scan.files[plan.slices[k].a.file]);
      const T* src = image.slice<T>(k);
      for (std::size_t p = 0; p < plane; ++p) {
        const double v = std::nearbyint(inv(static_cast<double>(src[p])));
        if (!std::isfinite(v)) continue;  // clipped below, whatever the range
        const auto limited = static_cast<std::int64_t>(std::clamp(v, -1e12, 1e12));
        lo = std::min(lo, limited);
        hi = std::max(hi, limited);
      }
    }
  });
  const FileInfo& first = scan.files[plan.slices[0].a.file];
  const int allocated = first.bitsAllocated;
  int bitsStored = first.bitsStored ? first.bitsStored : allocated;
  bool isSigned = first.pixelRepresentation == 1;
  DerivedSeriesReport report;
  if (lo > hi) lo = hi = 0;  // nothing finite
  if (!(rangeOf(bitsStored, isSigned).holds(lo) && rangeOf(bitsStored, isSigned).holds(hi))) {
    bitsStored = allocated;
    if (!(rangeOf(allocated, isSigned).holds(lo) && rangeOf(allocated, isSigned).holds(hi)) &&
        rangeOf(allocated, !isSigned).holds(lo) && rangeOf(allocated, !isSigned).holds(hi))
      isSigned = !isSigned;
    report.notes.push_back("stored values widened to " + std::to_string(allocated) + " bits" +
                           (isSigned != (first.pixelRepresentation == 1) ? std::string(isSigned ? ", signed" : ", unsigned") : ""));
  }
  const Range range = rangeOf(bitsStored, isSigned);

  report.seriesInstanceUid =
      options.uidSeed.empty() ? newUid(SITE_SERIES_UID_ROOT) : Sha256::uidOfText(options.uidSeed + "/series");
  const int seriesNumber = options.seriesNumber > 0 ? options.seriesNumber
                           : plan.info.series.seriesNumber >= 0 && plan.info.series.seriesNumber < 1000000
                               ? plan.info.series.seriesNumber + 2000
                               : 2000;
  std::string description = options.seriesDescription;
  if (description.empty())
    description = (plan.info.series.description.empty() ? std::string("Series") : plan.info.series.description) +
                  " (derived)";
  if (description.size() > 64) description.resize(64);
  const std::string date = now(Part::Date), clock = now(Part::Time);

  // Written beside the destination, then renamed into place as one folder (after removing
  // what a writer killed earlier left there).
  removeAbandonedTemporaries(folder);
  const fs::path staging = temporaryPathFor(folder);
  fs::create_directories(staging, ec);
  if (ec) return Error(ErrorCode::Io, "cannot create a folder (" + ec.message() + ")", staging.string());
  const auto abandon = [&](Error e) {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    return e;
  };
  std::vector<std::uint8_t> bytes8;
  std::vector<std::uint16_t> bytes16;
  for (std::size_t k = 0; k < plan.slices.size(); ++k) {
    const FileInfo& f = scan.files[plan.slices[k].a.file];
    DcmFileFormat ff;
    if (std::string why = loadDicomFile(ff, f.path); !why.empty()) return abandon(Error(ErrorCode::Corrupt, why, f.path));
    DcmDataset* ds = ff.getDataset();
    // A Modality LUT maps stored values in a way the loader does not undo: refused, not guessed.
    if (ds->tagExists(DCM_ModalityLUTSequence))
      return abandon(Error(ErrorCode::Unsupported,
                           "the source has a Modality LUT Sequence: a derived series is not written for it", f.path));
    ff.getMetaInfo()->clear();  // made again from the data set on saving
    // Pixels: the volume's slice as the source's stored values.
    const Inverse inv = inverseOf(f);
    std::size_t clipped = 0;
    const auto stored = [&](double v) {
      std::int64_t s = 0;
      if (!toStored(inv(v), range, s)) ++clipped;
      return s;
    };
    OFCondition put;
    visitScalarType(image.pixelType(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = image.slice<T>(k);
      if (allocated == 8) {
        bytes8.resize(plane);
        for (std::size_t p = 0; p < plane; ++p) bytes8[p] = static_cast<std::uint8_t>(stored(static_cast<double>(src[p])));
      } else {
        bytes16.resize(plane);
        for (std::size_t p = 0; p < plane; ++p)
          bytes16[p] = static_cast<std::uint16_t>(static_cast<std::int64_t>(stored(static_cast<double>(src[p]))) & 0xFFFF);
      }
    });
    report.clippedVoxels += clipped;
    ds->findAndDeleteElement(DCM_PixelData);
    put = allocated == 8 ? ds->putAndInsertUint8Array(DCM_PixelData, bytes8.data(), static_cast<unsigned long>(plane))
                         : ds->putAndInsertUint16Array(DCM_PixelData, bytes16.data(), static_cast<unsigned long>(plane));
    // Values that described the old pixels, or another instance, go.
    // Padding marked stored values the model has now changed; signatures no longer verify;
    // the source's own derivation and value mappings describe other pixels.
    for (const DcmTagKey& t : {DCM_SmallestImagePixelValue, DCM_LargestImagePixelValue, DCM_SmallestPixelValueInSeries,
                               DCM_LargestPixelValueInSeries, DCM_IconImageSequence, DCM_SourceImageSequence,
                               DCM_DerivationCodeSequence, DCM_DerivationDescription, DCM_PixelPaddingValue,
                               DCM_PixelPaddingRangeLimit, DCM_RealWorldValueMappingSequence, DCM_DigitalSignaturesSequence,
                               DCM_MACParametersSequence})
      ds->findAndDeleteElement(t, false, false);
    const auto check = [&](OFCondition c) {
      if (put.good() && c.bad()) put = c;
    };
    check(ds->putAndInsertUint16(DCM_BitsStored, static_cast<Uint16>(bitsStored)));
    check(ds->putAndInsertUint16(DCM_HighBit, static_cast<Uint16>(bitsStored - 1)));
    check(ds->putAndInsertUint16(DCM_PixelRepresentation, isSigned ? 1 : 0));
    // Identity: a new instance of a new series of the same study and frame of reference.
    const std::string sop = options.uidSeed.empty() ? newUid(SITE_INSTANCE_UID_ROOT)
                                                    : Sha256::uidOfText(options.uidSeed + "/" + std::to_string(k + 1));
    check(ds->putAndInsertString(DCM_SOPInstanceUID, sop.c_str()));
    check(ds->putAndInsertString(DCM_SeriesInstanceUID, report.seriesInstanceUid.c_str()));
    check(ds->putAndInsertString(DCM_SeriesNumber, std::to_string(seriesNumber).c_str()));
    check(ds->putAndInsertString(DCM_SeriesDescription, description.c_str()));
    check(ds->putAndInsertString(DCM_InstanceCreationDate, date.c_str()));
    check(ds->putAndInsertString(DCM_InstanceCreationTime, clock.c_str()));
    check(ds->putAndInsertString(DCM_ContentDate, date.c_str()));
    check(ds->putAndInsertString(DCM_ContentTime, clock.c_str()));
    std::string imageType = "DERIVED\\SECONDARY";
    for (std::size_t v = 2; v < f.imageType.size(); ++v) imageType += "\\" + f.imageType[v];
    check(ds->putAndInsertString(DCM_ImageType, imageType.c_str()));
    if (!options.derivationDescription.empty()) {
      std::string d = options.derivationDescription;
      if (d.size() > 1024) d.resize(1024);
      check(ds->putAndInsertString(DCM_DerivationDescription, d.c_str()));
    }
    DcmItem* source = nullptr;
    check(ds->findOrCreateSequenceItem(DCM_SourceImageSequence, source, 0));
    if (source) {
      check(source->putAndInsertString(DCM_ReferencedSOPClassUID, f.sopClassUid.c_str()));
      check(source->putAndInsertString(DCM_ReferencedSOPInstanceUID, f.sopInstanceUid.c_str()));
      DcmItem* purpose = nullptr;
      check(source->findOrCreateSequenceItem(DCM_PurposeOfReferenceCodeSequence, purpose, 0));
      if (purpose) {
        check(purpose->putAndInsertString(DCM_CodeValue, "121322"));
        check(purpose->putAndInsertString(DCM_CodingSchemeDesignator, "DCM"));
        check(purpose->putAndInsertString(DCM_CodeMeaning, "Source image for image processing operation"));
      }
    }
    if (put.bad()) return abandon(Error(ErrorCode::Internal, std::string("cannot build the derived instance: ") + put.text(), f.path));
    char name[32];
    std::snprintf(name, sizeof name, "%04zu.dcm", k + 1);
    if (auto st = saveDicomDurably(ff, staging / name); !st) return abandon(st.error());
    report.files.push_back(folder / name);
  }
  if (report.clippedVoxels)
    report.notes.push_back(std::to_string(report.clippedVoxels) + " voxel(s) outside what " + std::to_string(bitsStored) +
                           "-bit stored values hold (or not a number) were clipped");
  // An empty destination folder is replaced by the complete one.
  if (fs::exists(folder, ec)) fs::remove(folder, ec);
  fs::rename(staging, folder, ec);
  if (ec) return abandon(Error(ErrorCode::Io, "cannot move the series into place (" + ec.message() + ")", where));
  if (auto st = syncFolder(folder.has_parent_path() ? folder.parent_path() : fs::path(".")); !st) return st.error();
  return report;
}

}  // namespace lumen::dicom
