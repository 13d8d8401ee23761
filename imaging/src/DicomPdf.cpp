#include "lumen/imaging/DicomPdf.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>

#include <ctime>

#include "DcmtkSupport.h"
#include "lumen/core/DurableFile.h"
#include "lumen/imaging/DicomFile.h"

namespace fs = std::filesystem;

namespace lumen::dicom {

Result<std::string> writeEncapsulatedPdf(const std::string& pdf, const fs::path& sourceFile,
                                         const EncapsulatedPdfOptions& o, const fs::path& path) {
  initializeDicomLibrary();
  const std::string where = path.string();
  if (pdf.size() < 5 || pdf.compare(0, 5, "%PDF-") != 0) return Error(ErrorCode::InvalidArgument, "not a PDF", where);
  if (pdf.size() > 0xFFFFFFF0u) return Error(ErrorCode::TooLarge, "a PDF over 4 GB cannot be encapsulated", where);
  DcmFileFormat source;
  if (const std::string why = loadDicomHeader(source, sourceFile.string()); !why.empty())
    return Error(ErrorCode::Corrupt, why, sourceFile.string());
  DcmDataset* src = source.getDataset();
  convertToUtf8IfNeeded(src);

  DcmFileFormat ff;
  DcmDataset* ds = ff.getDataset();
  char uid[100];
  const auto put = [&](const DcmTagKey& tag, const std::string& v) { ds->putAndInsertString(tag, v.c_str()); };
  put(DCM_SpecificCharacterSet, "ISO_IR 192");
  put(DCM_SOPClassUID, UID_EncapsulatedPDFStorage);
  const std::string sop = dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT);
  put(DCM_SOPInstanceUID, sop);
  put(DCM_SeriesInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_SERIES_UID_ROOT));
  // Patient and study as the images have them (type 2 attributes present even when empty).
  for (const DcmTagKey& tag : {DCM_PatientName, DCM_PatientID, DCM_IssuerOfPatientID, DCM_PatientBirthDate, DCM_PatientSex,
                               DCM_StudyInstanceUID, DCM_StudyDate, DCM_StudyTime, DCM_ReferringPhysicianName, DCM_StudyID,
                               DCM_AccessionNumber, DCM_StudyDescription})
    put(tag, getString(src, tag));
  std::time_t now = std::time(nullptr);
  char date[16], time[16];
  std::strftime(date, sizeof date, "%Y%m%d", std::localtime(&now));
  std::strftime(time, sizeof time, "%H%M%S", std::localtime(&now));
  put(DCM_InstanceCreationDate, date);
  put(DCM_InstanceCreationTime, time);
  put(DCM_ContentDate, date);
  put(DCM_ContentTime, time);
  put(DCM_AcquisitionDateTime, std::string(date) + time);
  put(DCM_Modality, "DOC");
  put(DCM_ConversionType, "WSD");
  put(DCM_Manufacturer, "Lumen");
  put(DCM_SoftwareVersions, o.softwareVersion);
  put(DCM_SeriesNumber, std::to_string(o.seriesNumber > 0 ? o.seriesNumber : 3000 + o.sourceSeriesNumber));
  put(DCM_SeriesDescription, o.title);
  put(DCM_InstanceNumber, "1");
  put(DCM_BurnedInAnnotation, "YES");  // the report names the patient
  put(DCM_DocumentTitle, o.title);
  ds->insertEmptyElement(DCM_ConceptNameCodeSequence);
  put(DCM_MIMETypeOfEncapsulatedDocument, "application/pdf");
  // OB values have even length; the true length is given beside it.
  std::string bytes = pdf;
  if (bytes.size() % 2) bytes.push_back('\0');
  ds->putAndInsertUint8Array(DCM_EncapsulatedDocument, reinterpret_cast<const Uint8*>(bytes.data()),
                             static_cast<unsigned long>(bytes.size()));
  ds->putAndInsertUint32(DCM_EncapsulatedDocumentLength, static_cast<Uint32>(pdf.size()));

  if (auto st = saveDicomDurably(ff, path); !st) return st.error();
  return sop;
}

Result<std::string> readEncapsulatedPdf(const fs::path& file) {
  initializeDicomLibrary();
  DcmFileFormat ff;
  auto ds = loadDicomObject(ff, file.string(), UID_EncapsulatedPDFStorage, "an Encapsulated PDF");
  if (!ds) return ds.error();
  const Uint8* bytes = nullptr;
  unsigned long n = 0;
  if ((*ds)->findAndGetUint8Array(DCM_EncapsulatedDocument, bytes, &n).bad() || !bytes || n == 0)
    return Error(ErrorCode::Corrupt, "it holds no encapsulated document", file.string());
  // The declared length, when present, leaves the even-length padding out.
  Uint32 length = 0;
  if ((*ds)->findAndGetUint32(DCM_EncapsulatedDocumentLength, length).good() && length > 0 && length <= n) n = length;
  std::string pdf(reinterpret_cast<const char*>(bytes), n);
  if (pdf.compare(0, 5, "%PDF-") != 0) return Error(ErrorCode::Corrupt, "the encapsulated document is not a PDF", file.string());
  return pdf;
}

}  // namespace lumen::dicom
