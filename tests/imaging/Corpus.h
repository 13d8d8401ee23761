#pragma once
// Access to the generated ingest corpus (tests/data/make_corpus.py, run as a CTest
// fixture) and the bundled real CT.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "lumen/core/Volume.h"
#include "lumen/imaging/DicomScanner.h"
#include "lumen/imaging/VolumeLoader.h"
#include "lumen/imaging/VolumePlanner.h"

namespace lumen::test {

inline std::filesystem::path corpus(const std::string& rel = {}) {
  const std::filesystem::path root = std::filesystem::path(LUMEN_TEST_WORK_DIR) / "corpus";
  return rel.empty() ? root : root / rel;
}

inline std::filesystem::path sampleCt() { return LUMEN_SAMPLE_DIR; }
inline std::filesystem::path fullCt() { return LUMEN_FULL_CT_DIR; }
inline bool haveFullCt() { return std::filesystem::is_directory(fullCt()); }

#define LUMEN_REQUIRE_CORPUS()                                                                   \
  do {                                                                                           \
    if (!std::filesystem::exists(::lumen::test::corpus("COMPLETE")))                              \
      GTEST_FAIL() << "test corpus missing: run the corpus_setup test (ctest builds it first)"; \
  } while (0)

/// The ramp phantom: every pixel holds this function of its own LPS position.
inline double ramp(const Vec3& p) { return std::nearbyint(2 * p.x + 3 * p.y + 5 * p.z) + 1000; }

struct Loaded {
  dicom::ScanResult scan;
  std::vector<dicom::VolumePlan> plans;
  std::vector<dicom::SkippedFile> skipped;
};

inline Loaded scanAndPlan(const std::filesystem::path& p) {
  Loaded l;
  auto s = dicom::scanInputs({p}, {});
  EXPECT_TRUE(s) << (s ? "" : s.error().toString());
  if (!s) return l;
  l.scan = std::move(s.value());
  l.skipped = l.scan.skipped;
  l.plans = dicom::planVolumes(l.scan, &l.skipped);
  return l;
}

inline Volume load(const Loaded& l, std::size_t plan = 0) {
  auto v = dicom::loadVolume(l.scan, l.plans.at(plan));
  EXPECT_TRUE(v) << (v ? "" : v.error().toString());
  return v ? std::move(v.value()) : Volume{};
}

/// Largest |value - ramp(position)| over voxels whose value is not `padding`.
inline double maxRampError(const Volume& v, double offset = 0.0, double padding = NAN) {
  double worst = 0.0;
  const auto& g = v.geometry();
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        const double val = v.scalarAt(i, j, k);
        if (!std::isnan(padding) && val == padding) continue;
        const double expect = ramp(g.ijkToLps({double(i), double(j), double(k)})) + offset;
        worst = std::max(worst, std::fabs(val - expect));
      }
  return worst;
}

}  // namespace lumen::test
