#include <gtest/gtest.h>

#include <algorithm>

#include <torch/script.h>
#include <torch/torch.h>

#include "ModelsTestSupport.h"
#include "lumen/models/Inference.h"

using namespace lumen;
using namespace lumen::models;

namespace {
Bundle bundle(const std::string& name) {
  auto b = loadBundle(test::testModels(name));
  EXPECT_TRUE(b) << (b ? "" : b.error().toString());
  return b ? std::move(b.value()) : Bundle{};
}
InferenceOptions cpu() {
  InferenceOptions o;
  o.device = "cpu";
  o.threads = 2;
  return o;
}
double maxDiff(const Volume& a, const Volume& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.voxelCount(); ++i) m = std::max(m, double(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
  return m;
}
}  // namespace

struct GridCase {
  const char* name;
  Size3 size;
  Vec3 spacing;
  bool flip;
};

class OutputGrid : public ::testing::TestWithParam<GridCase> {};

// An identity network through orientation, resampling and intensity scaling must give the
// input back, on the input's grid, in the input's units.
TEST_P(OutputGrid, IsTheInputGridAndValuesSurviveTheRoundTrip) {
  LUMEN_REQUIRE_TEST_MODELS();
  const auto& c = GetParam();
  ImageGeometry g = test::obliqueGeometry(c.size, c.spacing, c.flip);
  if (std::string(c.name) == "axial") g.direction = Mat3::identity();
  const Volume in = test::rampVolume(g);
  auto r = runInference(bundle("identity3d"), in, cpu());
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_EQ(r->task, Task::Enhancement);
  ASSERT_FALSE(r->output.empty());
  EXPECT_EQ(r->output.geometry().size, g.size);
  EXPECT_TRUE(sameGrid(r->output.geometry(), g, 1e-9));
  EXPECT_EQ(r->output.geometry().direction.m, g.direction.m);
  // Linear interpolation of a linear function is exact: only float rounding remains.
  EXPECT_LT(maxDiff(r->output, in), 0.05) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Geometry, OutputGrid,
                         ::testing::Values(GridCase{"axial", {30, 26, 18}, {1.0, 1.0, 1.0}, false},
                                           GridCase{"oblique", {30, 26, 18}, {1.0, 1.0, 1.0}, false},
                                           GridCase{"anisotropic", {34, 20, 12}, {0.7, 1.6, 3.1}, false},
                                           GridCase{"flipped", {22, 28, 16}, {1.2, 0.8, 2.5}, true}),
                         [](const auto& p) { return std::string(p.param.name); });

TEST(Inference, TwoDimensionalNetworkRunsSliceBySlice) {
  LUMEN_REQUIRE_TEST_MODELS();
  ImageGeometry g;
  g.size = {40, 36, 7};
  g.spacingMm = {0.8, 0.8, 3.0};
  const Volume in = test::rampVolume(g);
  auto r = runInference(bundle("identity2d"), in, cpu());
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_TRUE(sameGrid(r->output.geometry(), g));
  EXPECT_LT(maxDiff(r->output, in), 0.01);  // normalised, then un-normalised
}

TEST(Inference, SegmentationEqualsTheArgmaxOfTheWholeVolumeForward) {
  LUMEN_REQUIRE_TEST_MODELS();
  ImageGeometry g = test::obliqueGeometry({33, 29, 21}, {1, 1, 1}, false);
  const Volume in = test::rampVolume(g);
  auto r = runInference(bundle("pointwise3d"), in, cpu());
  ASSERT_TRUE(r) << r.error().toString();
  ASSERT_EQ(r->output.pixelType(), PixelType::UInt8);
  EXPECT_TRUE(sameGrid(r->output.geometry(), g));
  // The same network on the whole volume, in array order [k, j, i] -> channels last.
  auto m = torch::jit::load((test::testModels("pointwise3d") / "models" / "model.ts").string());
  torch::NoGradGuard ng;
  const torch::Tensor x = torch::from_blob(const_cast<std::byte*>(in.bytes()), {21, 29, 33}, torch::kFloat32).unsqueeze(0).unsqueeze(0);
  const torch::Tensor expect = m.forward({x}).toTensor().argmax(1)[0].to(torch::kUInt8);
  const torch::Tensor got = torch::from_blob(const_cast<std::byte*>(r->output.bytes()), {21, 29, 33}, torch::kUInt8);
  EXPECT_TRUE(torch::equal(expect, got));
  EXPECT_EQ(r->sha256.size(), 64u);
  EXPECT_EQ(r->device, "cpu");
  EXPECT_GT(r->windows, 1);
}

TEST(Inference, TestTimeFlipsKeepAnEquivariantResult) {
  LUMEN_REQUIRE_TEST_MODELS();
  ImageGeometry g;
  g.size = {20, 18, 16};
  const Volume in = test::rampVolume(g);
  auto o = cpu();
  auto plain = runInference(bundle("pointwise3d"), in, o);
  o.testTimeFlips = true;
  auto flipped = runInference(bundle("pointwise3d"), in, o);
  ASSERT_TRUE(plain && flipped);
  EXPECT_EQ(0, std::memcmp(plain->output.bytes(), flipped->output.bytes(), plain->output.byteSize()));
}

TEST(Inference, SpleenStyleBundleRunsEndToEnd) {
  LUMEN_REQUIRE_TEST_MODELS();
  ImageGeometry g = test::obliqueGeometry({48, 44, 20}, {0.8, 0.8, 2.5}, true);
  auto in = Volume::allocate(PixelType::Int16, g);
  for (std::size_t i = 0; i < in->voxelCount(); ++i) in->data<std::int16_t>()[i] = static_cast<std::int16_t>((i * 37) % 400 - 100);
  std::vector<double> progress;
  auto r = runInference(bundle("spleen_like"), *in, cpu(), Progress([&](double f, std::string_view) { progress.push_back(f); }));
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_TRUE(sameGrid(r->output.geometry(), g));
  EXPECT_EQ(r->output.pixelType(), PixelType::UInt8);
  EXPECT_FALSE(progress.empty());
  EXPECT_DOUBLE_EQ(progress.back(), 1.0);
  std::string log;
  for (const auto& l : r->log) log += l + "\n";
  EXPECT_NE(log.find("device: CPU as requested"), std::string::npos) << log;
  EXPECT_NE(log.find("resampled"), std::string::npos) << log;
  EXPECT_NE(log.find("window(s) of 96 96 96"), std::string::npos) << log;
}

TEST(Inference, ClassifierGivesProbabilitiesAndASaliencyMapOnTheInputGrid) {
  LUMEN_REQUIRE_TEST_MODELS();
  ImageGeometry g = test::obliqueGeometry({30, 28, 14}, {0.9, 0.9, 2.0}, false);
  const Volume in = test::rampVolume(g);
  auto r = runInference(bundle("classifier3d"), in, cpu());
  ASSERT_TRUE(r) << r.error().toString();
  ASSERT_EQ(r->probabilities.size(), 3u);
  double sum = 0;
  for (double p : r->probabilities) sum += p;
  EXPECT_NEAR(sum, 1.0, 1e-6);
  EXPECT_EQ(r->classNames[2], "high");
  ASSERT_FALSE(r->saliency.empty());
  EXPECT_TRUE(sameGrid(r->saliency.geometry(), g));
  float lo = 1e9f, hi = -1e9f;
  for (std::size_t i = 0; i < r->saliency.voxelCount(); ++i) {
    lo = std::min(lo, r->saliency.data<float>()[i]);
    hi = std::max(hi, r->saliency.data<float>()[i]);
  }
  EXPECT_GE(lo, 0.0f);
  EXPECT_NEAR(hi, 1.0f, 1e-5);

  auto r2 = runInference(bundle("classifier2d"), in, cpu());
  ASSERT_TRUE(r2) << r2.error().toString();
  EXPECT_EQ(r2->sliceProbabilities.size(), 14u);  // one row per slice
  EXPECT_EQ(r2->probabilities.size(), 2u);
}

TEST(Inference, AnySizeClassifierSeesTheSlicesUnresized) {
  // spatial_shape ["*", "*"]: a globally pooling network gets each slice as it is. The test
  // network's output depends on the slice size only through its mean, so resizing a
  // constant-per-slice ramp would not show: compare with a direct forward pass instead.
  LUMEN_REQUIRE_TEST_MODELS();
  ImageGeometry g;
  g.size = {37, 23, 5};
  g.spacingMm = {0.7, 0.7, 2.0};
  const Volume in = test::rampVolume(g);
  auto r = runInference(bundle("classifier2d_any_size"), in, cpu());
  ASSERT_TRUE(r) << r.error().toString();
  ASSERT_EQ(r->sliceProbabilities.size(), 5u);
  auto net = torch::jit::load((test::testModels("classifier2d_any_size") / "models" / "model.ts").string());
  net.eval();
  torch::NoGradGuard ng;
  const torch::Tensor vol = torch::from_blob(const_cast<std::byte*>(in.bytes()), {5, 23, 37}, torch::kFloat32);
  for (std::int64_t z = 0; z < 5; ++z) {
    const torch::Tensor slice = vol[z].transpose(0, 1).unsqueeze(0).unsqueeze(0);  // [1, 1, X, Y]
    const torch::Tensor p = torch::softmax(net.forward({slice}).toTensor(), 1);
    EXPECT_NEAR(r->sliceProbabilities[static_cast<std::size_t>(z)][1], p[0][1].item<double>(), 1e-5) << "slice " << z;
  }
  EXPECT_TRUE(sameGrid(r->saliency.geometry(), g));
}

// lumen.json slice_evidence: slices without 4 cm^2 of soft tissue (air, a bone edge whose
// ramp crosses the soft-tissue range, a small patch) are not graded and do not vote;
// noise does not un-grade a tissue slice.
TEST(Inference, SlicesWithoutEvidenceAreNotGraded) {
  LUMEN_REQUIRE_TEST_MODELS();
  ImageGeometry g;
  g.size = {48, 40, 6};
  g.spacingMm = {1.0, 1.0, 2.0};
  auto v = Volume::allocate(PixelType::Float32, g);
  ASSERT_TRUE(v);
  std::uint32_t seed = 12345;
  const auto noise = [&seed] {  // uniform in [-1, 1)
    seed = seed * 1664525u + 1013904223u;
    return static_cast<float>(seed >> 8) / 8388608.0f - 1.0f;
  };
  for (std::size_t k = 0; k < 6; ++k)
    for (std::size_t j = 0; j < 40; ++j)
      for (std::size_t i = 0; i < 48; ++i) {
        const bool block = i >= 6 && i < 42 && j >= 8 && j < 34;  // 36 x 26 mm
        const bool patch = i >= 10 && i < 20 && j >= 10 && j < 20;
        float hu = -1000.0f;
        if ((k == 0 || k == 5) && block) hu = 40.0f;
        if (k == 2 && block) hu = 40.0f + 35.0f * noise();  // a noisy low-dose slice
        if (k == 3 && patch) hu = 40.0f;
        if (k == 4) hu = -1000.0f + 2000.0f * std::clamp((static_cast<float>(i) - 14.0f) / 20.0f, 0.0f, 1.0f);
        v->data<float>()[v->linearIndex(i, j, k)] = hu;
      }
  auto r = runInference(bundle("classifier2d_evidence"), *v, cpu());
  ASSERT_TRUE(r) << r.error().toString();
  ASSERT_EQ(r->sliceProbabilities.size(), 6u);
  for (std::size_t z : {1u, 3u, 4u}) EXPECT_TRUE(r->sliceProbabilities[z].empty()) << "slice " << z;
  double mean = 0;
  for (std::size_t z : {0u, 2u, 5u}) {
    ASSERT_EQ(r->sliceProbabilities[z].size(), 2u) << "slice " << z;
    mean += r->sliceProbabilities[z][1] / 3.0;
  }
  EXPECT_NEAR(r->probabilities[1], mean, 1e-9);
  const auto logged = std::any_of(r->log.begin(), r->log.end(), [](const std::string& l) { return l.find("3 of 6 slice(s) not graded") != std::string::npos; });
  EXPECT_TRUE(logged);
  // No saliency on the slices that were not graded.
  const auto sliceMax = [&](std::size_t k) {
    float m = 0;
    for (std::size_t j = 0; j < 40; ++j)
      for (std::size_t i = 0; i < 48; ++i) m = std::max(m, r->saliency.data<float>()[r->saliency.linearIndex(i, j, k)]);
    return m;
  };
  EXPECT_EQ(sliceMax(1), 0.0f);
  EXPECT_EQ(sliceMax(4), 0.0f);
  EXPECT_GT(sliceMax(0) + sliceMax(2) + sliceMax(5), 0.0f);

  // Nothing to grade: a clear error, not a guess.
  for (std::size_t n = 0; n < v->voxelCount(); ++n) v->data<float>()[n] = -1000.0f;
  auto none = runInference(bundle("classifier2d_evidence"), *v, cpu());
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().toString().find("no slice shows enough tissue"), std::string::npos) << none.error().toString();

  auto resampled = runInference(bundle("classifier2d_evidence_resampled"), *v, cpu());
  ASSERT_FALSE(resampled);
  EXPECT_NE(resampled.error().toString().find("slice_evidence needs the input's own slices"), std::string::npos)
      << resampled.error().toString();
}

TEST(Inference, WrongTensorsAreClearErrors) {
  LUMEN_REQUIRE_TEST_MODELS();
  ImageGeometry g;
  g.size = {12, 12, 12};
  const Volume in = test::rampVolume(g);
  auto a = runInference(bundle("wrong_input_channels"), in, cpu());
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("rejected its input"), std::string::npos) << a.error().message;
  auto b = runInference(bundle("wrong_output_channels"), in, cpu());
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("3 channel(s); metadata.json says 2"), std::string::npos) << b.error().message;
  auto rgb = Volume::zeros(PixelType::RGB8, g);
  auto c = runInference(bundle("pointwise3d"), *rgb, cpu());
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("colour"), std::string::npos);
}

TEST(Inference, DevicePolicy) {
  auto a = chooseDevice("auto");
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->reason.empty());
  if (!torch::cuda::is_available()) {
    EXPECT_EQ(a->name, "cpu");
    auto c = chooseDevice("cuda");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message.find("CUDA"), std::string::npos);
  }
  EXPECT_FALSE(chooseDevice("tpu"));
  EXPECT_FALSE(chooseDevice("cuda:x"));
  EXPECT_TRUE(chooseDevice("cpu"));
}

TEST(Inference, CancelledBeforeTheFirstWindow) {
  LUMEN_REQUIRE_TEST_MODELS();
  ImageGeometry g;
  g.size = {40, 40, 40};
  const Volume in = test::rampVolume(g);
  CancelToken cancel;
  cancel.cancel();
  auto r = runInference(bundle("pointwise3d"), in, cpu(), {}, cancel);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::Cancelled);
}
