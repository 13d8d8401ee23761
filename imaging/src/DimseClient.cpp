// The DIMSE service user: echo, find, get, move, store (DCMTK's DcmSCU and DcmStorageSCU).

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/dstorscu.h>
#include <dcmtk/dcmnet/scu.h>

#include <algorithm>
#include <set>

#include "DimseSupport.h"
#include "lumen/core/DurableFile.h"
#include "lumen/core/Log.h"
#include "lumen/imaging/Dimse.h"
#include "lumen/imaging/StudyDatabase.h"

namespace lumen::net {

namespace fs = std::filesystem;
using namespace detail;

namespace {

std::string nodeLabel(const DimseNode& n) {
  return n.name + " (" + n.aeTitle + "@" + n.host + ":" + std::to_string(n.port) + ")";
}

Error netError(const DimseNode& node, const std::string& what, const OFCondition& cond, const DimseOptions& o) {
  return Error(ErrorCode::Io, what + ": " + describe(cond, o.timeoutSeconds), nodeLabel(node));
}

// The node's TLS layer (nullptr for plain TCP). Declared before the SCU that uses it, so
// that it outlives it.
Result<std::unique_ptr<DcmTransportLayer>> clientTls(const DimseNode& node) {
  if (!node.tls) return std::unique_ptr<DcmTransportLayer>();
  auto layer = makeTlsLayer(*node.tls, false);
  if (!layer) return Error(layer.error().code, layer.error().toString(), nodeLabel(node));
  return layer;
}

void configure(DcmSCU& scu, const DimseNode& node, const DimseOptions& o) {
  scu.setAETitle(o.callingAe.c_str());
  scu.setPeerHostName(node.host.c_str());
  scu.setPeerPort(static_cast<Uint16>(node.port));
  scu.setPeerAETitle(node.aeTitle.c_str());
  scu.setMaxReceivePDULength(ASC_DEFAULTMAXPDU);
  scu.setACSETimeout(static_cast<Uint32>(o.timeoutSeconds));
  scu.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
  scu.setDIMSETimeout(static_cast<Uint32>(o.timeoutSeconds));
  scu.setConnectionTimeout(o.timeoutSeconds);
}

// Opens the association (over `tls` when not null); the error says which step failed and why.
Status connect(DcmSCU& scu, const DimseNode& node, const DimseOptions& o, DcmTransportLayer* tls) {
  dicom::initializeDicomLibrary();
  if (OFCondition c = scu.initNetwork(); c.bad()) return netError(node, "cannot start networking", c, o);
  if (OFCondition c = useTlsLayer(scu, tls); c.bad()) return netError(node, "cannot set up TLS", c, o);
  if (OFCondition c = scu.negotiateAssociation(); c.bad()) {
    Error e = netError(node, "cannot connect", c, o);
    // An abort or a reset before any answer is what a TLS port does to a plain caller, and
    // what a node that wants a client certificate does to a caller without one (which of
    // the two depends on timing: TLS 1.3 checks the client after the handshake).
    if (c == DUL_PEERABORTEDASSOCIATION || std::string(c.text()).find("Connection reset") != std::string::npos) {
      if (!node.tls) e.message += " (does the node require DICOM TLS?)";
      else if (node.tls->certFile.empty()) e.message += " (does the node require a client certificate? see --tls-cert)";
    }
    return e;
  }
  return {};
}

std::string str(DcmItem* ds, const DcmTagKey& tag) {
  OFString v;
  if (ds && ds->findAndGetOFStringArray(tag, v).good()) return std::string(v.c_str());
  return {};
}

int integer(DcmItem* ds, const DcmTagKey& tag, int fallback) {
  const std::string s = str(ds, tag);
  if (s.empty()) return fallback;
  try {
    return std::stoi(s);
  } catch (...) {
    return fallback;
  }
}

struct Responses {
  OFList<QRResponse*> list;
  ~Responses() {
    for (auto* r : list) delete r;
  }
};

// A C-FIND that a person may stop: once cancelled, the next pending response is answered
// with a C-CANCEL, and the node ends the query with status Cancel (FE00).
class FindScu : public DcmSCU {
 public:
  explicit FindScu(CancelToken cancel) : cancel_(std::move(cancel)) {}
  OFCondition handleFINDResponse(const T_ASC_PresentationContextID presID, QRResponse* response,
                                 OFBool& waitForNextResponse) override {
    OFCondition c = DcmSCU::handleFINDResponse(presID, response, waitForNextResponse);
    if (c.good() && cancel_.isCancelled() && !cancelSent_ && response && isPending(response->m_status)) {
      cancelSent_ = true;
      sendCANCELRequest(presID);
    }
    return c;
  }

 private:
  CancelToken cancel_;
  bool cancelSent_ = false;
};

Result<std::vector<QueryMatch>> findAtLevel(DcmSCU& scu, T_ASC_PresentationContextID pid, const DimseNode& node,
                                            const QueryFilter& f, const std::string& studyUid, const DimseOptions& o) {
  DcmDataset keys;
  const bool study = f.level == QueryLevel::Study;
  keys.putAndInsertOFStringArray(DCM_SpecificCharacterSet, "ISO_IR 192");
  keys.putAndInsertOFStringArray(DCM_QueryRetrieveLevel, study ? "STUDY" : "SERIES");
  keys.putAndInsertOFStringArray(DCM_StudyInstanceUID, studyUid.c_str());
  if (study) {
    keys.putAndInsertOFStringArray(DCM_PatientName, f.patientName.c_str());
    keys.putAndInsertOFStringArray(DCM_PatientID, f.patientId.c_str());
    keys.putAndInsertOFStringArray(DCM_PatientBirthDate, "");
    keys.putAndInsertOFStringArray(DCM_StudyDate, f.studyDate.c_str());
    keys.putAndInsertOFStringArray(DCM_StudyTime, "");
    keys.putAndInsertOFStringArray(DCM_AccessionNumber, f.accession.c_str());
    keys.putAndInsertOFStringArray(DCM_ModalitiesInStudy, f.modality.c_str());
    keys.putAndInsertOFStringArray(DCM_StudyDescription, "");
    keys.putAndInsertOFStringArray(DCM_NumberOfStudyRelatedSeries, "");
    keys.putAndInsertOFStringArray(DCM_NumberOfStudyRelatedInstances, "");
  } else {
    keys.putAndInsertOFStringArray(DCM_SeriesInstanceUID, "");
    keys.putAndInsertOFStringArray(DCM_Modality, f.modality.c_str());
    keys.putAndInsertOFStringArray(DCM_SeriesNumber, "");
    keys.putAndInsertOFStringArray(DCM_SeriesDescription, "");
    keys.putAndInsertOFStringArray(DCM_NumberOfSeriesRelatedInstances, "");
  }
  Responses r;
  if (OFCondition c = scu.sendFINDRequest(pid, &keys, &r.list); c.bad()) return netError(node, "query failed", c, o);
  std::vector<QueryMatch> out;
  for (QRResponse* resp : r.list) {
    if (resp->m_status == STATUS_FIND_Cancel_MatchingTerminatedDueToCancelRequest)
      return Error(ErrorCode::Cancelled, "query cancelled", nodeLabel(node));
    if (!isPending(resp->m_status) && !isSuccess(resp->m_status)) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "%04X", resp->m_status);
      return Error(ErrorCode::Io, std::string("the node answered the query with status 0x") + hex + " (" +
                                      DU_cfindStatusString(resp->m_status) + ")",
                   nodeLabel(node));
    }
    DcmDataset* ds = resp->m_dataset;
    if (!ds) continue;
    ds->convertToUTF8();  // names in any character set the node uses
    QueryMatch m;
    m.studyUid = str(ds, DCM_StudyInstanceUID);
    if (study) {
      m.patientName = str(ds, DCM_PatientName);
      m.patientId = str(ds, DCM_PatientID);
      m.patientBirthDate = str(ds, DCM_PatientBirthDate);
      m.studyDate = str(ds, DCM_StudyDate);
      m.studyTime = str(ds, DCM_StudyTime);
      m.studyDescription = str(ds, DCM_StudyDescription);
      m.accession = str(ds, DCM_AccessionNumber);
      m.modalities = str(ds, DCM_ModalitiesInStudy);
      m.seriesCount = integer(ds, DCM_NumberOfStudyRelatedSeries, -1);
      m.instanceCount = integer(ds, DCM_NumberOfStudyRelatedInstances, -1);
    } else {
      if (m.studyUid.empty()) m.studyUid = studyUid;
      m.seriesUid = str(ds, DCM_SeriesInstanceUID);
      m.modalities = str(ds, DCM_Modality);
      m.seriesNumber = integer(ds, DCM_SeriesNumber, 0);
      m.seriesDescription = str(ds, DCM_SeriesDescription);
      m.instanceCount = integer(ds, DCM_NumberOfSeriesRelatedInstances, -1);
    }
    out.push_back(std::move(m));
  }
  return out;
}

// The storage SOP classes a study holds, when the node says (SOP Classes in Study).
// What a C-FIND says about a study before it is retrieved: whether the node holds it, and
// (when the node says) the SOP classes in it.
struct StudyLookup {
  bool answered = false;  // the node answered the C-FIND
  bool found = false;
  std::vector<std::string> classes;
};

StudyLookup lookUpStudy(const DimseNode& node, const std::string& studyUid, const std::string& seriesUid,
                        const DimseOptions& o) {
  StudyLookup out;
  auto tls = clientTls(node);
  if (!tls) return out;  // the retrieve that follows reports it
  DcmSCU scu;
  configure(scu, node, o);
  scu.addPresentationContext(UID_FINDStudyRootQueryRetrieveInformationModel, uncompressedSyntaxes());
  if (!connect(scu, node, o, tls->get())) return out;
  const auto pid = scu.findPresentationContextID(UID_FINDStudyRootQueryRetrieveInformationModel, "");
  // The study's SOP classes (a series retrieve needs them as much); then, for a series,
  // whether the node has it.
  const auto ask = [&](const char* level, bool classes, bool& found) {
    DcmDataset keys;
    keys.putAndInsertOFStringArray(DCM_QueryRetrieveLevel, level);
    keys.putAndInsertOFStringArray(DCM_StudyInstanceUID, studyUid.c_str());
    if (!classes) keys.putAndInsertOFStringArray(DCM_SeriesInstanceUID, seriesUid.c_str());
    else keys.putAndInsertOFStringArray(DCM_SOPClassesInStudy, "");
    Responses r;
    if (!pid || scu.sendFINDRequest(pid, &keys, &r.list).bad()) return false;
    for (QRResponse* resp : r.list) {
      if (!resp->m_dataset) continue;
      found = true;
      OFString v;
      for (unsigned long i = 0; classes && resp->m_dataset->findAndGetOFString(DCM_SOPClassesInStudy, v, i).good(); ++i)
        if (!v.empty()) out.classes.emplace_back(v.c_str());
    }
    return true;
  };
  bool studyFound = false, seriesFound = false;
  out.answered = ask("STUDY", true, studyFound);
  out.found = studyFound;
  if (out.answered && studyFound && !seriesUid.empty()) {
    out.answered = ask("SERIES", false, seriesFound);
    out.found = seriesFound;
  }
  scu.releaseAssociation();
  return out;
}

Error notOnNode(const DimseNode& node, const std::string& seriesUid) {
  return Error(ErrorCode::NotFound, seriesUid.empty() ? "no such study on the node" : "no such series on the node",
               nodeLabel(node));
}

DcmDataset retrieveKeys(const std::string& studyUid, const std::string& seriesUid) {
  DcmDataset keys;
  keys.putAndInsertOFStringArray(DCM_QueryRetrieveLevel, seriesUid.empty() ? "STUDY" : "SERIES");
  keys.putAndInsertOFStringArray(DCM_StudyInstanceUID, studyUid.c_str());
  if (!seriesUid.empty()) keys.putAndInsertOFStringArray(DCM_SeriesInstanceUID, seriesUid.c_str());
  return keys;
}

// Follows a C-GET or C-MOVE's pending responses: progress from the sub-operation counts, a
// C-CANCEL once when the user cancels, the last status.
struct RetrieveFollower {
  Progress progress;
  CancelToken cancel;
  Uint16 lastStatus = 0;
  bool cancelSent = false;

  void follow(DcmSCU& scu, T_ASC_PresentationContextID presID, const RetrieveResponse& r) {
    lastStatus = r.m_status;
    const double done = r.m_numberOfCompletedSubops + r.m_numberOfFailedSubops + r.m_numberOfWarningSubops;
    const double total = done + r.m_numberOfRemainingSubops;
    if (total > 0) progress.report(done / total, "Retrieving");
    if (cancel.isCancelled() && !cancelSent && isPending(r.m_status)) {
      cancelSent = true;
      scu.sendCANCELRequest(presID);
    }
  }
};

Status finalStatus(const DimseNode& node, Uint16 status, const char* what, TransferReport& report) {
  if (isSuccess(status)) return {};
  char hex[8];
  std::snprintf(hex, sizeof hex, "%04X", status);
  if (status == STATUS_GET_Cancel_SubOperationsTerminatedDueToCancelIndication)
    return Error(ErrorCode::Cancelled, std::string(what) + " cancelled", nodeLabel(node));
  if (isWarning(status)) {
    report.problems.push_back(std::string("the node ended the ") + what + " with warning 0x" + hex +
                              " (some sub-operations failed)");
    return {};
  }
  return Error(ErrorCode::Io, std::string("the node ended the ") + what + " with status 0x" + hex, nodeLabel(node));
}

// C-GET: the node sends the instances back on this association; each one is filed durably
// before its C-STORE response says success.
class GetScu : public DcmSCU {
 public:
  GetScu(InstanceFiler& filer, TransferReport& report, const Progress& progress, const CancelToken& cancel,
         std::uint64_t minFreeBytes)
      : follower{progress, cancel}, filer_(filer), report_(report), minFree_(minFreeBytes) {}

  RetrieveFollower follower;

 protected:
  OFCondition handleSTORERequest(const T_ASC_PresentationContextID, DcmDataset* incoming, OFBool& continueSession,
                                 Uint16& status) override {
    continueSession = OFTrue;
    std::unique_ptr<DcmDataset> ds(incoming);  // ours to delete
    if (follower.cancel.isCancelled()) {
      // Cancelled between two pending responses: end the session now rather than after
      // the node's next one (what is stored stays stored).
      continueSession = OFFalse;
      status = STATUS_STORE_Refused_OutOfResources;
      return EC_Normal;
    }
    if (!ds) {
      status = STATUS_STORE_Error_CannotUnderstand;
      return DIMSE_NULLKEY;
    }
    OFString sop;
    ds->findAndGetOFString(DCM_SOPInstanceUID, sop);
    if (freeBytes(filer_.incomingDir()) < minFree_) {
      status = STATUS_STORE_Refused_OutOfResources;
      ++report_.failed;
      noteOnce("the disk holding the study database is nearly full: instances refused");
      return EC_Normal;
    }
    const fs::path tmp = temporaryPathFor(filer_.incomingDir() / "get.dcm");
    E_TransferSyntax xfer = ds->getOriginalXfer();
    if (xfer == EXS_Unknown) xfer = EXS_LittleEndianExplicit;
    DcmFileFormat ff(ds.get(), OFFalse);
    ds.release();  // the file format owns it now
    OFCondition c = ff.saveFile(tmp.c_str(), xfer, EET_ExplicitLength, EGL_recalcGL, EPD_noChange, 0, 0, EWM_createNewMeta);
    if (c.bad()) {
      std::error_code ec;
      fs::remove(tmp, ec);
      status = STATUS_STORE_Refused_OutOfResources;
      ++report_.failed;
      noteOnce(std::string("cannot write a received instance: ") + c.text());
      return EC_Normal;
    }
    auto filed = filer_.file(tmp, sop.c_str());
    if (!filed) {
      status = filed.error().code == ErrorCode::Io || filed.error().code == ErrorCode::Database
                   ? STATUS_STORE_Refused_OutOfResources
                   : STATUS_STORE_Error_CannotUnderstand;
      ++report_.failed;
      noteOnce(filed.error().message);
      return EC_Normal;
    }
    status = STATUS_Success;
    ++report_.stored;
    return EC_Normal;
  }

  OFCondition handleCGETResponse(const T_ASC_PresentationContextID presID, RetrieveResponse* response,
                                 OFBool& continueSession) override {
    OFCondition c = DcmSCU::handleCGETResponse(presID, response, continueSession);
    if (response) follower.follow(*this, presID, *response);
    return c;
  }

 private:
  void noteOnce(const std::string& p) {
    if (std::find(report_.problems.begin(), report_.problems.end(), p) == report_.problems.end()) report_.problems.push_back(p);
  }
  InstanceFiler& filer_;
  TransferReport& report_;
  std::uint64_t minFree_;
};

class MoveScu : public DcmSCU {
 public:
  MoveScu(const Progress& progress, const CancelToken& cancel) : follower{progress, cancel} {}
  RetrieveFollower follower;
  RetrieveResponse last;

 protected:
  OFCondition handleMOVEResponse(const T_ASC_PresentationContextID presID, RetrieveResponse* response,
                                 OFBool& waitForNextResponse) override {
    OFCondition c = DcmSCU::handleMOVEResponse(presID, response, waitForNextResponse);
    if (response) {
      last.m_numberOfCompletedSubops = response->m_numberOfCompletedSubops;
      last.m_numberOfFailedSubops = response->m_numberOfFailedSubops;
      last.m_numberOfWarningSubops = response->m_numberOfWarningSubops;
      follower.follow(*this, presID, *response);
    }
    return c;
  }
};

std::string uidName(const OFString& uid) {
  const char* n = dcmFindNameOfUID(uid.c_str(), nullptr);
  return n ? n : uid.c_str();
}

class StoreScu : public DcmStorageSCU {
 public:
  StoreScu(TransferReport& report, const Progress& progress, const CancelToken& cancel, std::size_t total)
      : report_(report), progress_(progress), cancel_(cancel), total_(total) {}

 protected:
  void notifySOPInstanceSent(const TransferEntry& e) override {
    ++done_;
    if (e.RequestSent && isSuccess(e.ResponseStatusCode)) {
      ++report_.stored;
    } else if (e.RequestSent && isWarning(e.ResponseStatusCode)) {
      ++report_.stored;
      ++report_.warnings;
    } else {
      ++report_.failed;
      char hex[8];
      std::snprintf(hex, sizeof hex, "%04X", e.ResponseStatusCode);
      report_.problems.push_back(std::string(e.Filename.getCharPointer()) + ": " +
                                 (e.RequestSent ? std::string("refused by the node, status 0x") + hex + " (" +
                                                      DU_cstoreStatusString(e.ResponseStatusCode) + ")"
                                                : "not sent: the node does not accept " +
                                                      uidName(e.SOPClassUID) + " in " + uidName(e.TransferSyntaxUID) +
                                                      " (files are sent as they are, never re-encoded)"));
    }
    if (total_) progress_.report(static_cast<double>(done_) / static_cast<double>(total_), "Sending");
  }
  OFBool shouldStopAfterCurrentSOPInstance() override { return cancel_.isCancelled(); }

 private:
  TransferReport& report_;
  Progress progress_;
  CancelToken cancel_;
  std::size_t total_;
  std::size_t done_ = 0;
};

}  // namespace

Status echo(const DimseNode& node, const DimseOptions& o) {
  auto tls = clientTls(node);
  if (!tls) return tls.error();
  DcmSCU scu;
  configure(scu, node, o);
  scu.addPresentationContext(UID_VerificationSOPClass, uncompressedSyntaxes());
  if (auto s = connect(scu, node, o, tls->get()); !s) return s;
  const auto pid = scu.findPresentationContextID(UID_VerificationSOPClass, "");
  OFCondition c = pid ? scu.sendECHORequest(pid) : OFCondition(NET_EC_NoAcceptablePresentationContexts);
  scu.releaseAssociation();
  if (c.bad()) return netError(node, "echo failed", c, o);
  return {};
}

Result<std::vector<QueryMatch>> find(const DimseNode& node, const QueryFilter& f, const DimseOptions& o,
                                     const CancelToken& cancel) {
  auto tls = clientTls(node);
  if (!tls) return tls.error();
  FindScu scu(cancel);
  configure(scu, node, o);
  scu.addPresentationContext(UID_FINDStudyRootQueryRetrieveInformationModel, uncompressedSyntaxes());
  if (auto s = connect(scu, node, o, tls->get()); !s) return s.error();
  if (cancel.isCancelled()) {
    scu.releaseAssociation();
    return Error(ErrorCode::Cancelled, "query cancelled", nodeLabel(node));
  }
  const auto pid = scu.findPresentationContextID(UID_FINDStudyRootQueryRetrieveInformationModel, "");
  if (!pid) {
    scu.releaseAssociation();
    return Error(ErrorCode::Unsupported, "the node does not offer Study Root queries (C-FIND)", nodeLabel(node));
  }
  Result<std::vector<QueryMatch>> result = std::vector<QueryMatch>{};
  if (f.level == QueryLevel::Study) {
    result = findAtLevel(scu, pid, node, f, f.studyUid, o);
  } else {
    // Series of every study that matches the study-level filters (or of the one named):
    // the Study Root model asks for series one study at a time, and the study's answer
    // gives each series its patient and study attributes.
    QueryFilter studyFilter = f;
    studyFilter.level = QueryLevel::Study;
    studyFilter.modality.clear();  // applies to each series below
    auto studies = findAtLevel(scu, pid, node, studyFilter, f.studyUid, o);
    if (!studies) {
      result = studies.error();
    } else {
      std::vector<QueryMatch> all;
      for (const auto& st : *studies) {
        if (cancel.isCancelled()) {
          result = Error(ErrorCode::Cancelled, "query cancelled", nodeLabel(node));
          break;
        }
        auto series = findAtLevel(scu, pid, node, f, st.studyUid, o);
        if (!series) {
          result = series.error();
          break;
        }
        for (auto& se : *series) {
          se.patientName = st.patientName;
          se.patientId = st.patientId;
          se.patientBirthDate = st.patientBirthDate;
          se.studyDate = st.studyDate;
          se.studyTime = st.studyTime;
          se.studyDescription = st.studyDescription;
          se.accession = st.accession;
          all.push_back(std::move(se));
        }
      }
      if (result) result = std::move(all);
    }
  }
  scu.releaseAssociation();
  return result;
}

Result<TransferReport> retrieveGet(const DimseNode& node, const std::string& studyUid, const std::string& seriesUid,
                                   db::StudyDatabase& db, const DimseOptions& o, const Progress& progress,
                                   const CancelToken& cancel) {
  if (studyUid.empty()) return Error(ErrorCode::InvalidArgument, "a Study Instance UID is needed to retrieve");
  progress.unknown("Connecting");
  // C-GET needs a presentation context in which Lumen plays the storage SCP for every SOP
  // class the node will send, or the node fails the whole retrieve: ask which it holds,
  // and propose the common image and object classes when it does not say.
  const StudyLookup lookup = lookUpStudy(node, studyUid, seriesUid, o);
  if (lookup.answered && !lookup.found) return notOnNode(node, seriesUid);
  const std::vector<std::string>& named = lookup.classes;
  std::vector<std::string> classes = named;
  for (const char* c : commonStorageClasses())
    if (std::find(classes.begin(), classes.end(), c) == classes.end()) classes.emplace_back(c);

  InstanceFiler filer(db);
  TransferReport report;
  auto tls = clientTls(node);
  if (!tls) return tls.error();
  GetScu scu(filer, report, progress, cancel, o.minFreeBytes);
  configure(scu, node, o);
  scu.addPresentationContext(UID_GETStudyRootQueryRetrieveInformationModel, uncompressedSyntaxes());
  // 128 contexts at most (odd IDs 1..255). Classes the node named also get one context per
  // compressed syntax, so compressed instances arrive as they are stored there.
  int contexts = 1;
  for (std::size_t i = 0; i < classes.size() && contexts < 128; ++i, ++contexts)
    scu.addPresentationContext(classes[i].c_str(), uncompressedSyntaxes(), ASC_SC_ROLE_SCP);
  for (const auto& sopClass : named) {
    for (const char* ts : compressedSyntaxes()) {
      if (contexts >= 128) break;
      OFList<OFString> one;
      one.push_back(ts);
      scu.addPresentationContext(sopClass.c_str(), one, ASC_SC_ROLE_SCP);
      ++contexts;
    }
  }
  if (auto s = connect(scu, node, o, tls->get()); !s) return s.error();
  const auto pid = scu.findPresentationContextID(UID_GETStudyRootQueryRetrieveInformationModel, "");
  if (!pid) {
    scu.releaseAssociation();
    return Error(ErrorCode::Unsupported, "the node does not offer C-GET (Study Root); try --via move", nodeLabel(node));
  }
  DcmDataset keys = retrieveKeys(studyUid, seriesUid);
  OFCondition c = scu.sendCGETRequest(pid, &keys, nullptr);
  scu.releaseAssociation();
  if (cancel.isCancelled())
    return Error(ErrorCode::Cancelled, "retrieve cancelled; " + std::to_string(report.stored) + " instance(s) stored",
                 nodeLabel(node));
  if (c.bad()) {
    if (report.stored) report.problems.push_back(std::to_string(report.stored) + " instance(s) were stored before the failure");
    return netError(node, "retrieve failed", c, o);
  }
  if (auto s = finalStatus(node, scu.follower.lastStatus, "retrieve", report); !s) return s.error();
  if (report.stored == 0 && report.failed == 0)
    return Error(ErrorCode::NotFound, "the node sent nothing: no such study or series there", nodeLabel(node));
  progress.report(1.0, "Retrieved");
  return report;
}

Result<TransferReport> retrieveMove(const DimseNode& node, const std::string& studyUid, const std::string& seriesUid,
                                    const std::string& destinationAe, const DimseOptions& o, const Progress& progress,
                                    const CancelToken& cancel) {
  if (studyUid.empty()) return Error(ErrorCode::InvalidArgument, "a Study Instance UID is needed to retrieve");
  progress.unknown("Connecting");
  if (const StudyLookup l = lookUpStudy(node, studyUid, seriesUid, o); l.answered && !l.found)
    return notOnNode(node, seriesUid);
  auto tls = clientTls(node);
  if (!tls) return tls.error();
  MoveScu scu(progress, cancel);
  configure(scu, node, o);
  scu.addPresentationContext(UID_MOVEStudyRootQueryRetrieveInformationModel, uncompressedSyntaxes());
  if (auto s = connect(scu, node, o, tls->get()); !s) return s.error();
  const auto pid = scu.findPresentationContextID(UID_MOVEStudyRootQueryRetrieveInformationModel, "");
  if (!pid) {
    scu.releaseAssociation();
    return Error(ErrorCode::Unsupported, "the node does not offer C-MOVE (Study Root); try --via get", nodeLabel(node));
  }
  DcmDataset keys = retrieveKeys(studyUid, seriesUid);
  OFCondition c = scu.sendMOVERequest(pid, destinationAe.c_str(), &keys, nullptr);
  scu.releaseAssociation();
  if (c.bad()) return netError(node, "retrieve failed", c, o);
  TransferReport report;
  report.stored = scu.last.m_numberOfCompletedSubops + scu.last.m_numberOfWarningSubops;
  report.warnings = scu.last.m_numberOfWarningSubops;
  report.failed = scu.last.m_numberOfFailedSubops;
  if (scu.follower.lastStatus == STATUS_MOVE_Refused_MoveDestinationUnknown)
    return Error(ErrorCode::InvalidArgument,
                 "the node does not know the destination AE title " + destinationAe +
                     " (add it to the node's list of modalities, with this machine's address and Lumen's port)",
                 nodeLabel(node));
  if (auto s = finalStatus(node, scu.follower.lastStatus, "retrieve", report); !s) return s.error();
  if (report.stored == 0 && report.failed == 0)
    return Error(ErrorCode::NotFound, "the node sent nothing: no such study or series there", nodeLabel(node));
  progress.report(1.0, "Retrieved");
  return report;
}

Result<TransferReport> send(const DimseNode& node, const std::vector<fs::path>& files, const DimseOptions& o,
                            const Progress& progress, const CancelToken& cancel) {
  dicom::initializeDicomLibrary();
  TransferReport report;
  auto tls = clientTls(node);
  if (!tls) return tls.error();
  StoreScu scu(report, progress, cancel, files.size());
  configure(scu, node, o);
  // Every file goes in its own transfer syntax, its bytes as they are: each compressed
  // syntax is proposed alone (offered with the uncompressed ones, a node may pick those and
  // the file would be decoded and re-encoded). A node that refuses a syntax gets a message
  // naming it for those files.
  scu.setDecompressionMode(DcmStorageSCU::DM_never);
  scu.setHaltOnUnsuccessfulStoreMode(OFFalse);
  scu.setHaltOnInvalidFileMode(OFFalse);
  std::size_t added = 0;
  for (const auto& f : files) {
    OFCondition c = scu.addDicomFile(f.c_str(), ERM_autoDetect, OFFalse);
    if (c.bad()) {
      ++report.failed;
      report.problems.push_back(f.string() + ": not sent: " + c.text());
    } else {
      ++added;
    }
  }
  if (added == 0) return Error(ErrorCode::InvalidArgument, "nothing to send (no readable DICOM file)", nodeLabel(node));
  progress.report(0.0, "Sending");
  for (;;) {
    if (cancel.isCancelled()) return Error(ErrorCode::Cancelled, "send cancelled", nodeLabel(node));
    OFCondition c = scu.addPresentationContexts();
    if (c == NET_EC_NoPresentationContextsDefined) break;  // everything negotiated and sent
    if (c.bad()) return netError(node, "cannot prepare the transfer", c, o);
    // releaseAssociation() frees the network too: each association starts its own.
    if (OFCondition n = scu.initNetwork(); n.bad()) return netError(node, "cannot start networking", n, o);
    if (OFCondition n = useTlsLayer(scu, tls->get()); n.bad()) return netError(node, "cannot set up TLS", n, o);
    if (OFCondition n = scu.negotiateAssociation(); n.bad()) return netError(node, "cannot connect", n, o);
    c = scu.sendSOPInstances();
    scu.releaseAssociation();
    if (c.bad() && !cancel.isCancelled()) return netError(node, "send failed", c, o);
    if (cancel.isCancelled()) return Error(ErrorCode::Cancelled, "send cancelled", nodeLabel(node));
  }
  progress.report(1.0, "Sent");
  return report;
}

}  // namespace lumen::net
