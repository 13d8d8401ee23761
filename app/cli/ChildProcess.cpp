#include "ChildProcess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

namespace lumen::cli {

namespace fs = std::filesystem;

fs::path selfExe() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path("lumen-cli") : p;
}

// Runs `argv` with stdout and stderr appended to `log`, waiting at most `timeoutSeconds`
// (then the child is killed): its exit status, or an error saying why it did not finish.
Result<int> runProcess(const std::vector<std::string>& argv, const fs::path& log, int timeoutSeconds,
                       std::string* captured) {
  int pipeFd[2] = {-1, -1};
  if (captured && ::pipe2(pipeFd, O_CLOEXEC) != 0) return Error(ErrorCode::Io, "cannot create a pipe");
  const pid_t pid = ::fork();
  if (pid < 0) return Error(ErrorCode::Io, "cannot start " + argv[0]);
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(captured ? pipeFd[1] : fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  if (captured) {
    ::close(pipeFd[1]);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(pipeFd[0], buf, sizeof buf)) > 0) captured->append(buf, static_cast<std::size_t>(n));
    ::close(pipeFd[0]);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSeconds);
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0) return Error(ErrorCode::Io, "lost the child process " + argv[1]);
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return Error(ErrorCode::Io, argv[1] + " did not finish in " + std::to_string(timeoutSeconds) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (WIFSIGNALED(status)) return Error(ErrorCode::Internal, argv[1] + " was killed by signal " + std::to_string(WTERMSIG(status)));
  return WEXITSTATUS(status);
}

// The last line a child wrote to the log that names an error: the reason a step failed.
std::string lastErrorLine(const fs::path& log) {
  std::ifstream in(log);
  std::string line, last;
  while (std::getline(in, line))
    if (line.find("error") != std::string::npos) last = line;
  return last;
}

}  // namespace lumen::cli
