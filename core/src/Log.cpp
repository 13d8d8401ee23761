#include "lumen/core/Log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "lumen/core/Result.h"

namespace lumen {
namespace {
std::mutex& sinkMutex() {
  static std::mutex m;
  return m;
}
LogSink& sinkRef() {
  static LogSink s;
  return s;
}
std::atomic<int>& levelRef() {
  static std::atomic<int> l{static_cast<int>(LogLevel::Warning)};
  return l;
}
}  // namespace

const char* toString(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warning: return "warning";
    case LogLevel::Error: return "error";
    case LogLevel::Off: return "off";
  }
  return "?";
}

void setLogSink(LogSink sink) {
  std::lock_guard<std::mutex> lock(sinkMutex());
  sinkRef() = std::move(sink);
}

void setLogLevel(LogLevel level) { levelRef().store(static_cast<int>(level)); }
LogLevel logLevel() { return static_cast<LogLevel>(levelRef().load()); }
bool logEnabled(LogLevel level) { return static_cast<int>(level) >= levelRef().load(); }

void logMessage(LogLevel level, std::string_view message) {
  if (!logEnabled(level)) return;
  std::lock_guard<std::mutex> lock(sinkMutex());
  if (sinkRef()) {
    sinkRef()(level, message);
  } else {
    std::fprintf(stderr, "[lumen %s] %.*s\n", toString(level), static_cast<int>(message.size()),
                 message.data());
  }
}

const char* toString(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return "invalid argument";
    case ErrorCode::NotFound: return "not found";
    case ErrorCode::Io: return "I/O error";
    case ErrorCode::NotDicom: return "not DICOM";
    case ErrorCode::Corrupt: return "corrupt";
    case ErrorCode::Unsupported: return "unsupported";
    case ErrorCode::Inconsistent: return "inconsistent";
    case ErrorCode::TooLarge: return "too large";
    case ErrorCode::Cancelled: return "cancelled";
    case ErrorCode::OutOfMemory: return "out of memory";
    case ErrorCode::NotTrusted: return "not trusted";
    case ErrorCode::Database: return "database error";
    case ErrorCode::Model: return "model error";
    case ErrorCode::Internal: return "internal error";
  }
  return "?";
}

}  // namespace lumen
