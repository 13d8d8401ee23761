#include "lumen/core/InstallPaths.h"

#include <cstdlib>
#include <vector>

#ifndef LUMEN_INSTALL_PLUGINDIR
#define LUMEN_INSTALL_PLUGINDIR "lib/lumen"
#endif

namespace fs = std::filesystem;

namespace lumen {

fs::path executableDir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

fs::path pluginPath(const char* envVar, const std::string& fileName, const fs::path& buildPath) {
  if (const char* p = envVar ? std::getenv(envVar) : nullptr; p && *p) return p;
  std::vector<fs::path> candidates;
  if (const fs::path dir = executableDir(); !dir.empty()) {
    candidates.push_back(dir / fileName);
    candidates.push_back(dir.parent_path() / LUMEN_INSTALL_PLUGINDIR / fileName);
  }
  if (!buildPath.empty()) candidates.push_back(buildPath);
  std::error_code ec;
  for (const auto& c : candidates)
    if (fs::is_regular_file(c, ec)) return c;
  return candidates.empty() ? fs::path(fileName) : candidates.back();
}

fs::path shippedModelsDir(const fs::path& buildPath) {
  if (const char* p = std::getenv("LUMEN_SHIPPED_MODELS"); p && *p) return p;
  if (const fs::path dir = executableDir(); !dir.empty()) {
    const fs::path installed = dir.parent_path() / "share" / "lumen" / "models";
    std::error_code ec;
    if (fs::is_directory(installed, ec)) return installed;
  }
  return buildPath;
}

}  // namespace lumen
