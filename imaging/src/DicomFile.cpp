#include "lumen/imaging/DicomFile.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <sstream>

#include "DcmtkSupport.h"
#include "DicomStructureCheck.h"
#include <dcmtk/dcmdata/dcistrmf.h>

namespace lumen::dicom {

namespace fs = std::filesystem;

std::uint64_t FileInfo::frameBytes() const {
  const std::uint64_t samples = photometric == "YBR_FULL_422" && !encapsulated ? 2 : samplesPerPixel;
  return static_cast<std::uint64_t>(rows) * columns * samples * (bitsAllocated / 8u);
}

Sniff sniffFile(const fs::path& path, std::string* why) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) {
    if (why) *why = ec.message();
    return Sniff::Unreadable;
  }
  if (size == 0) return Sniff::Empty;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    if (why) *why = "cannot open for reading";
    return Sniff::Unreadable;
  }
  unsigned char buf[132] = {};
  const std::size_t n = std::fread(buf, 1, sizeof buf, f);
  std::fclose(f);
  if (n == 132 && buf[128] == 'D' && buf[129] == 'I' && buf[130] == 'C' && buf[131] == 'M') return Sniff::Dicom;
  if (n >= 8) {
    // A dataset without preamble starts with a low group (0002 meta, 0008 identifying),
    // element numbers small, in either byte order, and then an explicit VR or a length.
    const unsigned groupLE = buf[0] | (buf[1] << 8), groupBE = (buf[0] << 8) | buf[1];
    const unsigned elemLE = buf[2] | (buf[3] << 8), elemBE = (buf[2] << 8) | buf[3];
    const bool le = (groupLE == 0x0002 || groupLE == 0x0008) && elemLE < 0x0100;
    const bool be = (groupBE == 0x0002 || groupBE == 0x0008) && elemBE < 0x0100;
    if (le || be) return Sniff::RawDataset;
  }
  if (why) *why = "no DICM prefix and no recognisable DICOM data set at the start of the file";
  return Sniff::NotDicom;
}

namespace {

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Per-frame macros of enhanced objects: look in the frame's item first, then the shared one.
struct FunctionalGroups {
  DcmItem* perFrame = nullptr;
  DcmItem* shared = nullptr;
  DcmItem* macro(const DcmTagKey& seq) const {
    DcmItem* item = nullptr;
    if (perFrame && perFrame->findAndGetSequenceItem(seq, item, 0).good() && item) return item;
    item = nullptr;
    if (shared && shared->findAndGetSequenceItem(seq, item, 0).good() && item) return item;
    return nullptr;
  }
};

// Fills geometry fields from an item holding IPP / IOP / PixelSpacing (either the dataset
// itself or the plane macros of a functional group). Returns an error text or "".
std::string readGeometry(DcmItem* posItem, DcmItem* oriItem, DcmItem* spacingItem, FrameInfo& fr) {
  if (posItem && posItem->tagExistsWithValue(DCM_ImagePositionPatient)) {
    Vec3 p;
    for (int a = 0; a < 3; ++a)
      if (!posItem->findAndGetFloat64(DCM_ImagePositionPatient, p[a], a).good())
        return "ImagePositionPatient does not hold three numbers";
    if (!p.isFinite()) return "ImagePositionPatient is not finite";
    fr.positionLps = p;
    fr.hasPosition = true;
  }
  if (oriItem && oriItem->tagExistsWithValue(DCM_ImageOrientationPatient)) {
    double v[6];
    for (int a = 0; a < 6; ++a)
      if (!oriItem->findAndGetFloat64(DCM_ImageOrientationPatient, v[a], a).good())
        return "ImageOrientationPatient does not hold six numbers";
    const Vec3 r{v[0], v[1], v[2]}, c{v[3], v[4], v[5]};
    if (!r.isFinite() || !c.isFinite()) return "ImageOrientationPatient is not finite";
    if (std::fabs(r.norm() - 1.0) > 0.01 || std::fabs(c.norm() - 1.0) > 0.01 || std::fabs(r.dot(c)) > 0.01)
      return "ImageOrientationPatient is not two orthogonal unit vectors";
    fr.rowCosine = r.normalized();
    // Clean rounding of the stored cosines: make the column exactly orthogonal to the row.
    fr.columnCosine = (c - fr.rowCosine * fr.rowCosine.dot(c)).normalized();
    fr.hasOrientation = true;
  }
  if (spacingItem) {
    double sj = 0, si = 0;
    if (spacingItem->findAndGetFloat64(DCM_PixelSpacing, sj, 0).good() &&
        spacingItem->findAndGetFloat64(DCM_PixelSpacing, si, 1).good()) {
      if (!(sj > 0) || !(si > 0) || !std::isfinite(si) || !std::isfinite(sj) || si > 1e5 || sj > 1e5)
        return "PixelSpacing is not a pair of positive numbers";
      fr.spacingI = si;
      fr.spacingJ = sj;
      fr.hasPixelSpacing = true;
    }
    double t = 0;
    if (spacingItem->findAndGetFloat64(DCM_SliceThickness, t).good() && t > 0 && std::isfinite(t))
      fr.sliceThicknessMm = t;
  }
  return {};
}

void readRescale(DcmItem* item, FrameInfo& fr) {
  if (!item) return;
  double s = 1.0, b = 0.0;
  if (item->findAndGetFloat64(DCM_RescaleSlope, s).good() && std::isfinite(s) && s != 0.0) fr.rescaleSlope = s;
  if (item->findAndGetFloat64(DCM_RescaleIntercept, b).good() && std::isfinite(b)) fr.rescaleIntercept = b;
}

int readInt(DcmItem* item, const DcmTagKey& tag, int fallback) {
  if (!item) return fallback;
  Sint32 v = 0;
  if (item->findAndGetSint32(tag, v).good()) return static_cast<int>(v);
  Uint32 u = 0;
  if (item->findAndGetUint32(tag, u).good()) return static_cast<int>(u);
  Uint16 w = 0;
  if (item->findAndGetUint16(tag, w).good()) return static_cast<int>(w);
  return fallback;
}

double readDouble(DcmItem* item, const DcmTagKey& tag, double fallback) {
  if (!item) return fallback;
  Float64 v = 0;
  if (item->findAndGetFloat64(tag, v).good() && std::isfinite(v)) return v;
  return fallback;
}

void readWindows(DcmItem* item, std::vector<WindowPreset>& out) {
  if (!item) return;
  const unsigned long n = std::min(valueCount(item, DCM_WindowCenter), valueCount(item, DCM_WindowWidth));
  for (unsigned long i = 0; i < n && i < 16; ++i) {
    WindowPreset w;
    if (item->findAndGetFloat64(DCM_WindowCenter, w.center, i).good() &&
        item->findAndGetFloat64(DCM_WindowWidth, w.width, i).good() && std::isfinite(w.center) &&
        std::isfinite(w.width) && w.width > 0) {
      w.name = getString(item, DCM_WindowCenterWidthExplanation, i);
      out.push_back(w);
    }
  }
}

}  // namespace

namespace {
// The header and the object's identity (patient, study, series, SOP); any storage SOP
// class. `ff` keeps the parsed header for the image part.
Result<FileInfo> readIdentity(const fs::path& path, DcmFileFormat& ff) {
  initializeDicomLibrary();
  const std::string p = path.string();
  std::string why;
  switch (sniffFile(path, &why)) {
    case Sniff::Empty: return Error(ErrorCode::Corrupt, "empty file (0 bytes)", p);
    case Sniff::Unreadable: return Error(ErrorCode::Io, "cannot read file: " + why, p);
    case Sniff::NotDicom: return Error(ErrorCode::NotDicom, "not a DICOM file (" + why + ")", p);
    case Sniff::Dicom:
    case Sniff::RawDataset: break;
  }

  FileInfo info;
  info.path = p;
  std::error_code ec;
  info.fileSize = fs::file_size(path, ec);

  // Refuse hostile structures (deep nesting, lengths past the end) before DCMTK's
  // recursive parser sees them.
  if (auto err = checkDicomStructure(p); !err.empty()) return Error(ErrorCode::Corrupt, err, p);
  if (auto err = loadDicomHeader(ff, p); !err.empty()) return Error(ErrorCode::Corrupt, err, p);
  DcmDataset* ds = ff.getDataset();
  DcmMetaInfo* meta = ff.getMetaInfo();

  info.transferSyntaxUid = getString(meta, DCM_TransferSyntaxUID);
  if (info.transferSyntaxUid.empty()) info.transferSyntaxUid = DcmXfer(ds->getOriginalXfer()).getXferID();
  info.sopClassUid = getString(ds, DCM_SOPClassUID);
  if (info.sopClassUid.empty()) info.sopClassUid = getString(meta, DCM_MediaStorageSOPClassUID);
  info.sopInstanceUid = getString(ds, DCM_SOPInstanceUID);
  if (info.sopInstanceUid.empty()) info.sopInstanceUid = getString(meta, DCM_MediaStorageSOPInstanceUID);

  if (info.sopClassUid == UID_MediaStorageDirectoryStorage)
    return Error(ErrorCode::Unsupported, "a DICOMDIR index, not an image (open its folder or the DICOMDIR itself)", p);

  convertToUtf8IfNeeded(ds);
  info.patient.patientId = getString(ds, DCM_PatientID);
  info.patient.name = getString(ds, DCM_PatientName);
  info.patient.birthDate = getString(ds, DCM_PatientBirthDate);
  info.patient.sex = getString(ds, DCM_PatientSex);
  info.study.studyInstanceUid = getString(ds, DCM_StudyInstanceUID);
  info.study.date = getString(ds, DCM_StudyDate);
  info.study.time = getString(ds, DCM_StudyTime);
  info.study.description = getString(ds, DCM_StudyDescription);
  info.study.accessionNumber = getString(ds, DCM_AccessionNumber);
  info.study.studyId = getString(ds, DCM_StudyID);
  info.series.seriesInstanceUid = getString(ds, DCM_SeriesInstanceUID);
  info.series.modality = getString(ds, DCM_Modality);
  info.series.seriesNumber = readInt(ds, DCM_SeriesNumber, 0);
  info.series.description = getString(ds, DCM_SeriesDescription);
  info.series.bodyPart = getString(ds, DCM_BodyPartExamined);
  info.series.frameOfReferenceUid = getString(ds, DCM_FrameOfReferenceUID);
  info.series.date = getString(ds, DCM_SeriesDate);
  info.series.time = getString(ds, DCM_SeriesTime);
  for (unsigned long i = 0, n = valueCount(ds, DCM_ImageType); i < n && i < 16; ++i)
    info.imageType.push_back(upper(getString(ds, DCM_ImageType, i)));
  info.isLocalizer = std::find(info.imageType.begin(), info.imageType.end(), "LOCALIZER") != info.imageType.end();
  return info;
}
}  // namespace

bool isResultObjectClass(const std::string& uid) {
  const auto startsWith = [&](const char* p) { return uid.rfind(p, 0) == 0; };
  return uid == "1.2.840.10008.5.1.4.1.1.66.4"        // Segmentation
         || startsWith("1.2.840.10008.5.1.4.1.1.88.")  // structured reports, key objects
         || uid == "1.2.840.10008.5.1.4.1.1.104.1"     // Encapsulated PDF
         || uid == "1.2.840.10008.5.1.4.1.1.481.3"     // RT Structure Set
         || startsWith("1.2.840.10008.5.1.4.1.1.11.");  // presentation states
}

Result<FileInfo> readFileIdentity(const fs::path& path) {
  DcmFileFormat ff;
  return readIdentity(path, ff);
}

Result<FileInfo> readFileInfo(const fs::path& path) {
  DcmFileFormat ff;
  auto identity = readIdentity(path, ff);
  if (!identity) return identity.error();
  FileInfo info = std::move(identity.value());
  const std::string p = info.path;
  DcmDataset* ds = ff.getDataset();

  // ---- Pixel data and the image pixel module ----
  DcmElement* pixel = nullptr;
  if (ds->findAndGetElement(DCM_PixelData, pixel).good() && pixel) {
    info.hasPixelData = true;
  } else if (ds->findAndGetElement(DCM_FloatPixelData, pixel).good() && pixel) {
    info.hasPixelData = true;
    info.floatPixelData = true;
  }
  if (!info.hasPixelData) {
    std::string what = sopClassName(info.sopClassUid);
    return Error(ErrorCode::Unsupported,
                 "no pixel data" + (what.empty() ? std::string() : " (" + what + ")") + ": not an image", p);
  }
  const DcmXfer xfer(info.transferSyntaxUid.c_str());
  info.encapsulated = xfer.isEncapsulated();
  if (!info.encapsulated) {
    info.pixelDataLength = pixel->getLength();
    const E_TransferSyntax x = xfer.getXfer();
    if (x == EXS_LittleEndianExplicit || x == EXS_LittleEndianImplicit) {
      if (const auto* fac = dynamic_cast<const DcmInputFileStreamFactory*>(pixel->getInputStream()))
        info.pixelDataOffset = static_cast<std::uint64_t>(fac->getOffset());
    }
  }

  Uint16 u16 = 0;
  const auto need16 = [&](const DcmTagKey& tag, const char* name, std::uint16_t& out) -> std::string {
    if (!ds->findAndGetUint16(tag, u16).good()) return std::string("missing ") + name;
    out = u16;
    return {};
  };
  for (auto [tag, name, field] :
       {std::tuple{DCM_Rows, "Rows", &info.rows}, std::tuple{DCM_Columns, "Columns", &info.columns},
        std::tuple{DCM_BitsAllocated, "BitsAllocated", &info.bitsAllocated}}) {
    if (auto e = need16(tag, name, *field); !e.empty()) return Error(ErrorCode::Corrupt, e, p);
  }
  info.bitsStored = ds->findAndGetUint16(DCM_BitsStored, u16).good() ? u16 : info.bitsAllocated;
  info.highBit = ds->findAndGetUint16(DCM_HighBit, u16).good() ? u16 : static_cast<std::uint16_t>(info.bitsStored - 1);
  info.pixelRepresentation = ds->findAndGetUint16(DCM_PixelRepresentation, u16).good() ? u16 : 0;
  info.samplesPerPixel = ds->findAndGetUint16(DCM_SamplesPerPixel, u16).good() ? u16 : 1;
  info.planarConfiguration = ds->findAndGetUint16(DCM_PlanarConfiguration, u16).good() ? u16 : 0;
  info.photometric = upper(getString(ds, DCM_PhotometricInterpretation));
  if (info.photometric.empty()) info.photometric = info.samplesPerPixel == 3 ? "RGB" : "MONOCHROME2";
  if (info.floatPixelData) {
    info.bitsAllocated = info.bitsStored = 32;
    info.highBit = 31;
  }
  {
    Sint32 frames = 1;
    if (ds->findAndGetSint32(DCM_NumberOfFrames, frames).good()) {
      if (frames < 1 || frames > 1000000) {
        std::ostringstream s;
        s << "NumberOfFrames is " << frames << " (expected 1..1000000)";
        return Error(ErrorCode::Corrupt, s.str(), p);
      }
      info.numberOfFrames = static_cast<std::uint32_t>(frames);
    }
  }

  // Sanity of the pixel module: these are the lies a hostile or broken header tells.
  if (info.rows == 0 || info.columns == 0) return Error(ErrorCode::Corrupt, "Rows or Columns is zero", p);
  if (info.bitsAllocated == 1)
    return Error(ErrorCode::Unsupported, "1-bit pixel data (a binary segmentation or overlay), not an image volume", p);
  if (info.bitsAllocated != 8 && info.bitsAllocated != 16 && info.bitsAllocated != 32) {
    std::ostringstream s;
    s << "BitsAllocated is " << info.bitsAllocated << " (supported: 8, 16, 32)";
    return Error(ErrorCode::Unsupported, s.str(), p);
  }
  if (info.bitsStored == 0 || info.bitsStored > info.bitsAllocated || info.highBit >= info.bitsAllocated ||
      info.highBit + 1 < info.bitsStored) {
    std::ostringstream s;
    s << "inconsistent bit depth: BitsAllocated " << info.bitsAllocated << ", BitsStored " << info.bitsStored
      << ", HighBit " << info.highBit;
    return Error(ErrorCode::Corrupt, s.str(), p);
  }
  if (info.planarConfiguration > 1) {
    std::ostringstream s;
    s << "PlanarConfiguration is " << info.planarConfiguration << " (must be 0 or 1)";
    return Error(ErrorCode::Corrupt, s.str(), p);
  }
  if (info.samplesPerPixel != 1 && info.samplesPerPixel != 3) {
    std::ostringstream s;
    s << "SamplesPerPixel is " << info.samplesPerPixel << " (supported: 1, 3)";
    return Error(ErrorCode::Unsupported, s.str(), p);
  }
  static const char* kKnownPhotometric[] = {"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL",
                                            "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"};
  if (std::none_of(std::begin(kKnownPhotometric), std::end(kKnownPhotometric),
                   [&](const char* k) { return info.photometric == k; }))
    return Error(ErrorCode::Unsupported, "PhotometricInterpretation " + info.photometric + " is not supported", p);
  const bool monoPI = info.photometric.rfind("MONOCHROME", 0) == 0 || info.photometric == "PALETTE COLOR";
  if (monoPI != (info.samplesPerPixel == 1))
    return Error(ErrorCode::Corrupt,
                 "PhotometricInterpretation " + info.photometric + " contradicts SamplesPerPixel", p);
  if (!info.encapsulated) {
    const std::uint64_t need = info.frameBytes() * info.numberOfFrames;
    if (info.pixelDataLength < need) {
      std::ostringstream s;
      s << "pixel data holds " << info.pixelDataLength << " bytes but the header (" << info.rows << " rows x "
        << info.columns << " columns x " << info.numberOfFrames << " frames x " << info.samplesPerPixel
        << " samples x " << info.bitsAllocated << " bits) needs " << need;
      return Error(ErrorCode::Corrupt, s.str(), p);
    }
    // Deflated files are smaller than their content; for the others the pixel data
    // must fit in the file.
    const bool deflated = xfer.getXfer() == EXS_DeflatedLittleEndianExplicit;
    if (!deflated && (info.pixelDataOffset + info.pixelDataLength > info.fileSize || info.pixelDataLength > info.fileSize)) {
      std::ostringstream s;
      s << "pixel data claims " << info.pixelDataLength << " bytes but the file has only " << info.fileSize
        << " (truncated file)";
      return Error(ErrorCode::Corrupt, s.str(), p);
    }
  }

  // ---- Frame geometry, rescale and identifiers ----
  info.frameTimeMs = readDouble(ds, DCM_FrameTime, 0.0);
  info.rescaleType = getString(ds, DCM_RescaleType);
  readWindows(ds, info.windows);

  DcmSequenceOfItems* perFrameSeq = nullptr;
  DcmItem* shared = nullptr;
  ds->findAndGetSequenceItem(DCM_SharedFunctionalGroupsSequence, shared, 0);
  if (ds->findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, perFrameSeq).good() && perFrameSeq &&
      perFrameSeq->card() > 0) {
    info.enhanced = true;
    if (perFrameSeq->card() < info.numberOfFrames) {
      std::ostringstream s;
      s << "PerFrameFunctionalGroupsSequence has " << perFrameSeq->card() << " items for " << info.numberOfFrames
        << " frames";
      return Error(ErrorCode::Corrupt, s.str(), p);
    }
  }

  FrameInfo base;
  base.instanceNumber = readInt(ds, DCM_InstanceNumber, 0);
  base.acquisitionNumber = readInt(ds, DCM_AcquisitionNumber, -1);
  base.temporalPosition = readInt(ds, DCM_TemporalPositionIdentifier, -1);
  base.echoNumber = readInt(ds, DCM_EchoNumbers, 0);
  base.echoTimeMs = readDouble(ds, DCM_EchoTime, -1.0);
  base.triggerTimeMs = readDouble(ds, DCM_TriggerTime, -1.0);
  base.diffusionBValue = readDouble(ds, DCM_DiffusionBValue, -1.0);
  readRescale(ds, base);
  if (const double doseScale = readDouble(ds, DCM_DoseGridScaling, 0.0); doseScale > 0) {
    base.rescaleSlope = doseScale;  // RT Dose stores integers times this factor
    if (info.rescaleType.empty()) info.rescaleType = getString(ds, DCM_DoseUnits);
  }
  if (auto e = readGeometry(ds, ds, ds, base); !e.empty()) return Error(ErrorCode::Corrupt, e, p);
  if (!base.hasPixelSpacing) {
    // Projection radiographs: spacing at the detector. Better than 1 mm, said in a warning
    // by the volume builder since it is not the spacing at the patient.
    double sj = 0, si = 0;
    if (ds->findAndGetFloat64(DCM_ImagerPixelSpacing, sj, 0).good() &&
        ds->findAndGetFloat64(DCM_ImagerPixelSpacing, si, 1).good() && sj > 0 && si > 0 && std::isfinite(si) &&
        std::isfinite(sj)) {
      base.spacingI = si;
      base.spacingJ = sj;
    }
  }

  if (!info.enhanced) {
    const double spacingBetween = readDouble(ds, DCM_SpacingBetweenSlices, 0.0);
    std::vector<double> frameOffsets;
    if (info.numberOfFrames > 1) {
      // A legacy multi-frame with one position and a fixed step (MR 3D, NM tomo) is a
      // stack; anything else (XA, US, cine, FrameIncrementPointer = FrameTime) is a
      // sequence of 2D frames over time.
      bool timeIncrement = info.frameTimeMs > 0;
      bool gridOffsets = false;  // RT Dose: GridFrameOffsetVector gives each frame's offset
      DcmElement* fip = nullptr;
      if (ds->findAndGetElement(DCM_FrameIncrementPointer, fip).good() && fip) {
        if (auto* at = dynamic_cast<DcmAttributeTag*>(fip)) {
          for (unsigned long i = 0; i < at->getVM(); ++i) {
            DcmTagKey key;
            if (!at->getTagVal(key, i).good()) continue;
            if (key == DCM_FrameTime || key == DCM_FrameTimeVector) timeIncrement = true;
            if (key == DCM_GridFrameOffsetVector) gridOffsets = true;
          }
        }
      }
      const bool geometric = base.hasPosition && base.hasOrientation;
      if (gridOffsets && geometric && valueCount(ds, DCM_GridFrameOffsetVector) >= info.numberOfFrames) {
        for (std::uint32_t f = 0; f < info.numberOfFrames; ++f) {
          double o = 0.0;
          ds->findAndGetFloat64(DCM_GridFrameOffsetVector, o, f);
          if (!std::isfinite(o)) return Error(ErrorCode::Corrupt, "GridFrameOffsetVector is not finite", p);
          frameOffsets.push_back(o);
        }
        // Relative offsets start at 0; absolute ones at the first frame's coordinate.
        const double first = frameOffsets.front();
        for (double& o : frameOffsets) o -= first;
      } else if (!timeIncrement && geometric && spacingBetween != 0) {
        // One position and a step: DICOM gives no per-frame position to check the direction
        // against, so it is assumed (and said). A negative step, which some vendors write,
        // stacks against the normal.
        for (std::uint32_t f = 0; f < info.numberOfFrames; ++f) frameOffsets.push_back(spacingBetween * f);
        std::ostringstream n;
        n << "multi-frame file with one position and SpacingBetweenSlices " << spacingBetween
          << " mm: frames assumed to advance " << (spacingBetween > 0 ? "along" : "against")
          << " the slice normal (row x column direction); check left/right and head/feet before measuring";
        info.stackingNote = n.str();
      }
      info.isCine = frameOffsets.empty();
    }
    info.frames.reserve(info.numberOfFrames);
    const Vec3 normal = base.rowCosine.cross(base.columnCosine);
    for (std::uint32_t f = 0; f < info.numberOfFrames; ++f) {
      FrameInfo fr = base;
      fr.frameIndex = f;
      if (info.numberOfFrames > 1) {
        if (info.isCine) fr.temporalPosition = static_cast<int>(f);
        else fr.positionLps = base.positionLps + normal * frameOffsets[f];
      }
      info.frames.push_back(fr);
    }
  } else {
    info.frames.reserve(info.numberOfFrames);
    for (std::uint32_t f = 0; f < info.numberOfFrames; ++f) {
      FunctionalGroups fg{perFrameSeq->getItem(f), shared};
      FrameInfo fr = base;
      fr.frameIndex = f;
      fr.hasPosition = false;
      if (auto e = readGeometry(fg.macro(DCM_PlanePositionSequence), fg.macro(DCM_PlaneOrientationSequence),
                                fg.macro(DCM_PixelMeasuresSequence), fr);
          !e.empty()) {
        std::ostringstream s;
        s << "frame " << (f + 1) << ": " << e;
        return Error(ErrorCode::Corrupt, s.str(), p);
      }
      if (!fr.hasPixelSpacing) {
        fr.spacingI = base.spacingI;
        fr.spacingJ = base.spacingJ;
      }
      readRescale(fg.macro(DCM_PixelValueTransformationSequence), fr);
      if (DcmItem* content = fg.macro(DCM_FrameContentSequence)) {
        fr.temporalPosition = readInt(content, DCM_TemporalPositionIndex, fr.temporalPosition);
        fr.stackId = getString(content, DCM_StackID);
        fr.instanceNumber = readInt(content, DCM_InStackPositionNumber, static_cast<int>(f));
      }
      if (DcmItem* echo = fg.macro(DCM_MREchoSequence)) fr.echoTimeMs = readDouble(echo, DCM_EffectiveEchoTime, -1.0);
      if (DcmItem* diff = fg.macro(DCM_MRDiffusionSequence))
        fr.diffusionBValue = readDouble(diff, DCM_DiffusionBValue, -1.0);
      if (DcmItem* cardiac = fg.macro(DCM_CardiacSynchronizationSequence))
        fr.triggerTimeMs = readDouble(cardiac, DCM_NominalCardiacTriggerDelayTime, -1.0);
      if (f == 0 && info.windows.empty()) readWindows(fg.macro(DCM_FrameVOILUTSequence), info.windows);
      info.frames.push_back(fr);
    }
  }
  return info;
}

}  // namespace lumen::dicom
