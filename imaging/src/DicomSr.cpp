#include "lumen/imaging/DicomSr.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmsr/cmr/tid1500.h>
#include <dcmtk/dcmsr/codes/dcm.h>
#include <dcmtk/dcmsr/codes/sct.h>
#include <dcmtk/dcmsr/codes/ucum.h>
#include <dcmtk/dcmsr/dsrdoc.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "DcmtkSupport.h"
#include "lumen/core/DurableFile.h"

namespace fs = std::filesystem;

namespace lumen::dicom {

namespace {

using Group = TID1500_MeasurementReport::TID1501_Measurements;
using Volumetric = TID1500_MeasurementReport::TID1411_Measurements;

// A fixed UID for Lumen as a device observer (2.25 form, made once from a random UUID).
constexpr const char* kLumenDeviceUid = "2.25.170150925395870286541237066287425512061";

std::string ds(double v) {
  // DS holds 16 characters.
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string newUid() {
  char uid[100];
  dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT);
  return uid;
}

const DSRCodedEntryValue kMm("mm", "UCUM", "millimeter");
const DSRCodedEntryValue kMm2("mm2", "UCUM", "square millimeter");
const DSRCodedEntryValue kCm3("cm3", "UCUM", "cubic centimeter");
const DSRCodedEntryValue kDeg("deg", "UCUM", "degree");
const DSRCodedEntryValue kHu("[hnsf'U]", "UCUM", "Hounsfield unit");
const DSRCodedEntryValue kNoUnits("1", "UCUM", "no units");

// The intensity concept: attenuation for CT; other images have no standard concept here,
// so a private code says what it is.
DSRCodedEntryValue intensityConcept(const std::string& units) {
  if (units == "HU") return DSRCodedEntryValue("112031", "DCM", "Attenuation Coefficient");
  return DSRCodedEntryValue("INTENSITY", "99LUMEN", "Image intensity");
}
DSRCodedEntryValue intensityUnits(const std::string& units) { return units == "HU" ? kHu : kNoUnits; }

struct Failed {
  std::string what;
};
void check(const OFCondition& c, const std::string& what) {
  if (c.bad()) throw Failed{what + ": " + (c.text() ? c.text() : "DCMTK error")};
}

// Slice k of the grid whose plane holds the whole shape, or -1.
long gridSlice(const Measurement& m, const ImageGeometry& g) {
  const Vec3 n = g.direction.column(0).cross(g.direction.column(1)).normalized();
  if (std::abs(std::abs(n.dot(m.normal())) - 1.0) > 1e-4) return -1;
  const double k = g.lpsToIjk(m.points.at(0)).z;
  const long kr = std::lround(k);
  if (kr < 0 || kr >= static_cast<long>(g.size[2]) || std::abs(k - kr) > 0.05) return -1;
  if (!liesInPlane(m, g.ijkToLps({0, 0, static_cast<double>(kr)}), n, 0.05 * g.spacingMm.z)) return -1;
  return kr;
}

// The shape in DICOM image coordinates of that slice: (column, row) with (0, 0) the
// top-left corner of the first pixel, so a pixel centre is at (i + 0.5, j + 0.5).
DSRSpatialCoordinatesValue scoordOf(const Measurement& m, const ImageGeometry& g) {
  DSRTypes::E_GraphicType type = DSRTypes::GT_Polyline;
  std::vector<Vec3> pts = m.points;
  switch (m.kind) {
    case MeasurementKind::Point: type = DSRTypes::GT_Point; break;
    case MeasurementKind::Distance:
    case MeasurementKind::Angle: type = DSRTypes::GT_Polyline; break;
    case MeasurementKind::Ellipse:
    case MeasurementKind::Rectangle:
    case MeasurementKind::Polygon: pts = outline(m, 72); break;  // closed: first point repeated
  }
  DSRSpatialCoordinatesValue v(type);
  for (const auto& p : pts) {
    const Vec3 ijk = g.lpsToIjk(p);
    v.getGraphicDataList().addItem(static_cast<float>(ijk.x + 0.5), static_cast<float>(ijk.y + 0.5));
  }
  return v;
}

}  // namespace

Result<SrWriteReport> writeMeasurementReport(const SrInput& in, const fs::path& path) {
  initializeDicomLibrary();
  const std::string where = path.string();
  if (in.images.firstFile.empty() || in.images.slices.size() != in.images.geometry.size[2])
    return Error(ErrorCode::InvalidArgument, "the measured series' source images are not known", where);
  if (in.measurements.empty() && in.segmentations.empty() && in.classifications.empty())
    return Error(ErrorCode::InvalidArgument, "nothing to report: no measurement, segmentation or AI result", where);

  DcmFileFormat source;
  if (const std::string why = loadDicomHeader(source, in.images.firstFile); !why.empty())
    return Error(ErrorCode::Corrupt, why, in.images.firstFile);
  DcmDataset* src = source.getDataset();
  convertToUtf8IfNeeded(src);

  SrWriteReport report;
  std::set<std::pair<std::string, std::string>> evidence;  // (SOP class, SOP instance) of the series measured
  try {
    TID1500_MeasurementReport tid(CMR_CID7021::ImagingMeasurementReport);
    check(tid.setLanguage(CID5000_Languages::English), "language");
    // Lumen made the measurements' values; the reader, when named, made the report.
    check(tid.getObservationContext().addDeviceObserver(kLumenDeviceUid, "Lumen", "Lumen", "Lumen", "", "",
                                                        TID1001_ObservationContext::DeviceParticipatingRolesList(), "", OFFalse),
          "device observer");
    if (!in.observerName.empty())
      check(tid.getObservationContext().addPersonObserver(in.observerName.c_str()), "observer");
    check(tid.addProcedureReported(DSRCodedEntryValue(CODE_SCT_ImagingProcedure), false), "procedure");

    const auto& g = in.images.geometry;
    int counter = 0;
    for (const auto& sm : in.measurements) {
      const Measurement& m = sm.shape;
      ++counter;
      if (tid.hasIndividualMeasurements(OFTrue)) check(tid.addIndividualMeasurements(), "measurement group");
      Group& group = tid.getIndividualMeasurements();
      const std::string name = !m.text.empty() ? m.text : std::string(toString(m.kind)) + " " + std::to_string(counter);
      check(group.setTrackingIdentifier(name.c_str()), "tracking identifier");
      check(group.setTrackingUniqueIdentifier(newUid().c_str()), "tracking UID");
      long k = gridSlice(m, g);
      // On a slice the loader interpolated or shifted, the grid's pixels are not any
      // acquired image's: the values are reported without an image region.
      const bool resampled = k >= 0 && static_cast<std::size_t>(k) < in.images.direct.size() && !in.images.direct[static_cast<std::size_t>(k)];
      if (resampled) {
        report.notes.push_back(name + " lies on a slice the loader resampled: its values are reported without an image region");
        k = -2;
      }
      const auto addValue = [&](const DSRCodedEntryValue& conceptName, double value, const DSRCodedEntryValue& units,
                                const DSRCodedEntryValue& derivation) {
        check(group.addMeasurement(CID7469_GenericIntensityAndSizeMeasurements(conceptName),
                                   Group::MeasurementValue(ds(value).c_str(), CID7181_AbstractMultiDimensionalImageModelComponentUnits(units), OFFalse),
                                   OFFalse, OFFalse),
              name + ": measurement");
        auto& mm = group.getMeasurement();
        if (!derivation.isEmpty()) check(mm.setDerivation(CID7464_GeneralRegionOfInterestMeasurementModifiers(derivation), OFFalse), name + ": derivation");
        if (k >= 0) {
          const auto& s = in.images.slices[static_cast<std::size_t>(k)].at(0);
          DSRImageReferenceValue image(s.sopClassUid.c_str(), s.sopInstanceUid.c_str());
          if (s.frameNumber > 0) image.getFrameList().addItem(static_cast<Sint32>(s.frameNumber));
          check(mm.addSpatialCoordinates(DSRCodedEntryValue(CODE_DCM_ImageRegion), scoordOf(m, g), image, OFFalse),
                name + ": image region");
          evidence.insert({s.sopClassUid, s.sopInstanceUid});
        }
      };
      switch (m.kind) {
        case MeasurementKind::Distance:
          addValue(DSRCodedEntryValue("410668003", "SCT", "Length"), lengthMm(m), kMm, {});
          break;
        case MeasurementKind::Angle: addValue(DSRCodedEntryValue(CODE_DCM_Angle), angleDeg(m), kDeg, {}); break;
        case MeasurementKind::Ellipse:
        case MeasurementKind::Rectangle:
        case MeasurementKind::Polygon: {
          addValue(DSRCodedEntryValue("42798000", "SCT", "Area"), areaMm2(m), kMm2, {});
          if (sm.stats && sm.stats->samples > 0) {
            const auto& st = *sm.stats;
            const auto intensity = intensityConcept(in.units);
            const auto units = intensityUnits(in.units);
            addValue(intensity, st.mean, units, DSRCodedEntryValue("373098007", "SCT", "Mean"));
            addValue(intensity, st.sd, units, DSRCodedEntryValue("386136009", "SCT", "Standard Deviation"));
            addValue(intensity, st.min, units, DSRCodedEntryValue("255605001", "SCT", "Minimum"));
            addValue(intensity, st.max, units, DSRCodedEntryValue("56851009", "SCT", "Maximum"));
          }
          break;
        }
        case MeasurementKind::Point: {
          // A point has no value: its text is a qualitative evaluation at a place.
          check(group.addQualitativeEvaluation(DSRCodedEntryValue("121071", "DCM", "Finding"),
                                               (m.text.empty() ? std::string("point") : m.text).c_str(), OFFalse),
                name + ": finding");
          break;
        }
      }
      if (k == -1 && m.kind != MeasurementKind::Point)
        report.notes.push_back(name + " was drawn on a reformatted plane: its values are reported without an image region");
      ++report.groups;
    }

    for (const auto& sg : in.segmentations)
      for (const auto& s : sg.segments) {
        if (tid.hasVolumetricROIMeasurements(OFTrue)) check(tid.addVolumetricROIMeasurements(), "volumetric group");
        Volumetric& group = tid.getVolumetricROIMeasurements();
        const std::string name = s.label.empty() ? "segment " + std::to_string(s.segmentNumber) : s.label;
        check(group.setTrackingIdentifier(name.c_str()), "tracking identifier");
        check(group.setTrackingUniqueIdentifier(newUid().c_str()), "tracking UID");
        if (!s.type.empty())
          check(group.setFinding(DSRCodedEntryValue(s.type.value.c_str(), s.type.scheme.c_str(), s.type.meaning.c_str()), OFFalse),
                name + ": finding");
        DSRImageReferenceValue segRef(UID_SegmentationStorage, sg.sopInstanceUid.c_str());
        segRef.getSegmentList().addItem(static_cast<Uint16>(s.segmentNumber));
        check(group.setReferencedSegment(segRef, OFFalse), name + ": referenced segment");
        check(group.setSourceSeriesForSegmentation(in.images.seriesInstanceUid.c_str()), name + ": source series");
        const auto add = [&](const DSRCodedEntryValue& conceptName, double v, const DSRCodedEntryValue& units,
                             const DSRCodedEntryValue& derivation) {
          check(group.addMeasurement(CID7469_GenericIntensityAndSizeMeasurements(conceptName),
                                     Volumetric::MeasurementValue(ds(v).c_str(), CID7181_AbstractMultiDimensionalImageModelComponentUnits(units), OFFalse),
                                     OFFalse, OFFalse),
                name + ": measurement");
          if (!derivation.isEmpty())
            check(group.getMeasurement().setDerivation(CID7464_GeneralRegionOfInterestMeasurementModifiers(derivation), OFFalse),
                  name + ": derivation");
        };
        add(DSRCodedEntryValue("118565006", "SCT", "Volume"), s.volumeMl, kCm3, {});
        add(intensityConcept(in.units), s.mean, intensityUnits(in.units), DSRCodedEntryValue("373098007", "SCT", "Mean"));
        add(intensityConcept(in.units), s.sd, intensityUnits(in.units),
            DSRCodedEntryValue("386136009", "SCT", "Standard Deviation"));
        ++report.groups;
      }

    for (const auto& c : in.classifications) {
      if (tid.hasIndividualMeasurements(OFTrue)) check(tid.addIndividualMeasurements(), "classification group");
      Group& group = tid.getIndividualMeasurements();
      const std::string name = "AI classification: " + c.model;
      check(group.setTrackingIdentifier(name.c_str()), "tracking identifier");
      check(group.setTrackingUniqueIdentifier(newUid().c_str()), "tracking UID");
      if (!c.predicted.empty())
        check(group.setFinding(DSRCodedEntryValue(c.predicted.c_str(), "99LUMEN", c.predicted.c_str()), OFFalse), name + ": finding");
      // No class (not graded): no probabilities either, which would invite picking one.
      for (const auto& [cls, p] : c.predicted.empty() ? decltype(c.probabilities){} : c.probabilities) {
        check(group.addMeasurement(CID7469_GenericIntensityAndSizeMeasurements(DSRCodedEntryValue(CODE_DCM_Probability)),
                                   Group::MeasurementValue(ds(p).c_str(), CID7181_AbstractMultiDimensionalImageModelComponentUnits(kNoUnits), OFFalse),
                                   OFFalse, OFFalse),
              name + ": probability");
        check(group.getMeasurement().setEquivalentMeaningOfConceptName(("Probability of " + cls).c_str(), OFFalse),
              name + ": class");
      }
      if (!c.detail.empty())
        check(group.addQualitativeEvaluation(DSRCodedEntryValue("AIDETAIL", "99LUMEN", "AI result detail"), c.detail.c_str(), OFFalse),
              name + ": detail");
      const std::string identity = c.model + " " + c.version + ", SHA-256 " + c.sha256 + (c.device.empty() ? "" : ", on " + c.device);
      check(group.addQualitativeEvaluation(DSRCodedEntryValue("AIMODEL", "99LUMEN", "AI model"), identity.c_str(), OFFalse),
            name + ": model");
      ++report.groups;
    }

    DSRDocument doc;
    check(doc.setTreeFromRootTemplate(tid, OFTrue), "document tree");
    const std::string studyUid = getString(src, DCM_StudyInstanceUID);
    check(doc.createNewSeriesInStudy(studyUid.c_str()), "series");
    check(doc.setSeriesDescription(in.seriesDescription.c_str()), "series description");
    const int seriesNumber = in.seriesNumber > 0 ? in.seriesNumber : in.images.seriesNumber + 2000;
    check(doc.setSeriesNumber(std::to_string(seriesNumber).c_str()), "series number");
    check(doc.setManufacturer("Lumen"), "manufacturer");
    check(doc.setSoftwareVersions(in.softwareVersion.c_str()), "software version");
    check(doc.setSpecificCharacterSetType(DSRTypes::CS_UTF8), "character set");
    const std::string seriesUid = in.images.seriesInstanceUid;
    for (const auto& [cls, inst] : evidence)
      check(doc.getCurrentRequestedProcedureEvidence().addItem(studyUid.c_str(), seriesUid.c_str(), cls.c_str(), inst.c_str()),
            "evidence");
    for (const auto& sg : in.segmentations)
      check(doc.getCurrentRequestedProcedureEvidence().addItem(studyUid.c_str(), sg.seriesInstanceUid.c_str(),
                                                               UID_SegmentationStorage, sg.sopInstanceUid.c_str()),
            "evidence");

    DcmFileFormat ff;
    DcmDataset* out = ff.getDataset();
    check(doc.write(*out), "writing the report");
    // Patient and study as the images have them.
    for (const DcmTagKey& tag : {DCM_PatientName, DCM_PatientID, DCM_IssuerOfPatientID, DCM_PatientBirthDate, DCM_PatientSex,
                                 DCM_StudyDate, DCM_StudyTime, DCM_ReferringPhysicianName, DCM_StudyID,
                                 DCM_AccessionNumber, DCM_StudyDescription}) {
      const std::string v = getString(src, tag);
      if (!v.empty()) out->putAndInsertString(tag, v.c_str());
    }
    if (!in.seriesInstanceUid.empty()) out->putAndInsertString(DCM_SeriesInstanceUID, in.seriesInstanceUid.c_str());
    if (!in.sopInstanceUid.empty()) out->putAndInsertString(DCM_SOPInstanceUID, in.sopInstanceUid.c_str());
    report.sopInstanceUid = getString(out, DCM_SOPInstanceUID);
    report.seriesInstanceUid = getString(out, DCM_SeriesInstanceUID);

    if (auto st = saveDicomDurably(ff, path); !st) return st.error();
  } catch (const Failed& f) {
    return Error(ErrorCode::Internal, "cannot build the measurement report (" + f.what + ")", where);
  }
  return report;
}

Result<std::string> renderStructuredReport(const fs::path& file) {
  initializeDicomLibrary();
  DcmFileFormat ff;
  if (const std::string why = loadDicomFile(ff, file.string()); !why.empty())
    return Error(ErrorCode::Corrupt, why, file.string());
  convertToUtf8IfNeeded(ff.getDataset());
  DSRDocument doc;
  // For reading only: other systems' reports often bend the templates' rules.
  const size_t lenient = DSRTypes::RF_acceptUnknownRelationshipType | DSRTypes::RF_ignoreRelationshipConstraints |
                         DSRTypes::RF_skipInvalidContentItems;
  if (const OFCondition c = doc.read(*ff.getDataset(), lenient); c.bad())
    return Error(ErrorCode::Unsupported, std::string("not a structured report Lumen can read (") + c.text() + ")",
                 file.string());
  std::ostringstream html;
  if (const OFCondition c = doc.renderHTML(html); c.bad())
    return Error(ErrorCode::Corrupt, std::string("the report cannot be rendered (") + c.text() + ")", file.string());
  return html.str();
}

}  // namespace lumen::dicom
