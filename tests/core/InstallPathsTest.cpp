#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "lumen/core/InstallPaths.h"

namespace fs = std::filesystem;
using namespace lumen;

namespace {
struct EnvVar {
  const char* name;
  explicit EnvVar(const char* n, const char* value) : name(n) { setenv(n, value, 1); }
  ~EnvVar() { unsetenv(name); }
};
}  // namespace

TEST(InstallPaths, TheExecutableFolderIsThisTestsFolder) {
  const fs::path dir = executableDir();
  ASSERT_FALSE(dir.empty());
  EXPECT_TRUE(fs::is_regular_file(dir / "lumen_core_tests"));
}

TEST(InstallPaths, APlugInIsFoundByVariableBesideTheExecutableElseWhereItWasBuilt) {
  const std::string name = "liblumen_test_plugin_" + std::to_string(getpid()) + ".so";
  // Nothing exists: the build path, so that an error names it.
  EXPECT_EQ(pluginPath(nullptr, name, "/nonexistent/build/" + name), fs::path("/nonexistent/build/" + name));
  {
    const fs::path beside = executableDir() / name;
    std::ofstream(beside) << "x";
    EXPECT_EQ(pluginPath(nullptr, name, "/nonexistent/build/" + name), beside);
    fs::remove(beside);
  }
  {
    EnvVar v("LUMEN_TEST_PLUGIN", "/chosen/by/the/user.so");
    EXPECT_EQ(pluginPath("LUMEN_TEST_PLUGIN", name, "/nonexistent/build/" + name), fs::path("/chosen/by/the/user.so"));
  }
}

TEST(InstallPaths, ShippedModelsComeFromTheVariableElseTheBuildTree) {
  // A build tree has no <prefix>/share/lumen/models beside bin/.
  ASSERT_FALSE(fs::exists(executableDir().parent_path() / "share" / "lumen" / "models"));
  EXPECT_EQ(shippedModelsDir("/source/resources/models"), fs::path("/source/resources/models"));
  EnvVar v("LUMEN_SHIPPED_MODELS", "/elsewhere/models");
  EXPECT_EQ(shippedModelsDir("/source/resources/models"), fs::path("/elsewhere/models"));
}
