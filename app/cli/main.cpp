// lumen-cli: Lumen's command line. No GUI dependencies.

#include <CLI/CLI.hpp>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "CliCommands.h"
#include "lumen/core/InstallPaths.h"
#include "lumen/core/Log.h"

#ifndef LUMEN_VERSION
#define LUMEN_VERSION "0.0.0"
#endif

namespace {
// `infer` and `models` live in a plug-in with LibTorch: loaded only when used, so the
// other commands start fast and small.
int runAiPlugin(int argc, char** argv) {
  const std::string path = lumen::pluginPath("LUMEN_CLI_AI_PLUGIN", "liblumen_cli_ai.so").string();
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) return lumen::cli::fail(std::string("AI commands are unavailable: ") + dlerror());
  using Main = int (*)(int, char**);
  auto fn = reinterpret_cast<Main>(dlsym(lib, "lumen_cli_ai_main"));
  if (!fn) return lumen::cli::fail(path + ": not a Lumen AI plug-in");
  return fn(argc, argv);
}
}  // namespace

int main(int argc, char** argv) {
  using namespace lumen::cli;
  // The command is the first word that is neither an option nor the value of a global
  // option that takes one (`lumen-cli --threads 2 infer ...`).
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0) {
      ++i;
      continue;
    }
    if (argv[i][0] == '-') continue;
    if (std::strcmp(argv[i], "infer") == 0 || std::strcmp(argv[i], "models") == 0) return runAiPlugin(argc, argv);
    break;
  }
  CLI::App app{"Lumen command line: import, inspect and convert medical images.", "lumen-cli"};
  app.set_version_flag("--version", std::string("lumen-cli ") + LUMEN_VERSION);
  app.require_subcommand(1);

  CommonOptions common;
  int verbosity = 0;
  std::string dataDir;
  app.add_option("--threads", common.threads, "Worker threads (0 = all cores)")->check(CLI::Range(0, 256));
  app.add_flag("-v,--verbose", verbosity, "More log output (-vv for debug)");
  app.add_flag("--progress", common.progress, "Show progress on stderr");

  std::vector<std::string> importPaths;
  bool copy = false;
  auto* imp = app.add_subcommand("import", "Add DICOM files or folders to the study database");
  imp->add_option("paths", importPaths, "Files, folders or DICOMDIRs")->required();
  imp->add_flag("--copy", copy, "Copy files into the managed store instead of referencing them in place");
  imp->add_option("--data-dir", dataDir, "Data folder holding lumen.db (default: $LUMEN_DATA_DIR or XDG data dir)");
  imp->add_flag("--json", common.json, "Machine-readable output");

  auto* list = app.add_subcommand("list", "List patients, studies and series in the study database");
  list->add_option("--data-dir", dataDir, "Data folder holding lumen.db");
  list->add_flag("--json", common.json, "Machine-readable output");

  std::vector<std::string> infoPaths;
  auto* info = app.add_subcommand("info", "Describe every volume found in files or folders (size, spacing, origin, ...)");
  info->add_option("paths", infoPaths, "Files, folders or DICOMDIRs")->required();
  info->add_flag("--json", common.json, "Machine-readable output");

  // Listed for --help; run by the AI plug-in (see runAiPlugin).
  app.add_subcommand("infer", "Run an AI model (MONAI bundle) on a volume: lumen-cli infer --help");
  app.add_subcommand("models", "List the AI models Lumen finds: lumen-cli models --help");

  ConvertOptions conv;
  auto* convert = app.add_subcommand("convert", "Convert one volume to NIfTI or NRRD");
  convert->add_option("input", conv.input, "DICOM file, folder or DICOMDIR")->required();
  convert->add_option("output", conv.output, "Output file: .nii, .nii.gz or .nrrd")->required();
  convert->add_option("--series", conv.seriesUid, "Series Instance UID to convert");
  convert->add_option("--volume", conv.volumeIndex, "Volume number as listed by `info` (1-based)")->check(CLI::PositiveNumber);
  convert->add_flag("--timing", conv.timing, "Print load and write times on stderr");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  lumen::setLogLevel(verbosity >= 2 ? lumen::LogLevel::Debug
                                    : (verbosity == 1 ? lumen::LogLevel::Info : lumen::LogLevel::Warning));
  common.dataDir = dataDir;
  try {
    if (imp->parsed()) return runImport(importPaths, copy, common);
    if (list->parsed()) return runList(common);
    if (info->parsed()) return runInfo(infoPaths, common);
    if (convert->parsed()) return runConvert(conv, common);
  } catch (const std::exception& e) {
    // A bug, not a user error; still one line, still no crash.
    return fail(std::string("internal error: ") + e.what());
  }
  return fail("no command given (see --help)");
}
