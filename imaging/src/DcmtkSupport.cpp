#include "DcmtkSupport.h"

#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>

#include <exception>
#include <mutex>

#include "DicomStructureCheck.h"
#include "lumen/core/DurableFile.h"
#include "lumen/imaging/DicomFile.h"

namespace lumen::dicom {

void initializeDicomLibrary() {
  static std::once_flag once;
  std::call_once(once, [] {
    // DCMTK logs parse warnings to stderr by default, sometimes quoting attribute values:
    // keep it quiet (our own errors name the file and the reason).
    OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
    // Colour conversion by photometric interpretation: JPEG YBR data comes back as RGB.
    DJDecoderRegistration::registerCodecs(EDC_photometricInterpretation, EUC_default, EPC_default);
    DJLSDecoderRegistration::registerCodecs();
    // Refuse rather than guess when a length runs past the end of its container.
    dcmIgnoreParsingErrors.set(OFFalse);
    // Known attributes stored with VR UN (some converters do this) get their real VR,
    // so numbers such as ImagePositionPatient remain readable.
    dcmEnableUnknownVRConversion.set(OFTrue);
  });
}

std::string getString(DcmItem* item, const DcmTagKey& tag, unsigned long pos) {
  if (!item) return {};
  OFString v;
  if (item->findAndGetOFString(tag, v, pos).bad()) return {};
  std::string s(v.c_str(), v.length());
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  // Some writers pad with NUL.
  s = s.substr(first, last - first + 1);
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

unsigned long valueCount(DcmItem* item, const DcmTagKey& tag) {
  DcmElement* e = nullptr;
  if (!item || item->findAndGetElement(tag, e).bad() || !e) return 0;
  return e->getVM();
}

namespace {
// Values longer than `maxReadLength` stay on disk until asked for.
std::string load(DcmFileFormat& ff, const std::string& path, Uint32 maxReadLength) {
  try {
    const OFCondition c = ff.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, maxReadLength, ERM_autoDetect);
    if (c.bad()) return std::string("cannot parse DICOM (") + c.text() + ")";
    if (!ff.getDataset()) return "cannot parse DICOM (no data set)";
    return {};
  } catch (const std::bad_alloc&) {
    return "cannot parse DICOM (an element claims more memory than is available)";
  } catch (const std::exception& e) {
    return std::string("cannot parse DICOM (") + e.what() + ")";
  }
}
}  // namespace

std::string loadDicomHeader(DcmFileFormat& ff, const std::string& path) { return load(ff, path, kMaxHeaderValueLength); }

std::string loadDicomFile(DcmFileFormat& ff, const std::string& path) {
  if (std::string why = checkDicomStructure(path); !why.empty()) return why;
  return load(ff, path, DCM_MaxReadLength);
}

Result<DcmDataset*> loadDicomObject(DcmFileFormat& ff, const std::string& path, const char* sopClassUid,
                                    const std::string& what) {
  if (std::string why = loadDicomFile(ff, path); !why.empty()) return Error(ErrorCode::Corrupt, why, path);
  DcmDataset* ds = ff.getDataset();
  const std::string sop = getString(ds, DCM_SOPClassUID);
  if (sop != sopClassUid) return Error(ErrorCode::Unsupported, "not " + what + " (SOP class " + sop + ")", path);
  return ds;
}

Status saveDicomDurably(DcmFileFormat& ff, const std::filesystem::path& path, E_TransferSyntax xfer) {
  std::error_code ec;
  if (!path.parent_path().empty()) std::filesystem::create_directories(path.parent_path(), ec);
  const std::filesystem::path tmp = temporaryPathFor(path);
  const OFCondition c = ff.saveFile(tmp.c_str(), xfer);
  if (c.bad()) {
    std::filesystem::remove(tmp, ec);
    return Error(ErrorCode::Io, std::string("cannot write: ") + (c.text() ? c.text() : "DCMTK error"), path.string());
  }
  return commitFile(tmp, path);
}

void convertToUtf8IfNeeded(DcmDataset* ds) {
  OFString cs;
  if (ds->findAndGetOFStringArray(DCM_SpecificCharacterSet, cs).bad() || cs.empty()) return;
  if (cs == "ISO_IR 6" || cs == "ISO_IR 192") return;
  // Best effort: names then display in their script. Failure leaves bytes as stored.
  (void)ds->convertToUTF8();
}

std::string sopClassName(const std::string& uid) {
  if (uid.empty()) return {};
  const char* name = dcmFindNameOfUID(uid.c_str(), nullptr);
  return name ? std::string(name) : std::string();
}

std::string transferSyntaxName(const std::string& uid) {
  const DcmXfer x(uid.c_str());
  if (x.getXfer() == EXS_Unknown) return uid.empty() ? std::string("unknown") : uid;
  return x.getXferName();
}

}  // namespace lumen::dicom
