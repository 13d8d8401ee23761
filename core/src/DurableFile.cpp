#include "lumen/core/DurableFile.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace lumen {

namespace fs = std::filesystem;

namespace {
Error sysError(const std::string& what, const fs::path& path) {
  return Error(ErrorCode::Io, what + ": " + std::strerror(errno), path.string());
}
}  // namespace

fs::path temporaryPathFor(const fs::path& dest) {
  static std::atomic<std::uint64_t> counter{0};
  return dest.parent_path() / (".part-" + dest.filename().string() + "-" + std::to_string(getpid()) + "-" +
                               std::to_string(counter.fetch_add(1)));
}

std::size_t removeAbandonedTemporaries(const fs::path& dest) {
  const std::string prefix = ".part-" + dest.filename().string() + "-";
  std::size_t removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dest.parent_path().empty() ? fs::path(".") : dest.parent_path(), ec), end;
       !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    // <prefix><pid>-<counter>: the writer's process id.
    const std::string rest = name.substr(prefix.size());
    const auto dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos || rest.find_first_not_of("0123456789-") != std::string::npos) continue;
    const long pid = std::strtol(rest.substr(0, dash).c_str(), nullptr, 10);
    if (pid <= 0 || pid == static_cast<long>(getpid()) || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH)
      continue;
    std::error_code e2;
    if (fs::remove_all(it->path(), e2) > 0 && !e2) ++removed;
  }
  return removed;
}

Status syncFolder(const fs::path& dir) {
  const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d < 0) return sysError("cannot open the folder to flush it", dir);
  const int rc = ::fsync(d);
  ::close(d);
  if (rc != 0) return sysError("cannot flush the folder to disk", dir);
  return {};
}

Status commitFile(const fs::path& tmp, const fs::path& dest, FolderSync folder) {
  std::error_code ec;
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    Error e = sysError("cannot flush the file to disk", dest);
    if (fd >= 0) ::close(fd);
    fs::remove(tmp, ec);
    return e;
  }
  ::close(fd);
  fs::rename(tmp, dest, ec);
  if (ec) {
    Error e(ErrorCode::Io, "cannot move the file into place: " + ec.message(), dest.string());
    fs::remove(tmp, ec);
    return e;
  }
  // The rename is durable only once the folder's entry is.
  if (folder == FolderSync::ByCaller) return {};
  return syncFolder(dest.has_parent_path() ? dest.parent_path() : fs::path("."));
}

Status writeFileDurably(const fs::path& dest, std::string_view bytes, unsigned mode) {
  const fs::path tmp = temporaryPathFor(dest);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) return sysError("cannot create the file", dest);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      Error e = sysError("cannot write the file", dest);
      ::close(fd);
      std::error_code ec;
      fs::remove(tmp, ec);
      return e;
    }
    done += static_cast<std::size_t>(w);
  }
  if (::close(fd) != 0) {
    Error e = sysError("cannot write the file", dest);
    std::error_code ec;
    fs::remove(tmp, ec);
    return e;
  }
  return commitFile(tmp, dest);
}

}  // namespace lumen
