#include "DimseSupport.h"

#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/cond.h>
#include <dcmtk/dcmnet/dul.h>
#include <sys/statvfs.h>

#include <limits>

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

}  // namespace lumen::net::detail
