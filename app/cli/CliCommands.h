#pragma once
// The commands of lumen-cli. Each returns the process exit code and prints results to
// stdout; errors go to stderr as one line naming the file and the reason.

#include <filesystem>
#include <string>
#include <vector>

namespace lumen::cli {

struct CommonOptions {
  int threads = 0;
  std::filesystem::path dataDir;  // empty: the default data directory
  bool json = false;
  bool progress = false;
};

int runImport(const std::vector<std::string>& paths, bool copy, const CommonOptions& common);
int runList(const CommonOptions& common);
int runInfo(const std::vector<std::string>& paths, const CommonOptions& common);

struct ConvertOptions {
  std::string input;
  std::string output;
  std::string seriesUid;
  int volumeIndex = 0;  // 1-based as listed by `info`; 0 = choose
  bool timing = false;  // phase times on stderr (benchmarks)
};
int runConvert(const ConvertOptions& options, const CommonOptions& common);

/// Prints "lumen-cli: error: <message>" on stderr and returns 1.
int fail(const std::string& message);

}  // namespace lumen::cli
