// Fuzz target for the single-file parse path: header guard, DCMTK parse, volume planning
// and pixel decoding of whatever the bytes claim to be. Built two ways:
//  - with clang and -fsanitize=fuzzer (preset "fuzz"): a libFuzzer binary;
//  - as a plain executable (always): replays files given on the command line, so the
//    corpus of known-bad inputs runs in every test pass.

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "lumen/imaging/DicomFile.h"
#include "lumen/imaging/VolumeLoader.h"
#include "lumen/imaging/VolumePlanner.h"

namespace {
std::string scratchFile() {
  static const std::string path = [] {
    std::string p = (std::filesystem::temp_directory_path() / ("lumen-fuzz-" + std::to_string(getpid()) + ".dcm")).string();
    return p;
  }();
  return path;
}

void exercise(const std::string& path) {
  auto info = lumen::dicom::readFileInfo(path);
  if (!info) return;
  lumen::dicom::ScanResult scan;
  scan.files.push_back(std::move(info.value()));
  auto plans = lumen::dicom::planVolumes(scan);
  lumen::dicom::LoadOptions o;
  o.threads = 1;
  o.memoryLimitBytes = 256u << 20;  // the fuzzer must not be killed by a huge but valid claim
  for (const auto& p : plans) (void)lumen::dicom::loadVolume(scan, p, o);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = scratchFile();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  exercise(path);
  return 0;
}

#ifndef LUMEN_LIBFUZZER
// Every argument must exist and give at least one input: a replay of nothing proves nothing.
int main(int argc, char** argv) {
  int n = 0;
  for (int i = 1; i < argc; ++i) {
    std::error_code ec;
    int fromThis = 0;
    if (std::filesystem::is_directory(argv[i], ec)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(argv[i], ec))
        if (e.is_regular_file()) {
          exercise(e.path().string());
          ++fromThis;
        }
    } else if (std::filesystem::is_regular_file(argv[i], ec)) {
      exercise(argv[i]);
      ++fromThis;
    }
    if (fromThis == 0) {
      std::fprintf(stderr, "%s: no input to replay (missing or empty)\n", argv[i]);
      return 1;
    }
    n += fromThis;
  }
  if (n == 0) {
    std::fprintf(stderr, "usage: %s FILE_OR_FOLDER...\n", argv[0]);
    return 1;
  }
  std::printf("replayed %d input(s) without a crash\n", n);
  return 0;
}
#endif
