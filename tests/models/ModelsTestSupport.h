#pragma once
// Shared helpers of the models/ tests (which build with LibTorch alone).

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "lumen/core/Volume.h"
#include "lumen/models/Inference.h"

namespace lumen::test {

inline std::filesystem::path testModels(const std::string& rel = {}) {
  const std::filesystem::path root = std::filesystem::path(LUMEN_TEST_WORK_DIR) / "models";
  return rel.empty() ? root : root / rel;
}

#define LUMEN_REQUIRE_TEST_MODELS()                                                                  \
  do {                                                                                               \
    if (!std::filesystem::exists(::lumen::test::testModels("COMPLETE")))                             \
      GTEST_FAIL() << "test models missing: run the models_setup test (ctest builds them first)";   \
  } while (0)

/// A test bundle by name (a failed load fails the test and gives an empty bundle).
inline models::Bundle bundle(const std::string& name) {
  auto b = models::loadBundle(testModels(name));
  EXPECT_TRUE(b) << (b ? "" : b.error().toString());
  return b ? std::move(b.value()) : models::Bundle{};
}

/// The tests' own fixtures are trusted for their runs; trust itself is tested in
/// InferenceTest.
inline models::InferenceOptions cpu() {
  models::InferenceOptions o;
  o.device = "cpu";
  o.threads = 2;
  o.trustThisModel = true;
  return o;
}

/// A volume whose voxels hold a linear function of their LPS position (exact under any
/// linear interpolation, so resampling there and back must give it back).
inline Volume rampVolume(const ImageGeometry& g) {
  auto v = Volume::allocate(PixelType::Float32, g);
  float* d = v->data<float>();
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        const Vec3 p = g.ijkToLps({double(i), double(j), double(k)});
        d[v->linearIndex(i, j, k)] = static_cast<float>(2 * p.x - 3 * p.y + 4 * p.z + 10);
      }
  return std::move(v.value());
}

inline ImageGeometry obliqueGeometry(Size3 size, Vec3 spacing, bool flip) {
  ImageGeometry g;
  g.size = size;
  g.spacingMm = spacing;
  g.originLps = {-20, 15, 40};
  const double a = 0.35, b = 0.2;
  Mat3 d = orthonormalized(Mat3::fromColumns({std::cos(a), std::sin(a), 0.1}, {-std::sin(a) * std::cos(b), std::cos(a) * std::cos(b), std::sin(b)},
                                             {0, 0, 1}));
  if (flip) {
    d.setColumn(0, -d.column(0));
    d.setColumn(2, -d.column(2));
  }
  g.direction = d;
  return g;
}

}  // namespace lumen::test
