#include "DimseSupport.h"

#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/cond.h>
#include <dcmtk/dcmnet/dul.h>
#include <dcmtk/dcmnet/scu.h>
#include <dcmtk/dcmtls/tlslayer.h>
#include <sys/statvfs.h>

#include <limits>
#include <mutex>

namespace lumen::net::detail {

OFList<OFString> uncompressedSyntaxes() {
  OFList<OFString> l;
  l.push_back(UID_LittleEndianExplicitTransferSyntax);
  l.push_back(UID_LittleEndianImplicitTransferSyntax);
  return l;
}

const std::vector<const char*>& compressedSyntaxes() {
  static const std::vector<const char*> v = {
      UID_JPEGProcess14SV1TransferSyntax,     UID_JPEGLSLosslessTransferSyntax, UID_JPEG2000LosslessOnlyTransferSyntax,
      UID_RLELosslessTransferSyntax,          UID_JPEGProcess1TransferSyntax,   UID_JPEGProcess2_4TransferSyntax,
      UID_JPEGProcess14TransferSyntax,        UID_JPEGLSLossyTransferSyntax,    UID_JPEG2000TransferSyntax,
      UID_DeflatedExplicitVRLittleEndianTransferSyntax,
  };
  return v;
}

OFList<OFString> allAcceptedSyntaxes() {
  OFList<OFString> l = uncompressedSyntaxes();
  l.push_back(UID_BigEndianExplicitTransferSyntax);
  for (const char* ts : compressedSyntaxes()) l.push_back(ts);
  return l;
}

const std::vector<const char*>& commonStorageClasses() {
  static const std::vector<const char*> v = {
      UID_CTImageStorage,
      UID_EnhancedCTImageStorage,
      UID_LegacyConvertedEnhancedCTImageStorage,
      UID_MRImageStorage,
      UID_EnhancedMRImageStorage,
      UID_LegacyConvertedEnhancedMRImageStorage,
      UID_ComputedRadiographyImageStorage,
      UID_DigitalXRayImageStorageForPresentation,
      UID_DigitalXRayImageStorageForProcessing,
      UID_DigitalMammographyXRayImageStorageForPresentation,
      UID_UltrasoundImageStorage,
      UID_UltrasoundMultiframeImageStorage,
      UID_SecondaryCaptureImageStorage,
      UID_MultiframeGrayscaleByteSecondaryCaptureImageStorage,
      UID_MultiframeGrayscaleWordSecondaryCaptureImageStorage,
      UID_MultiframeTrueColorSecondaryCaptureImageStorage,
      UID_NuclearMedicineImageStorage,
      UID_PositronEmissionTomographyImageStorage,
      UID_EnhancedPETImageStorage,
      UID_XRayAngiographicImageStorage,
      UID_XRayRadiofluoroscopicImageStorage,
      UID_RTImageStorage,
      UID_RTDoseStorage,
      UID_RTStructureSetStorage,
      UID_RTPlanStorage,
      UID_SegmentationStorage,
      UID_BasicTextSRStorage,
      UID_EnhancedSRStorage,
      UID_ComprehensiveSRStorage,
      UID_KeyObjectSelectionDocumentStorage,
      UID_GrayscaleSoftcopyPresentationStateStorage,
      UID_EncapsulatedPDFStorage,
      UID_VLPhotographicImageStorage,
  };
  return v;
}

std::uint64_t freeBytes(const std::filesystem::path& path) {
  struct statvfs s {};
  if (::statvfs(path.c_str(), &s) != 0) return std::numeric_limits<std::uint64_t>::max();
  return static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize;
}

std::string describe(const OFCondition& cond, int timeoutSeconds) {
  if (cond == DUL_ASSOCIATIONREJECTED)
    return "the node rejected the association (does it know Lumen's AE title, and is its own AE title right?)";
  if (cond == DUL_READTIMEOUT || cond == DIMSE_NODATAAVAILABLE || cond == DUL_NOASSOCIATIONREQUEST)
    return "no answer within " + std::to_string(timeoutSeconds) + " s";
  if (cond == DUL_PEERABORTEDASSOCIATION) return "the node aborted the association";
  if (cond == DUL_PEERREQUESTEDRELEASE) return "the node closed the association";
  if (cond == NET_EC_NoAcceptablePresentationContexts || cond == DIMSE_NOVALIDPRESENTATIONCONTEXTID)
    return "the node accepted none of the services or transfer syntaxes Lumen proposed";
  std::string text = cond.text();
  // DCMTK puts the socket's reason last ("... TCP Initialization Error: Connection refused").
  if (text.find("timed out") != std::string::npos || text.find("Timeout") != std::string::npos)
    return "no answer within " + std::to_string(timeoutSeconds) + " s (" + text + ")";
  return text;
}

Result<std::unique_ptr<DcmTransportLayer>> makeTlsLayer(const TlsFiles& f, bool listener,
                                                        std::unique_ptr<DcmTLSTransportLayer> (*make)(T_ASC_NetworkRole)) {
  static std::once_flag once;
  std::call_once(once, [] { DcmTLSTransportLayer::initializeOpenSSL(); });
  const T_ASC_NetworkRole role = listener ? NET_ACCEPTOR : NET_REQUESTOR;
  auto tls = make ? make(role) : std::make_unique<DcmTLSTransportLayer>(role, nullptr, OFFalse);
  const auto bad = [](const std::string& file, const std::string& why) {
    return Error(ErrorCode::InvalidArgument, "TLS: " + why, file);
  };
  if (OFCondition c = tls->setTLSProfile(TSP_Profile_BCP195_ND); c.bad()) return bad("", c.text());
  if (OFCondition c = tls->activateCipherSuites(); c.bad()) return bad("", c.text());
  if (!f.certFile.empty()) {
    if (tls->setPrivateKeyFile(f.keyFile.c_str(), DCF_Filetype_PEM).bad())
      return bad(f.keyFile, "cannot read the private key (PEM, not password-protected)");
    if (tls->setCertificateFile(f.certFile.c_str(), DCF_Filetype_PEM).bad())
      return bad(f.certFile, "cannot read the certificate (PEM)");
    if (!tls->checkPrivateKeyMatchesCertificate()) return bad(f.keyFile, "the private key does not match " + f.certFile);
  }
  if (!f.caFile.empty()) {
    if (tls->addTrustedCertificateFile(f.caFile.c_str(), DCF_Filetype_PEM).bad())
      return bad(f.caFile, "cannot read the CA certificate (PEM)");
    tls->setCertificateVerification(DCV_requireCertificate);
  } else {
    // Only the listener may lack a CA (settings are checked when read): it then accepts
    // callers without a certificate, as a server with TLS for privacy alone.
    tls->setCertificateVerification(DCV_ignoreCertificate);
  }
  return std::unique_ptr<DcmTransportLayer>(std::move(tls));
}

namespace {
// The usual way to reach a protected member of a base class from outside: a pointer to
// it, named through a derived class.
struct ScuAccess : DcmSCU {
  static OFCondition use(DcmSCU& scu, DcmTransportLayer* layer) { return (scu.*(&ScuAccess::useSecureConnection))(layer); }
};
}  // namespace

OFCondition useTlsLayer(DcmSCU& scu, DcmTransportLayer* layer) { return layer ? ScuAccess::use(scu, layer) : EC_Normal; }

}  // namespace lumen::net::detail
