// lumen-cli anonymize: de-identification into a folder, with a log that holds no patient
// data (inputs are numbered, not named: a folder name may be a patient's name).

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "CliCommands.h"
#include "lumen/core/DurableFile.h"
#include "lumen/imaging/Deidentify.h"
#include "lumen/imaging/DicomScanner.h"

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
  std::vector<dicom::SkippedFile> skipped;
  std::vector<std::string> notes;
  std::vector<fs::path> in(o.inputs.begin(), o.inputs.end());
  const fs::path out(o.outDir);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return fail(out.string() + ": cannot create the output folder: " + ec.message());
  // Earlier output inside an input folder is not input again (it would be hashed twice).
  const fs::path outCanonical = fs::weakly_canonical(out, ec);
  std::vector<fs::path> files;
  for (auto& f : dicom::enumerateInputs(in, skipped, notes)) {
    const auto rel = fs::weakly_canonical(f, ec).lexically_relative(outCanonical);
    if (!rel.empty() && *rel.begin() != "..") continue;
    files.push_back(std::move(f));
  }
  for (const auto& s : skipped) std::fprintf(stderr, "lumen-cli: %s: %s\n", s.path.c_str(), s.reason.c_str());
  if (files.empty()) return fail("anonymize: no files to de-identify");
  std::map<fs::path, std::size_t> written;  // output -> input number: two inputs, one instance

  std::string log = "input\toutput\tsop_class\tremoved\temptied\tdummies\tuids\tcleaned\tdates_shifted\tkept\tstatus\n";
  std::size_t done = 0, refused = 0, failed = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto r = deid::deidentifyFile(files[i], out, *key, options);
    const std::string n = "#" + std::to_string(i + 1);
    if (!r) {
      const bool refusal = r.error().message.rfind("refused", 0) == 0;
      (refusal ? refused : failed)++;
      std::fprintf(stderr, "lumen-cli: %s\n", r.error().toString().c_str());
      // The reason without the path: the log is shared with the data.
      log += n + "\t\t\t\t\t\t\t\t\t\t" + (refusal ? "" : "error: ") + r.error().message + "\n";
      continue;
    }
    if (auto [it, fresh] = written.emplace(r->output, i + 1); !fresh) {
      ++failed;
      std::fprintf(stderr, "lumen-cli: %s: the same instance (SOP Instance UID) as input #%zu; this copy replaced it\n",
                   files[i].c_str(), it->second);
      log += n + "\t" + r->output.string() + "\t\t\t\t\t\t\t\t\terror: the same instance as #" + std::to_string(it->second) + "\n";
      continue;
    }
    ++done;
    log += n + "\t" + r->output.string() + "\t" + r->sopClassUid + "\t" + std::to_string(r->removed) + "\t" +
           std::to_string(r->emptied) + "\t" + std::to_string(r->dummies) + "\t" + std::to_string(r->uids) + "\t" +
           std::to_string(r->cleaned) + "\t" + std::to_string(r->shifted) + "\t" + std::to_string(r->kept) + "\tok" +
           (r->note.empty() ? "" : " (" + r->note + ")") + "\n";
  }
  const fs::path logFile = out / "deidentification-log.tsv";
  if (auto st = writeFileDurably(logFile, log); !st) return fail(st.error().toString());
  if (common.json) {
    nlohmann::json j{{"deidentified", done}, {"refused", refused}, {"failed", failed + skipped.size()},
                     {"output", out.string()}, {"log", logFile.string()}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("de-identified %zu file(s) into %s (%zu refused, %zu failed); log: %s\n", done, out.c_str(), refused,
                failed + skipped.size(), logFile.c_str());
  }
  return refused + failed + skipped.size() ? 1 : 0;
}

}  // namespace lumen::cli
