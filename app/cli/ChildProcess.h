#pragma once
// Child processes of lumen-cli (batch steps run as `lumen-cli infer`, `report`, ...): a
// model that crashes ends its process, not the batch, and each step is exactly the
// command a person would run.

#include <filesystem>
#include <string>
#include <vector>

#include "lumen/core/Result.h"

namespace lumen::cli {

/// This executable (to run lumen-cli's own commands as children).
std::filesystem::path selfExe();

/// Runs `argv` with stdout and stderr appended to `log` (stdout into `captured` instead
/// when given), waiting at most `timeoutSeconds` (then the child is killed): its exit
/// status, or an error saying why it did not finish.
Result<int> runProcess(const std::vector<std::string>& argv, const std::filesystem::path& log, int timeoutSeconds,
                       std::string* captured = nullptr);

/// The last line a child wrote to the log that names an error: the reason a step failed.
std::string lastErrorLine(const std::filesystem::path& log);

}  // namespace lumen::cli
