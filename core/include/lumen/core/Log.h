#pragma once
// Logging facade. The library layers log through this; the application decides where it
// goes (stderr, a file, the GUI's log panel). Never log patient data (names, IDs, dates of
// birth): log UIDs, file paths and counts instead.

#include <functional>
#include <sstream>
#include <string>
#include <string_view>

namespace lumen {

enum class LogLevel { Debug = 0, Info = 1, Warning = 2, Error = 3, Off = 4 };

using LogSink = std::function<void(LogLevel, std::string_view)>;

/// Replace the sink (thread-safe). An empty sink restores the default (stderr).
void setLogSink(LogSink sink);
void setLogLevel(LogLevel level);
LogLevel logLevel();
bool logEnabled(LogLevel level);
void logMessage(LogLevel level, std::string_view message);
const char* toString(LogLevel level);

}  // namespace lumen

#define LUMEN_LOG(level, expr)                              \
  do {                                                      \
    if (::lumen::logEnabled(level)) {                       \
      std::ostringstream lumen_log_stream_;                 \
      lumen_log_stream_ << expr;                            \
      ::lumen::logMessage(level, lumen_log_stream_.str());  \
    }                                                       \
  } while (0)

#define LUMEN_DEBUG(expr) LUMEN_LOG(::lumen::LogLevel::Debug, expr)
#define LUMEN_INFO(expr) LUMEN_LOG(::lumen::LogLevel::Info, expr)
#define LUMEN_WARN(expr) LUMEN_LOG(::lumen::LogLevel::Warning, expr)
#define LUMEN_ERROR(expr) LUMEN_LOG(::lumen::LogLevel::Error, expr)
