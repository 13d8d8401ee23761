// The storage listener: Lumen's accept loop and DCMTK's DcmSCP, one thread per
// association; every instance goes through the InstanceFiler before it is acknowledged.

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmnet/dcmtrans.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/dulstruc.h>
#include <dcmtk/dcmnet/scpthrd.h>
#include <dcmtk/dcmtls/tlslayer.h>
#include <fcntl.h>
#include <poll.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>

#include "DimseSupport.h"
#include "lumen/core/DurableFile.h"
#include "lumen/core/Log.h"
#include "lumen/imaging/Dimse.h"

namespace lumen::net {

namespace fs = std::filesystem;
using namespace detail;

namespace {

std::string trimmed(const OFString& s) {
  std::string v(s.c_str());
  while (!v.empty() && v.back() == ' ') v.pop_back();
  while (!v.empty() && v.front() == ' ') v.erase(v.begin());
  return v;
}

struct Shared {
  LocalNode local;
  InstanceFiler* filer = nullptr;
  StorageServer::Stats stats;
  std::uint64_t minFreeBytes = 0;
};

class StoreScp : public DcmThreadSCP {
 public:
  explicit StoreScp(Shared& shared) : shared_(shared) {}

 protected:
  OFBool checkCalledAETitleAccepted(const OFString& calledAE) override {
    const bool ok = trimmed(calledAE) == shared_.local.aeTitle;
    if (!ok) ++shared_.stats.rejected;
    return ok;
  }
  OFBool checkCallingAETitleAccepted(const OFString& callingAE) override {
    const auto& allow = shared_.local.allowedAe;
    const bool ok = allow.empty() || std::find(allow.begin(), allow.end(), trimmed(callingAE)) != allow.end();
    if (!ok) {
      ++shared_.stats.rejected;
      LUMEN_WARN("association from an AE title not on the allow-list rejected");
    }
    return ok;
  }
  void notifyAssociationAcknowledge() override { ++shared_.stats.associations; }

  OFCondition handleIncomingCommand(T_DIMSE_Message* msg, const DcmPresentationContextInfo& info) override {
    if (msg->CommandField != DIMSE_C_STORE_RQ) return DcmThreadSCP::handleIncomingCommand(msg, info);
    T_DIMSE_C_StoreRQ& req = msg->msg.CStoreRQ;
    const T_ASC_PresentationContextID pid = info.presentationContextID;
    InstanceFiler& filer = *shared_.filer;
    if (freeBytes(filer.incomingDir()) < shared_.minFreeBytes) {
      // Out of room: read the dataset off the wire (to keep the association in step), drop
      // it, and say so with a status the sender can act on.
      DcmDataset* ds = nullptr;
      OFCondition c = receiveSTORERequest(req, pid, ds);
      delete ds;
      if (c.bad()) return c;
      ++shared_.stats.failed;
      LUMEN_WARN("instance refused: the store's disk is below the configured free-space reserve");
      return sendSTOREResponse(pid, req, STATUS_STORE_Refused_OutOfResources);
    }
    const fs::path tmp = temporaryPathFor(filer.incomingDir() / "scp.dcm");
    // Streamed to disk exactly as received (bounded memory, original bytes).
    OFCondition c = receiveSTORERequest(req, pid, OFString(tmp.c_str()));
    if (c.bad()) {
      std::error_code ec;
      fs::remove(tmp, ec);
      ++shared_.stats.failed;
      // A write that failed (disk full): DCMTK has read the rest off the wire, so the
      // association is in step and the sender gets a status it can retry on.
      if (c == DIMSE_OUTOFRESOURCES) {
        LUMEN_WARN("instance refused: it could not be written to the store's disk");
        return sendSTOREResponse(pid, req, STATUS_STORE_Refused_OutOfResources);
      }
      return c;  // the association is out of step: DcmSCP aborts it
    }
    Uint16 status = STATUS_Success;
    auto filed = filer.file(tmp, req.AffectedSOPInstanceUID);
    if (!filed) {
      const ErrorCode code = filed.error().code;
      // A file cut short by a full disk reads as corrupt: with the disk that low, say "out
      // of resources" (the sender retries) rather than "cannot understand" (it gives up).
      const bool diskLow = freeBytes(filer.incomingDir()) < std::max<std::uint64_t>(shared_.minFreeBytes, 64ull << 20);
      status = code == ErrorCode::Io || code == ErrorCode::Database || diskLow ? STATUS_STORE_Refused_OutOfResources
               : code == ErrorCode::Inconsistent                     ? STATUS_STORE_Error_DataSetDoesNotMatchSOPClass
                                                                     : STATUS_STORE_Error_CannotUnderstand;
      ++shared_.stats.failed;
      LUMEN_WARN("instance refused: " << filed.error().message);
    } else {
      ++shared_.stats.stored;
    }
    return sendSTOREResponse(pid, req, status);
  }

 private:
  Shared& shared_;
};

// The listening socket is ours, bound where the configuration says, and handed to
// DCMTK's network in place of the one it would make: DCMTK 3.6.7 binds every interface
// (INADDR_ANY, no way to choose). Its DcmSCPPool is not used either: it never joins its
// worker threads, so each association left an 8 MiB stack mapped, and after some 32000
// associations the process ran out of mappings and the listener refused everything.
Result<int> bindListeningSocket(const LocalNode& local) {
  in_addr address{};
  address.s_addr = htonl(INADDR_ANY);
  if (!local.bindAddress.empty()) {
    if (auto why = checkBindAddress(local.bindAddress); !why.empty())
      return Error(ErrorCode::InvalidArgument, "listen address " + local.bindAddress + ": " + why);
    ::inet_pton(AF_INET, local.bindAddress.c_str(), &address);
  }
  const std::string where = (local.bindAddress.empty() ? "" : local.bindAddress + " ") + "port " + std::to_string(local.port);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK  /* the accept loop polls */, 0);
  if (fd < 0) return Error(ErrorCode::Io, std::string("cannot open a socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(local.port));
  a.sin_addr = address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    const int err = errno;
    ::close(fd);
    return Error(ErrorCode::Io, "cannot listen on " + where + ": " + std::strerror(err) +
                                    (err == EACCES          ? " (ports below 1024 need privileges)"
                                     : err == EADDRNOTAVAIL ? " (no interface of this machine has that address)"
                                                            : ""));
  }
  return fd;
}

// A DCMTK network that accepts on `fd` (it takes the socket: ASC_dropNetwork closes it).
// Its connections are made by `layer` (plain or TLS), which must outlive it.
Result<T_ASC_Network*> acceptorNetwork(int fd, const LocalNode& local, DcmTransportLayer* layer) {
  T_ASC_Network* network = nullptr;
  // As a requestor DCMTK opens no socket of its own; it becomes an acceptor on ours.
  OFCondition c = ASC_initializeNetwork(NET_REQUESTOR, 0, local.timeoutSeconds, &network);
  if (c.bad()) {
    ::close(fd);
    return Error(ErrorCode::Io, std::string("cannot start the DICOM network: ") + c.text());
  }
  auto* key = static_cast<PRIVATE_NETWORKKEY*>(network->network);
  key->applicationFunction = DICOM_APPLICATION_ACCEPTOR;
  key->networkSpecific.TCP.listenSocket = fd;
  key->networkSpecific.TCP.port = local.port;
  network->role = NET_ACCEPTOR;
  network->acceptorPort = local.port;
  if ((c = ASC_setTransportLayer(network, layer, 0)).bad()) {
    ASC_dropNetwork(&network);
    return Error(ErrorCode::Io, std::string("cannot start the DICOM network's transport: ") + c.text());
  }
  return network;
}

// DCMTK takes an already accepted socket only through this process-wide setting, read by
// whichever thread next receives an association: every listener in the process sets and
// uses it under this lock, which the receiving thread holds until DCMTK has taken the
// socket (the connection it then makes tells: HandoffLayer), not through the TLS
// handshake that follows, so a caller stalling mid-handshake holds up only its own thread.
std::mutex externalSocketMutex;
thread_local std::unique_lock<std::mutex>* externalSocketLock = nullptr;  // this thread's, while it receives

void externalSocketTaken() {
  if (externalSocketLock && externalSocketLock->owns_lock()) {
    dcmExternalSocketHandle.set(DCMNET_INVALID_SOCKET);
    externalSocketLock->unlock();
  }
}

// DCMTK's transport layer (plain or TLS), told when DCMTK makes a connection on the
// socket it has just taken: it does so once it has read the process-wide setting, before
// any handshake.
template <class Layer>
class HandoffLayer : public Layer {
 public:
  using Layer::Layer;
  DcmTransportConnection* createConnection(DcmNativeSocketType openSocket, OFBool useSecureLayer) override {
    externalSocketTaken();
    return Layer::createConnection(openSocket, useSecureLayer);
  }
};

std::unique_ptr<DcmTLSTransportLayer> handoffTlsLayer(T_ASC_NetworkRole role) {
  return std::make_unique<HandoffLayer<DcmTLSTransportLayer>>(role, nullptr, OFFalse);
}

// The first message a caller sends: an A-ASSOCIATE-RQ PDU (type 0x01, its length in the 4
// bytes after the first 2), or with DICOM TLS the first TLS record, the ClientHello (type
// 0x16, handshake; its length in the 2 bytes after the first 3).
struct FirstMessage {
  unsigned char type;
  std::size_t header, lengthAt, lengthBytes;
  std::size_t maxLength;  // larger is not a real caller
};
constexpr FirstMessage kAssociateRequest{0x01, 6, 2, 4, 1u << 20};
constexpr FirstMessage kTlsClientHello{0x16, 5, 3, 2, 16384 + 2048};

// Whether a new connection's first message has wholly arrived (counted, not read): then
// DCMTK reads it without waiting, so a caller that connects and stays silent, or trickles
// it, never holds up the accepting thread. 1: arrived; 0: not yet (the socket's receive
// low-water mark is raised to what is missing, so poll() wakes only when it is there);
// -1: closed or reset before all of it came, or not that message (dropped unseen by DCMTK).
int firstMessageArrived(int fd, short revents, const FirstMessage& m) {
  const bool ended = revents & (POLLRDHUP | POLLHUP | POLLERR);  // the rest will never come
  unsigned char head[8];
  const ssize_t n = ::recv(fd, head, m.header, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return -1;
  if (n < 0) return !ended && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
  if (head[0] != m.type) return -1;
  std::size_t want = m.header;
  if (static_cast<std::size_t>(n) == m.header) {
    std::size_t length = 0;
    for (std::size_t k = 0; k < m.lengthBytes; ++k) length = length << 8 | head[m.lengthAt + k];
    if (length > m.maxLength) return -1;
    want += length;
    int queued = 0;
    if (::ioctl(fd, FIONREAD, &queued) == 0 && static_cast<std::size_t>(queued) >= want) return 1;
  }
  if (ended) return -1;
  const int lowat = static_cast<int>(want);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
  return 0;
}

// Whether `fd` is still the socket it was when `id` was taken (fstat), so that a number
// DCMTK may have closed, and the kernel given to another file since, is never closed twice.
bool sameSocket(int fd, const struct stat& id) {
  struct stat now {};
  return ::fstat(fd, &now) == 0 && now.st_dev == id.st_dev && now.st_ino == id.st_ino;
}

void refuse(T_ASC_Association*& assoc, T_ASC_RejectParametersReason reason) {
  T_ASC_RejectParameters rej{ASC_RESULT_REJECTEDTRANSIENT, ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED, reason};
  ASC_rejectAssociation(assoc, &rej);
  ASC_dropAssociation(assoc);
  ASC_destroyAssociation(&assoc);
}

}  // namespace

struct StorageServer::Impl {
  struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
    // While the worker receives its association (with TLS, the whole handshake): a
    // duplicate of the caller's socket, so the accepting thread can hang up on a caller
    // that takes longer than the timeout in all (each read alone is bounded, a trickle is
    // not) or is still shaking hands at stop. The duplicate keeps the socket's number from
    // being reused meanwhile.
    std::mutex receiving;
    int receivingFd = -1;
    std::chrono::steady_clock::time_point since;
  };

  Shared shared;
  // Outlives the network and every association: DICOM TLS, or plain TCP.
  std::unique_ptr<DcmTransportLayer> layer;
  bool tls = false;
  std::atomic<int> serving{0};  // associations accepted and not yet ended
  DcmSCPConfig config;
  T_ASC_Network* network = nullptr;
  std::list<Worker> workers;  // the accepting thread's alone
  struct Waiting {
    int fd;
    std::chrono::steady_clock::time_point since;
  };
  std::vector<Waiting> waiting;  // accepted; their association request not all here yet
  int listenFd = -1;             // the network's
  std::chrono::steady_clock::time_point acceptRestUntil;
  std::atomic<bool> stopping{false};
  std::thread thread;
  bool stopped = false;

  ~Impl() {
    if (network) ASC_dropNetwork(&network);
  }

  // Joins the workers that are done (all of them when `all`); returns how many still run.
  std::size_t reap(bool all) {
    for (auto it = workers.begin(); it != workers.end();) {
      if (all || it->done) {
        it->thread.join();
        it = workers.erase(it);
      } else {
        ++it;
      }
    }
    return workers.size();
  }

  void acceptLoop() {
    const DcmSharedSCPConfig sharedConfig(config);
    const auto timeout = std::chrono::seconds(shared.local.timeoutSeconds);
    const std::size_t maxWaiting = 4 * static_cast<std::size_t>(shared.local.maxAssociations);
    const FirstMessage& first = tls ? kTlsClientHello : kAssociateRequest;
    while (!stopping) {
      // Out of descriptors (or memory), the listening socket stays readable: it rests a
      // second rather than spin.
      const bool resting = std::chrono::steady_clock::now() < acceptRestUntil;
      std::vector<pollfd> fds{{resting ? -1 : listenFd, POLLIN, 0}};
      for (const Waiting& w : waiting) fds.push_back({w.fd, POLLIN | POLLRDHUP, 0});
      ::poll(fds.data(), fds.size(), 1000);  // wakes every second to see whether to stop
      const auto now = std::chrono::steady_clock::now();
      std::vector<Waiting> still;
      for (std::size_t i = 0; i < waiting.size(); ++i) {
        const Waiting& w = waiting[i];
        const int state = fds[i + 1].revents ? firstMessageArrived(w.fd, fds[i + 1].revents, first) : 0;
        if (state > 0) {
          const int lowat = 1;
          ::setsockopt(w.fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
          handOver(w.fd, sharedConfig);
        } else if (state < 0) {
          ::close(w.fd);
        } else if (now - w.since > timeout) {
          ::close(w.fd);
          LUMEN_WARN("a caller connected to the DICOM listener and sent no whole association request within "
                     << shared.local.timeoutSeconds << " s: disconnected");
        } else {
          still.push_back(w);
        }
      }
      waiting.swap(still);
      if (fds[0].revents & POLLIN) acceptWaiting(now, maxWaiting);
      reap(false);
      hangUpSlowReceivers(now, timeout);
    }
    for (const Waiting& w : waiting) ::close(w.fd);
    waiting.clear();
    hangUpSlowReceivers(std::chrono::steady_clock::time_point::max(), timeout);  // handshakes end now
    reap(true);  // running associations finish first
  }

  // Hangs up on callers whose association (and TLS handshake) is not received within
  // `timeout` of their first message: their worker's reads then fail at once.
  void hangUpSlowReceivers(std::chrono::steady_clock::time_point now, std::chrono::seconds timeout) {
    for (Worker& w : workers) {
      std::lock_guard<std::mutex> lock(w.receiving);
      if (w.receivingFd >= 0 && now - w.since > timeout) {
        ::shutdown(w.receivingFd, SHUT_RDWR);
        ::close(w.receivingFd);
        w.receivingFd = -1;
        LUMEN_WARN("a caller to the DICOM listener did not complete its association request within "
                   << shared.local.timeoutSeconds << " s (or the listener stopped): disconnected");
      }
    }
  }

  // Takes every connection the kernel holds; each waits for its association request.
  void acceptWaiting(std::chrono::steady_clock::time_point now, std::size_t maxWaiting) {
    for (;;) {
      int fd = ::accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          LUMEN_WARN("the DICOM listener could not accept a connection: " << std::strerror(errno));
          acceptRestUntil = now + std::chrono::seconds(1);
        }
        return;  // EAGAIN: none left; EINTR, ECONNABORTED, a network error: the next round
      }
      if (fd == 0) {  // DCMTK reads 0 as "no socket"
        fd = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
        ::close(0);
        if (fd < 0) continue;
      }
      const int lowat = 6;  // a PDU header
      ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
      if (waiting.size() >= maxWaiting) {  // the longest waiting makes room
        ::close(waiting.front().fd);
        waiting.erase(waiting.begin());
        LUMEN_WARN("too many callers connected to the DICOM listener without an association request: "
                   "the longest waiting was disconnected");
      }
      waiting.push_back({fd, now});
    }
  }

  // Gives `fd` (accepted, its first message all here) a worker thread of its own, which
  // receives the association (with TLS, after the handshake) and serves or rejects it.
  // Workers in a handshake or rejecting count too: at most twice the association limit
  // run; a caller beyond that is disconnected unanswered.
  void handOver(int fd, const DcmSharedSCPConfig& sharedConfig) {
    if (reap(false) >= 2 * static_cast<std::size_t>(shared.local.maxAssociations)) {
      ++shared.stats.rejected;
      ::close(fd);
      LUMEN_WARN("too many callers at once at the DICOM listener: one was disconnected unanswered");
      return;
    }
    Worker& w = workers.emplace_back();
    w.since = std::chrono::steady_clock::now();
    w.receivingFd = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);  // -1 (no descriptor to spare): no deadline
    try {
      w.thread = std::thread([this, &w, fd, &sharedConfig] {
        try {
          serve(fd, w, sharedConfig);
        } catch (const std::exception& e) {  // this caller fails; the listener goes on
          LUMEN_WARN("a DICOM association failed: " << e.what());
        }
        received(w);
        w.done = true;  // only now may the accepting thread join without waiting
      });
    } catch (const std::system_error&) {  // no thread to be had: the caller may retry
      received(w);
      workers.pop_back();
      ::close(fd);
      LUMEN_WARN("the DICOM listener could not start a thread for a caller: disconnected");
    }
  }

  // The worker has received its association, or failed to: no deadline from now on.
  static void received(Worker& w) {
    std::lock_guard<std::mutex> lock(w.receiving);
    if (w.receivingFd >= 0) ::close(w.receivingFd);
    w.receivingFd = -1;
  }

  // Takes an association slot unless all `maxAssociations` are in use.
  bool claimSlot() {
    int n = serving.load();
    while (n < shared.local.maxAssociations)
      if (serving.compare_exchange_weak(n, n + 1)) return true;
    return false;
  }

  // On the worker: receives the association on `fd`, then serves it, or rejects it when
  // the association limit is reached or the listener is stopping.
  void serve(int fd, Worker& w, const DcmSharedSCPConfig& sharedConfig) {
    T_ASC_Association* assoc = nullptr;
    struct stat id {};
    ::fstat(fd, &id);
    OFCondition c;
    {
      std::unique_lock<std::mutex> lock(externalSocketMutex);
      struct Handoff {  // ends the handoff however DCMTK returns (or throws: out of memory)
        std::unique_lock<std::mutex>& lock;
        ~Handoff() {
          externalSocketLock = nullptr;
          if (lock.owns_lock()) dcmExternalSocketHandle.set(DCMNET_INVALID_SOCKET);  // DCMTK failed before taking it
        }
      } handoff{lock};
      dcmExternalSocketHandle.set(fd);
      externalSocketLock = &lock;
      // On a socket of ours DCMTK ignores the timeout given here: the network's timeout
      // bounds the read of the request, the socket's receive timeout each handshake read,
      // and the accepting thread the whole (hangUpSlowReceivers).
      c = ASC_receiveAssociation(network, &assoc, ASC_DEFAULTMAXPDU, nullptr, nullptr, tls, DUL_NOBLOCK, 1);
    }
    if (c.bad()) {
      LUMEN_WARN("a connection to the DICOM listener failed before its association began: " << c.text());
      if (assoc) {
        ASC_dropAssociation(assoc);  // closes the socket if DCMTK had taken it
        ASC_destroyAssociation(&assoc);
      }
      if (sameSocket(fd, id)) ::close(fd);  // DCMTK failed before taking it
      return;
    }
    received(w);
    if (stopping) {
      ++shared.stats.rejected;
      refuse(assoc, ASC_REASON_SP_PRES_TEMPORARYCONGESTION);
      return;
    }
    if (!claimSlot()) {
      ++shared.stats.rejected;
      refuse(assoc, ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED);
      return;
    }
    struct Release {
      std::atomic<int>& n;
      ~Release() { --n; }
    } release{serving};
    {
      StoreScp scp(shared);
      scp.setSharedConfig(sharedConfig);
      scp.run(assoc);  // negotiates, serves, releases and frees the association
      // One rejected (wrong AE title, not on the allow-list) is still open: DCMTK would
      // wait up to 180 s for the caller to hang up, holding this thread. The answer is
      // sent; hang up now (the socket is still the association's, so still this fd).
      if (scp.isConnected()) ::shutdown(fd, SHUT_RDWR);
    }  // DcmSCP's destructor drops and frees what is left
  }
};

StorageServer::StorageServer() : impl_(std::make_unique<Impl>()) {}

Result<std::unique_ptr<StorageServer>> StorageServer::start(const LocalNode& local, InstanceFiler& filer) {
  dicom::initializeDicomLibrary();
  std::unique_ptr<StorageServer> server(new StorageServer());
  Impl& m = *server->impl_;
  m.shared.local = local;
  m.shared.filer = &filer;
  m.shared.minFreeBytes = static_cast<std::uint64_t>(local.minFreeMegabytes) << 20;
  if (local.tls) {
    auto layer = makeTlsLayer(*local.tls, true, handoffTlsLayer);
    if (!layer) return layer.error();
    m.layer = std::move(*layer);
    m.tls = true;
    // A TLS handshake's reads are bounded by DCMTK's socket receive timeout (a
    // process-wide setting, 60 s by default): bound them by ours.
    dcmSocketReceiveTimeout.set(static_cast<Sint32>(local.timeoutSeconds));
  } else {
    m.layer = std::make_unique<HandoffLayer<DcmTransportLayer>>();
  }
  DcmSCPConfig& cfg = m.config;
  cfg.setAETitle(local.aeTitle.c_str());
  cfg.setPort(static_cast<Uint16>(local.port));
  cfg.setMaxReceivePDULength(ASC_DEFAULTMAXPDU);
  cfg.setHostLookupEnabled(OFFalse);  // no DNS lookups on the accept path
  // A peer silent for the timeout is dropped (the accept loop's own waits: acceptLoop).
  cfg.setACSETimeout(static_cast<Uint32>(local.timeoutSeconds));
  cfg.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
  cfg.setDIMSETimeout(static_cast<Uint32>(local.timeoutSeconds));
  cfg.addPresentationContext(UID_VerificationSOPClass, uncompressedSyntaxes());
  const OFList<OFString> syntaxes = allAcceptedSyntaxes();
  for (int i = 0; i < numberOfDcmAllStorageSOPClassUIDs; ++i)
    cfg.addPresentationContext(dcmAllStorageSOPClassUIDs[i], syntaxes);
  // Bound before start() returns: a caller told "listening" can connect at once, and
  // "address in use" is an error it gets, not a log line from a thread.
  auto fd = bindListeningSocket(local);
  if (!fd) return fd.error();
  auto network = acceptorNetwork(*fd, local, m.layer.get());
  if (!network) return network.error();
  m.network = *network;
  m.listenFd = *fd;
  m.thread = std::thread([&m] { m.acceptLoop(); });
  return server;
}

void StorageServer::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->stopping = true;
  if (impl_->thread.joinable()) impl_->thread.join();
}

StorageServer::~StorageServer() { stop(); }

const StorageServer::Stats& StorageServer::stats() const { return impl_->shared.stats; }

}  // namespace lumen::net
