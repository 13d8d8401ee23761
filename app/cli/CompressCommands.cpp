// lumen-cli compress: lossless re-encoding of DICOM files into a folder.

#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "CliCommands.h"
#include "lumen/core/Parallel.h"
#include "lumen/imaging/Compress.h"
#include "lumen/imaging/DicomScanner.h"

namespace lumen::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

int runCompress(const CompressOptions& o, const CommonOptions& common) {
  dicom::LosslessSyntax syntax;
  if (!dicom::parseLosslessSyntax(o.syntax, syntax)) return fail("--syntax must be jpeg-ls, jpeg2000 or deflate");
  if (o.inputs.empty()) return fail("give the files or folders to compress, then the output folder");
  const fs::path outDir = o.outDir;
  // Each input keeps its path below the folder it was found in.
  std::vector<std::pair<fs::path, fs::path>> jobs;  // (input, output)
  std::vector<dicom::SkippedFile> skipped;
  std::vector<std::string> notes;
  std::map<fs::path, fs::path> taken;
  std::error_code ec;
  const fs::path outCanon = fs::weakly_canonical(outDir, ec);
  for (const auto& input : o.inputs) {
    const fs::path root = fs::is_directory(input) ? fs::path(input) : fs::path(input).parent_path();
    for (const auto& f : dicom::enumerateInputs({fs::path(input)}, skipped, notes)) {
      const fs::path canon = fs::weakly_canonical(f, ec);
      if (!outCanon.empty() && canon.string().rfind(outCanon.string() + "/", 0) == 0) continue;  // our own output
      const fs::path dest = outDir / fs::relative(f, root.empty() ? fs::path(".") : root, ec);
      if (taken.count(dest)) return fail(f.string() + " and " + taken[dest].string() + " would both be written to " + dest.string());
      taken[dest] = f;
      jobs.emplace_back(f, dest);
    }
  }
  for (const auto& s : skipped) std::cerr << "lumen-cli: " << s.path << ": " << s.reason << "\n";
  std::vector<Result<dicom::CompressReport>> results(jobs.size(), Error(ErrorCode::Internal, ""));
  parallelFor(jobs.size(), resolveThreadCount(common.threads), {},
              [&](std::size_t i, int) { results[i] = dicom::compressFile(jobs[i].first, syntax, jobs[i].second); });
  std::uint64_t pixels = 0, compressed = 0, in = 0, out = 0;
  std::size_t ok = 0, failed = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (!results[i]) {
      ++failed;
      std::cerr << "lumen-cli: " << results[i].error().toString() << "\n";
      continue;
    }
    ++ok;
    pixels += results[i]->pixelBytes, compressed += results[i]->compressedBytes;
    in += results[i]->fileBytesIn, out += results[i]->fileBytesOut;
  }
  const double ratio = compressed > 0 ? static_cast<double>(syntax == dicom::LosslessSyntax::Deflate ? in : pixels) /
                                             static_cast<double>(compressed)
                                       : 0.0;
  if (common.json) {
    std::cout << json{{"syntax", o.syntax}, {"files", ok}, {"failed", failed}, {"pixel_bytes", pixels},
                      {"compressed_bytes", compressed}, {"file_bytes_in", in}, {"file_bytes_out", out}, {"ratio", ratio}}
                     .dump(2)
              << "\n";
  } else {
    std::printf("compressed %zu file(s) as %s: %s %.3f:1 (%llu -> %llu bytes), files %llu -> %llu bytes%s\n", ok,
                o.syntax.c_str(), syntax == dicom::LosslessSyntax::Deflate ? "data sets" : "pixel data", ratio,
                static_cast<unsigned long long>(syntax == dicom::LosslessSyntax::Deflate ? in : pixels),
                static_cast<unsigned long long>(compressed), static_cast<unsigned long long>(in),
                static_cast<unsigned long long>(out), failed ? (", " + std::to_string(failed) + " failed").c_str() : "");
  }
  if (failed > 0 || ok == 0) return fail(std::to_string(failed) + " file(s) not compressed" + (ok == 0 ? " (none was)" : ""));
  return 0;
}

}  // namespace lumen::cli
