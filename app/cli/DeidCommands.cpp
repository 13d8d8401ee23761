// lumen-cli anonymize: de-identification into a folder, with a log that holds no patient
// data (inputs are numbered, not named: a folder name may be a patient's name).

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "CliCommands.h"
#include "lumen/imaging/Deidentify.h"

namespace lumen::cli {

namespace fs = std::filesystem;

int runAnonymize(const AnonymizeOptions& o, const CommonOptions& common) {
  if (!o.makeKey.empty()) {
    if (auto st = deid::Key::create(o.makeKey); !st) return fail(st.error().toString());
    std::printf("created the project key %s (mode 0600): keep it to export more data consistently, never share it\n",
                o.makeKey.c_str());
    return 0;
  }
  if (o.keyFile.empty()) return fail("anonymize: --key FILE is required (create one with --make-key FILE)");
  auto key = deid::Key::load(o.keyFile);
  if (!key) return fail(key.error().toString());
  deid::Options options;
  options.allowBurnedIn = o.allowBurnedIn;
  for (const auto& name : o.options)
    if (!deid::setOption(options, name)) {
      std::string known;
      for (const auto& n : deid::optionNames()) known += (known.empty() ? "" : ", ") + n;
      return fail("--option " + name + ": unknown (known: " + known + ")");
    }
  std::vector<fs::path> in(o.inputs.begin(), o.inputs.end());
  const fs::path out(o.outDir);
  auto r = deid::deidentifyInputs(in, out, *key, options);
  if (!r) return fail(r.error().toString());
  for (const auto& p : r->problems) std::fprintf(stderr, "lumen-cli: %s\n", p.c_str());
  if (r->deidentified + r->refused + r->failed == 0) return fail("anonymize: no files to de-identify");
  const std::size_t done = r->deidentified, refused = r->refused, failed = r->failed;
  const fs::path& logFile = r->log;
  if (common.json) {
    nlohmann::json j{{"deidentified", done}, {"refused", refused}, {"failed", failed},
                     {"output", out.string()}, {"log", logFile.string()}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("de-identified %zu file(s) into %s (%zu refused, %zu failed); log: %s\n", done, out.c_str(), refused,
                failed, logFile.c_str());
  }
  return refused + failed ? 1 : 0;
}

}  // namespace lumen::cli
