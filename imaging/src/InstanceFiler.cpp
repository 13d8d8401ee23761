// The filer: makes every received instance (from the listener, a C-GET or C-MOVE, a
// WADO-RS part) durable in the store and the study database before it is acknowledged.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "lumen/core/DurableFile.h"
#include "lumen/core/Log.h"
#include "lumen/imaging/Dimse.h"
#include "lumen/imaging/StudyDatabase.h"

namespace lumen::net {

namespace fs = std::filesystem;

struct InstanceFiler::Impl {
  struct Pending {
    dicom::FileInfo info;
    std::vector<fs::path> folders;  // to flush before the database may name the file
    std::function<void(Result<dicom::FileInfo>)> done;  // fileLater's; empty for file()
    Status result;
    bool finished = false;
    std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
  };
  // fileLater's instances wait this long for company before they are committed: nobody
  // waits on them one by one, and a transaction plus a folder flush for every one or two
  // instances (as a fast download delivers them) cost a WADO-RS retrieve 150 flushes.
  static constexpr std::chrono::milliseconds kLaterWindow{100};
  static constexpr std::size_t kLaterBatch = 256;

  explicit Impl(db::StudyDatabase& database) : db(database), thread([this] { run(); }) {}
  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    thread.join();
  }

  std::shared_ptr<Pending> enqueue(dicom::FileInfo info, std::vector<fs::path> folders,
                                   std::function<void(Result<dicom::FileInfo>)> done) {
    auto p = std::make_shared<Pending>();
    p->info = std::move(info);
    p->folders = std::move(folders);
    p->done = std::move(done);
    std::lock_guard<std::mutex> lock(mutex);
    queue.push_back(p);
    wake.notify_all();
    return p;
  }

  Status commit(dicom::FileInfo info, std::vector<fs::path> folders) {
    auto p = enqueue(std::move(info), std::move(folders), {});
    std::unique_lock<std::mutex> lock(mutex);
    finished.wait(lock, [&] { return p->finished; });
    return p->result;
  }

  void flush() {
    std::unique_lock<std::mutex> lock(mutex);
    ++flushing;
    wake.notify_all();
    finished.wait(lock, [&] { return queue.empty() && !busy; });
    --flushing;
  }

  // One transaction for whatever has queued up while the last one was being flushed, and
  // each folder flushed once for all the files renamed into it.
  void run() {
    for (;;) {
      std::deque<std::shared_ptr<Pending>> batch;
      {
        std::unique_lock<std::mutex> lock(mutex);
        wake.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;
        const auto onlyLater = [&] {
          return std::all_of(queue.begin(), queue.end(), [](const auto& p) { return bool(p->done); });
        };
        wake.wait_until(lock, queue.front()->since + kLaterWindow, [&] {
          return stopping || flushing > 0 || queue.size() >= kLaterBatch || !onlyLater();
        });
        batch.swap(queue);
        busy = true;
      }
      // The folder that holds a new file is flushed in every batch; a folder above it only
      // until the entries it holds (the folders below, by identity) have been flushed once:
      // a series of 1000 instances costs one flush of the study and store folders, not 1000.
      std::map<fs::path, std::set<fs::path>> folders;  // folder -> new folders below it
      for (const auto& p : batch)
        for (std::size_t i = 0; i < p->folders.size(); ++i) {
          if (i == 0) {
            folders[p->folders[0]];
          } else if (auto it = durableEntries.find(p->folders[i - 1]);
                     it == durableEntries.end() || it->second != inodeOf(p->folders[i - 1])) {
            folders[p->folders[i]].insert(p->folders[i - 1]);
          }
        }
      if (durableEntries.size() > 4096) durableEntries.clear();  // a listener runs for months: bounded
      Status s;
      for (const auto& [f, below] : folders) {
        std::vector<std::pair<fs::path, Inode>> seen;  // taken before the flush that makes them durable
        for (const auto& b : below) seen.emplace_back(b, inodeOf(b));
        if (s = syncFolder(f); !s) break;
        for (const auto& [b, id] : seen)
          if (id.ino != 0) durableEntries[b] = id;
      }
      if (s) {
        std::vector<dicom::FileInfo> infos;
        infos.reserve(batch.size());
        for (const auto& p : batch) infos.push_back(p->info);
        auto r = db.addStoredInstances(infos);
        if (!r) s = r.error();
      }
      std::function<void(const dicom::FileInfo&)> notify;
      {
        std::lock_guard<std::mutex> lock(mutex);
        notify = listener;
      }
      for (const auto& p : batch) {
        if (s && notify) notify(p->info);
        if (p->done) p->done(s ? Result<dicom::FileInfo>(p->info) : Result<dicom::FileInfo>(s.error()));
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        for (const auto& p : batch) {
          p->result = s;
          p->finished = true;
        }
        busy = false;
      }
      finished.notify_all();
    }
  }

  // A folder by identity: inode and birth time, since a folder deleted and made again may
  // get the same inode number. Unknown (ino 0: never taken as flushed) without birth time.
  struct Inode {
    std::uint64_t dev = 0, ino = 0;
    std::int64_t bornSec = 0;
    std::uint32_t bornNsec = 0;
    bool operator!=(const Inode& o) const {
      return dev != o.dev || ino != o.ino || bornSec != o.bornSec || bornNsec != o.bornNsec;
    }
  };
  static Inode inodeOf(const fs::path& p) {
    struct statx st {};
    if (::statx(AT_FDCWD, p.c_str(), 0, STATX_INO | STATX_BTIME, &st) != 0 || !(st.stx_mask & STATX_BTIME)) return {};
    return {(std::uint64_t{st.stx_dev_major} << 32) | st.stx_dev_minor, st.stx_ino, st.stx_btime.tv_sec,
            st.stx_btime.tv_nsec};
  }

  db::StudyDatabase& db;
  std::map<fs::path, Inode> durableEntries;  // folder -> its identity when its parent was flushed (run()'s thread)
  std::mutex mutex;
  std::condition_variable wake, finished;
  std::deque<std::shared_ptr<Pending>> queue;
  bool stopping = false;
  bool busy = false;
  int flushing = 0;  // callers in flush(): what is queued is committed now
  std::function<void(const dicom::FileInfo&)> listener;
  std::thread thread;  // last: starts once the members above exist
};

namespace {
// Each filer writes in a folder of its own under store/.incoming, locked (flock) while it
// lives: a listener and a retrieve (or two retrieves) on one store never touch each
// other's half-received files, and a folder whose lock is free was left by a crash.
int lockFolder(const fs::path& dir, bool wait) {
  const int fd = ::open((dir / ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (::flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}
std::atomic<unsigned> filerCounter{0};
}  // namespace

InstanceFiler::InstanceFiler(db::StudyDatabase& db) : impl_(std::make_unique<Impl>(db)) {
  const fs::path root = db.storeDir() / ".incoming";
  incoming_ = root / (std::to_string(::getpid()) + "-" + std::to_string(++filerCounter));
  std::error_code ec;
  fs::create_directories(incoming_, ec);
  lock_ = lockFolder(incoming_, true);
  // Left by a crash: never acknowledged to any sender, so never indexed; the sender
  // retries. Folders without a lock file are being made by someone: left alone.
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path p = it->path();
    if (p == incoming_) continue;
    std::error_code e2;
    if (!it->is_directory(e2)) {
      fs::remove(p, e2);  // a file of the older layout, straight in .incoming
    } else if (fs::exists(p / ".lock", e2)) {
      if (const int fd = lockFolder(p, false); fd >= 0) {
        fs::remove_all(p, e2);
        ::close(fd);
      }
    }
  }
}

InstanceFiler::~InstanceFiler() {
  impl_.reset();  // every commit done
  std::error_code ec;
  fs::remove_all(incoming_, ec);
  if (lock_ >= 0) ::close(lock_);
}

void InstanceFiler::setListener(std::function<void(const dicom::FileInfo&)> listener) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->listener = std::move(listener);
}

Result<InstanceFiler::Placed> InstanceFiler::place(const fs::path& tmp, const std::string& expectedSopUid) {
  const auto discard = [&](Error e) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return e;
  };
  auto info = dicom::readFileInfo(tmp);
  // Not only images: SR, SEG, presentation states... are kept and indexed too.
  if (!info && info.error().code == ErrorCode::Unsupported) info = dicom::readFileIdentity(tmp);
  if (!info) return discard(Error(info.error().code, "received instance unreadable: " + info.error().message));
  Placed out{std::move(info.value()), {}};
  dicom::FileInfo& f = out.info;
  if (f.study.studyInstanceUid.empty() || f.series.seriesInstanceUid.empty() || f.sopInstanceUid.empty())
    return discard(Error(ErrorCode::Corrupt, "received instance lacks its Study, Series or SOP Instance UID"));
  if (!expectedSopUid.empty() && expectedSopUid != f.sopInstanceUid)
    return discard(Error(ErrorCode::Inconsistent, "the dataset's SOP Instance UID differs from the request's"));
  const fs::path dest = impl_->db.managedPath(f.study.studyInstanceUid, f.series.seriesInstanceUid, f.sopInstanceUid);
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  if (ec) return discard(Error(ErrorCode::Io, "cannot create a folder in the store: " + ec.message()));
  if (auto s = commitFile(tmp, dest, FolderSync::ByCaller); !s) return s.error();
  // The series folder holds the new entry; it and the study folder may be new themselves,
  // durable once their parents are flushed. Flushed once per batch, however many files.
  for (fs::path d = dest.parent_path(); out.folders.size() < 3 && d.has_parent_path(); d = d.parent_path())
    out.folders.push_back(d);
  f.path = dest.string();
  return out;
}

Result<dicom::FileInfo> InstanceFiler::file(const fs::path& tmp, const std::string& expectedSopUid) {
  auto placed = place(tmp, expectedSopUid);
  if (!placed) return placed.error();
  if (auto s = impl_->commit(placed->info, std::move(placed->folders)); !s) return s.error();
  return std::move(placed->info);
}

void InstanceFiler::fileLater(const fs::path& tmp, std::function<void(Result<dicom::FileInfo>)> done) {
  auto placed = place(tmp, {});
  if (!placed) {
    done(placed.error());
    return;
  }
  impl_->enqueue(std::move(placed->info), std::move(placed->folders), std::move(done));
}

void InstanceFiler::flush() { impl_->flush(); }

}  // namespace lumen::net
