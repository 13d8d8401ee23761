#pragma once
// Where Lumen's own files are, for a build tree and for an installed package alike.
//
// An installed Lumen keeps its executables in <prefix>/bin, its plug-ins in
// <prefix>/lib/<multiarch>/lumen (LUMEN_INSTALL_PLUGINDIR) and its shipped models in <prefix>/share/lumen/models. They are found
// from the running executable, so a package works without environment variables and
// without knowing its prefix at build time; a build tree has none of these folders and
// falls back to the paths it was built with.

#include <filesystem>
#include <string>

namespace lumen {

/// The folder of the running executable (empty if it cannot be read).
std::filesystem::path executableDir();

/// A plug-in: $envVar when set, else beside the executable, else the install's plug-in folder, else
/// `buildPath` (may be empty). The first that exists, or the last candidate when none does,
/// so that the error names a real place.
std::filesystem::path pluginPath(const char* envVar, const std::string& fileName, const std::filesystem::path& buildPath = {});

/// The shipped model bundles: $LUMEN_SHIPPED_MODELS when set, else <prefix>/share/lumen/models
/// when it exists, else `buildPath` (the source tree's resources/models).
std::filesystem::path shippedModelsDir(const std::filesystem::path& buildPath);

}  // namespace lumen
