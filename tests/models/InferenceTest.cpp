#include <cmath>
#include <gtest/gtest.h>

#include <algorithm>

#include <torch/script.h>
#include <torch/torch.h>

#include "ModelsTestSupport.h"
#include "lumen/models/Inference.h"
#include "lumen/core/Sha256.h"
#include "Pipeline.h"

#include <c10/core/CPUAllocator.h>
#include <fstream>

using namespace lumen;
using namespace lumen::models;

using test::bundle;
using test::cpu;

namespace {
double maxDiff(const Volume& a, const Volume& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.voxelCount(); ++i) m = std::max(m, double(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
  return m;
}
// Voxels of grid g that lie inside the model grid (RAS affine A, size n) short of its last
// voxel: MONAI's Spacing makes a grid whose last voxel may stop short of the input's last
// one, or pass it (then it holds the input's border value), by up to half a voxel. Beyond
// that, results come from the border (padding "border"), also in MONAI.
std::vector<char> insideModelGrid(const ImageGeometry& g, const std::array<double, 16>& A, const std::array<std::size_t, 3>& n) {
  const Mat3 M = Mat3::fromColumns({A[0], A[4], A[8]}, {A[1], A[5], A[9]}, {A[2], A[6], A[10]});
  Mat3 inv;
  std::vector<char> in(g.voxelCount(), 0);
  if (!M.inverse(inv)) return in;
  const Vec3 t{A[3], A[7], A[11]};
  std::size_t v = 0;
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i, ++v) {
        const Vec3 q = inv * (lpsToRas(g.ijkToLps({double(i), double(j), double(k)})) - t);
        bool ok = true;
        for (int a = 0; a < 3; ++a) ok = ok && q[a] >= -1e-6 && q[a] <= double(n[static_cast<std::size_t>(a)] - 2) + 1e-6;
        in[v] = ok;
      }
  return in;
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
  // Linear interpolation of a linear function is exact: only float rounding remains, inside
  // the model grid (MONAI's border padding beyond it).
  const auto inside = insideModelGrid(g, r->modelGridAffine, r->modelGridSize);
  double worst = 0;
  std::size_t n = 0;
  for (std::size_t v = 0; v < in.voxelCount(); ++v)
    if (inside[v]) {
      ++n;
      worst = std::max(worst, double(std::fabs(r->output.data<float>()[v] - in.data<float>()[v])));
    }
  EXPECT_GT(n, in.voxelCount() / 2) << c.name;
  EXPECT_LT(worst, 0.05) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Geometry, OutputGrid,
                         ::testing::Values(GridCase{"axial", {30, 26, 18}, {1.0, 1.0, 1.0}, false},
                                           GridCase{"oblique", {30, 26, 18}, {1.0, 1.0, 1.0}, false},
                                           GridCase{"anisotropic", {34, 20, 12}, {0.7, 1.6, 3.1}, false},
                                           GridCase{"flipped", {22, 28, 16}, {1.2, 0.8, 2.5}, true}),
                         [](const auto& p) { return std::string(p.param.name); });

// Asked for float16 on the CPU, the engine does not run in float32 instead: it refuses.
TEST(Inference, ReducedPrecisionOnTheCpuIsRefusedNotIgnored) {
  LUMEN_REQUIRE_TEST_MODELS();
  for (auto precision : {Precision::Float16, Precision::BFloat16}) {
    InferenceOptions o = cpu();
    o.precision = precision;
    auto engine = Engine::load(bundle("conv3d"), o);
    ASSERT_FALSE(engine);
    EXPECT_EQ(engine.error().code, ErrorCode::Unsupported);
    EXPECT_NE(engine.error().message.find(precision == Precision::Float16 ? "float16" : "bfloat16"), std::string::npos)
        << engine.error().message;
    EXPECT_NE(engine.error().message.find("CUDA only"), std::string::npos) << engine.error().message;
  }
}

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

TEST(Inference, UncertaintyIsTheNormalisedEntropyOfTheClassProbabilities) {
  // Voxel 0: three equal logits (uniform: 1); voxel 1: one class far ahead (about 0);
  // voxel 2: logits (1, 0, -1), whose entropy is written out below.
  torch::Tensor y = torch::zeros({1, 3, 3, 1, 1});
  y[0][0][1][0][0] = 20.0;
  y[0][0][2][0][0] = 1.0;
  y[0][2][2][0][0] = -1.0;
  const double e = std::exp(1.0), z = e + 1.0 + 1.0 / e;
  const double p[3] = {e / z, 1.0 / z, 1.0 / (e * z)};
  double h2 = 0;
  for (double q : p) h2 -= q * std::log(q);
  h2 /= std::log(3.0);
  for (auto scale : {pipeline::OutputScale::Logits, pipeline::OutputScale::Softmax}) {
    const torch::Tensor in = scale == pipeline::OutputScale::Softmax ? torch::softmax(y, 1) : y;
    const torch::Tensor h = pipeline::voxelEntropy(in, scale);
    ASSERT_TRUE(h.defined());
    ASSERT_EQ(h.sizes(), (std::vector<std::int64_t>{1, 1, 3, 1, 1}));
    EXPECT_NEAR(h[0][0][0][0][0].item<double>(), 1.0, 1e-5);
    EXPECT_NEAR(h[0][0][1][0][0].item<double>(), 0.0, 1e-5);
    EXPECT_NEAR(h[0][0][2][0][0].item<double>(), h2, 1e-5);
  }
  // Sigmoid outputs: binary entropy, averaged over channels.
  torch::Tensor q = torch::full({1, 2, 1, 1, 1}, 0.5);
  q[0][1][0][0][0] = 0.9;
  const double hb = -(0.9 * std::log(0.9) + 0.1 * std::log(0.1)) / std::log(2.0);
  EXPECT_NEAR(pipeline::voxelEntropy(q, pipeline::OutputScale::Sigmoid).item<double>(), (1.0 + hb) / 2, 1e-5);
  // One channel of logits has no probability to read.
  EXPECT_FALSE(pipeline::voxelEntropy(torch::zeros({1, 1, 2, 2, 2}), pipeline::OutputScale::Logits).defined());
}

TEST(Inference, SegmentationGivesItsUncertaintyOnTheInputGridAndPerLabel) {
  LUMEN_REQUIRE_TEST_MODELS();
  ImageGeometry g = test::obliqueGeometry({33, 29, 21}, {1, 1, 1}, false);
  const Volume in = test::rampVolume(g);
  auto r = runInference(bundle("pointwise3d"), in, cpu());
  ASSERT_TRUE(r) << r.error().toString();
  ASSERT_EQ(r->uncertainty.pixelType(), PixelType::Float32);
  EXPECT_TRUE(sameGrid(r->uncertainty.geometry(), g));
  // The reference: the entropy of the softmax of the whole-volume forward, as written.
  auto m = torch::jit::load((test::testModels("pointwise3d") / "models" / "model.ts").string());
  torch::NoGradGuard ng;
  const torch::Tensor x = torch::from_blob(const_cast<std::byte*>(in.bytes()), {21, 29, 33}, torch::kFloat32).unsqueeze(0).unsqueeze(0);
  const torch::Tensor logits = m.forward({x}).toTensor();
  const torch::Tensor prob = torch::softmax(logits, 1);
  const torch::Tensor expect = (-(prob * torch::log(prob.clamp_min(1e-12))).sum(1) / std::log(static_cast<double>(logits.size(1))))[0];
  const torch::Tensor got = torch::from_blob(const_cast<std::byte*>(r->uncertainty.bytes()), {21, 29, 33}, torch::kFloat32);
  EXPECT_LT((expect - got).abs().max().item<double>(), 1e-4);
  // Per label: the mean over that label's voxels.
  const torch::Tensor labels = torch::from_blob(const_cast<std::byte*>(r->output.bytes()), {21, 29, 33}, torch::kUInt8);
  ASSERT_FALSE(r->labelUncertainty.empty());
  for (const auto& [label, mean] : r->labelUncertainty)
    EXPECT_NEAR(mean, got.masked_select(labels == label).mean().item<double>(), 1e-6) << "label " << label;
  // Not asked for: not made.
  auto o = cpu();
  o.uncertainty = false;
  auto without = runInference(bundle("pointwise3d"), in, o);
  ASSERT_TRUE(without);
  EXPECT_TRUE(without->uncertainty.empty());
  EXPECT_TRUE(without->labelUncertainty.empty());
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

// lumen.json "estimate": the network's last column is a measurement (here ln of 100 x the
// slice's SD), reported per slice and for the series (geometric mean), and not a class; a
// series whose estimate lies outside the range the model knows gets no class.
TEST(Inference, AClassifierWithAnEstimateReportsItAndRefusesToGradeOutsideItsRange) {
  LUMEN_REQUIRE_TEST_MODELS();
  ImageGeometry g;
  g.size = {16, 12, 4};
  g.spacingMm = {1.0, 1.0, 2.0};
  const auto checkerboard = [&g](std::vector<float> amplitude) {  // slice k: +-amplitude[k], SD amplitude[k]
    auto v = Volume::allocate(PixelType::Float32, g);
    for (std::size_t k = 0; k < 4; ++k)
      for (std::size_t j = 0; j < 12; ++j)
        for (std::size_t i = 0; i < 16; ++i) v->data<float>()[v->linearIndex(i, j, k)] = ((i + j) % 2 ? 1.0f : -1.0f) * amplitude[k];
    return std::move(v.value());
  };
  auto r = runInference(bundle("grader2d"), checkerboard({0.05f, 0.10f, 0.20f, 0.10f}), cpu());
  ASSERT_TRUE(r) << r.error().toString();
  ASSERT_TRUE(r->estimate);
  EXPECT_EQ(r->estimate->name, "noise SD");
  EXPECT_EQ(r->estimate->unit, "HU");
  EXPECT_NEAR(r->estimate->value, 10.0, 1e-3);  // (5 x 10 x 20 x 10)^(1/4)
  ASSERT_EQ(r->estimate->slices.size(), 4u);
  const double expected[] = {5, 10, 20, 10};
  for (std::size_t z = 0; z < 4; ++z) EXPECT_NEAR(r->estimate->slices[z], expected[z], 1e-3) << "slice " << z;
  ASSERT_EQ(r->probabilities.size(), 3u);  // the classes only: the estimate is no class
  ASSERT_EQ(r->sliceProbabilities[2].size(), 3u);
  // Softmax of the class columns alone: -4 (ln 20 - ln c)^2 for c = 5, 10, 20.
  const double l2 = std::log(2.0);
  EXPECT_NEAR(r->sliceProbabilities[2][2], 1.0 / (1.0 + std::exp(-4 * l2 * l2) + std::exp(-16 * l2 * l2)), 1e-5);
  EXPECT_EQ(r->predictedClass(), 1);
  EXPECT_TRUE(r->notGraded.empty());
  EXPECT_EQ(classificationDetail(*r), "noise SD 10 HU");
  EXPECT_FALSE(r->saliency.empty());  // of the estimate

  // The series' class is the bin of its estimate (class_edges), not the most probable class
  // of its slices' mean probabilities: slices at 5, 5, 20 and 20 average to 10, though the
  // mean probabilities favour "20" (0.44 against 0.43 for "5").
  auto split = runInference(bundle("grader2d"), checkerboard({0.05f, 0.05f, 0.20f, 0.20f}), cpu());
  ASSERT_TRUE(split) << split.error().toString();
  EXPECT_NEAR(split->estimate->value, 10.0, 1e-3);
  EXPECT_EQ(std::max_element(split->probabilities.begin(), split->probabilities.end()) - split->probabilities.begin(), 2);
  EXPECT_EQ(split->predictedClass(), 1);

  for (const auto& [amplitude, words] : {std::pair{0.5f, "(3-30 HU): noise SD about 50 HU"}, std::pair{0.02f, "(3-30 HU): noise SD about 2 HU"}}) {
    auto out = runInference(bundle("grader2d"), checkerboard({amplitude, amplitude, amplitude, amplitude}), cpu());
    ASSERT_TRUE(out) << out.error().toString();
    EXPECT_EQ(out->predictedClass(), -1);
    EXPECT_NEAR(out->estimate->value, amplitude * 100, 1e-2);
    EXPECT_NE(out->notGraded.find("outside the range the model knows"), std::string::npos) << out->notGraded;
    EXPECT_NE(out->notGraded.find(words), std::string::npos) << out->notGraded;
    EXPECT_EQ(classificationDetail(*out).rfind("not graded: outside", 0), 0u) << classificationDetail(*out);
  }
}

// lumen.json estimate.size_reference: at one dose a larger body is noisier, so the classes
// grade each slice's estimate referred to one size (a water-equivalent diameter, AAPM
// Report 220, from the input's HU): ln estimate - slope x (diameter - reference). The raw
// estimate stays what is reported and what the known range checks.
TEST(Inference, AGraderWithASizeReferenceGradesTheEstimateReferredToTheReferenceSize) {
  LUMEN_REQUIRE_TEST_MODELS();
  ImageGeometry g;
  g.size = {64, 64, 3};
  g.spacingMm = {0.8, 0.8, 2.0};
  // Slice k: air, and a water disc of radius radiusMm[k] holding a +-13 HU checkerboard
  // (every slice's noise reads 13 HU); its diameter as AAPM Report 220 defines it.
  const double radiusMm[] = {12.0, 20.0, 23.0};
  auto v = Volume::allocate(PixelType::Float32, g);
  ASSERT_TRUE(v);
  double diameter[3];
  for (std::size_t k = 0; k < 3; ++k) {
    double water = 0;
    for (std::size_t j = 0; j < 64; ++j)
      for (std::size_t i = 0; i < 64; ++i) {
        const double x = (static_cast<double>(i) - 31.5) * 0.8, y = (static_cast<double>(j) - 31.5) * 0.8;
        const bool inside = x * x + y * y <= radiusMm[k] * radiusMm[k];
        const float hu = inside ? ((i + j) % 2 ? 13.0f : -13.0f) : -1000.0f;
        v->data<float>()[v->linearIndex(i, j, k)] = hu;
        if (hu > -500.0f) water += static_cast<double>(hu) / 1000.0 + 1.0;
      }
    diameter[k] = 2 * std::sqrt(water * 0.64 / M_PI);
  }
  auto r = runInference(bundle("grader2d_sized"), *v, cpu());
  ASSERT_TRUE(r) << r.error().toString();
  ASSERT_TRUE(r->estimate && r->estimate->referred);
  const auto& ref = *r->estimate->referred;
  EXPECT_EQ(ref.diameterMm, 40.0);
  EXPECT_NEAR(r->estimate->value, 13.0, 1e-3);  // the raw estimate, as measured
  ASSERT_EQ(ref.slices.size(), 3u);
  ASSERT_EQ(ref.sliceDiametersMm.size(), 3u);
  // The classes' bins in ln: 5, 10, 20 at their centres, edges at sqrt(50) and sqrt(200).
  const std::vector<double> bounds = {std::log(2.5), 0.5 * std::log(50.0), 0.5 * std::log(200.0), std::log(40.0)};
  const auto sigmoid = [](double x) { return 1 / (1 + std::exp(-x)); };
  double lnSum = 0;
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_NEAR(ref.sliceDiametersMm[k], diameter[k], 1e-6) << "slice " << k;
    EXPECT_NEAR(r->estimate->slices[k], 13.0, 1e-3) << "slice " << k;
    const double referred = std::log(13.0) - 0.03 * (diameter[k] - 40.0);
    lnSum += referred;
    EXPECT_NEAR(ref.slices[k], std::exp(referred), 1e-3) << "slice " << k;
    double p[3], sum = 0;
    for (int c = 0; c < 3; ++c) sum += p[c] = sigmoid((bounds[c + 1] - referred) / 0.05) - sigmoid((bounds[c] - referred) / 0.05);
    ASSERT_EQ(r->sliceProbabilities[k].size(), 3u);
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(r->sliceProbabilities[k][c], p[c] / sum, 1e-4) << "slice " << k << " class " << c;
  }
  // 13 HU raw is "10" everywhere; referred, the smallest slice (24 mm) reads 20.9 HU
  // ("20"), the largest (46 mm) 10.8 ("10"), and the series 14.3 HU: "20", where the raw
  // series is "10".
  EXPECT_GT(r->sliceProbabilities[0][2], 0.99);
  EXPECT_GT(r->sliceProbabilities[2][1], 0.99);
  EXPECT_NEAR(ref.value, std::exp(lnSum / 3), 1e-3);
  EXPECT_GT(ref.value, std::sqrt(200.0));
  EXPECT_EQ(r->predictedClass(), 2);
  EXPECT_EQ(classificationDetail(*r), "noise SD 13 HU; " + pipeline::formatValue(ref.value) +
                                          " HU referred to a water-equivalent diameter of 40 mm");

  // With slice_evidence, a slice with no tissue (here the middle one, air) is left out:
  // no probabilities, no referred value, no vote; the others keep their own diameters.
  auto gap = Volume::allocate(PixelType::Float32, g);
  ASSERT_TRUE(gap);
  std::copy(v->data<float>(), v->data<float>() + v->voxelCount(), gap->data<float>());
  for (std::size_t j = 0; j < 64; ++j)
    for (std::size_t i = 0; i < 64; ++i) gap->data<float>()[gap->linearIndex(i, j, 1)] = -1000.0f;
  auto withGap = runInference(bundle("grader2d_sized_evidence"), *gap, cpu());
  ASSERT_TRUE(withGap) << withGap.error().toString();
  const auto& gapRef = *withGap->estimate->referred;
  ASSERT_EQ(gapRef.slices.size(), 3u);
  EXPECT_TRUE(withGap->sliceProbabilities[1].empty());
  EXPECT_TRUE(std::isnan(gapRef.slices[1]));
  EXPECT_EQ(gapRef.sliceDiametersMm[1], 0.0);
  for (std::size_t k : {0u, 2u}) {
    EXPECT_NEAR(gapRef.sliceDiametersMm[k], diameter[k], 1e-6) << "slice " << k;
    EXPECT_NEAR(gapRef.slices[k], ref.slices[k], 1e-4) << "slice " << k;
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(withGap->sliceProbabilities[k][c], r->sliceProbabilities[k][c], 1e-6);
  }
  EXPECT_NEAR(gapRef.value, std::sqrt(ref.slices[0] * ref.slices[2]), 1e-3);

  // The description in lumen.json must be the network's own model: a spread the network
  // does not have is an error, not a quiet regrading.
  auto wrong = runInference(bundle("grader2d_sized_wrong_spread"), *v, cpu());
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().toString().find("class_spread 0.05 do not describe this network"), std::string::npos)
      << wrong.error().toString();
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

// ---- Trust: a bundle is code ------------------------------------------------------------

TEST(Inference, AModelRunsOnlyWhenItsLoadedBytesAreTrusted) {
  LUMEN_REQUIRE_TEST_MODELS();
  namespace fs = std::filesystem;
  const fs::path copy = fs::path(LUMEN_TEST_WORK_DIR) / "trust" / "pointwise3d";
  fs::remove_all(copy.parent_path());
  fs::create_directories(copy.parent_path());
  fs::copy(test::testModels("pointwise3d"), copy, fs::copy_options::recursive);
  auto b = loadBundle(copy);
  ASSERT_TRUE(b) << b.error().toString();
  InferenceOptions o;
  o.device = "cpu";
  auto untrusted = Engine::load(*b, o);
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().code, ErrorCode::NotTrusted);
  o.trustedSha256 = {b->modelSha256};
  auto trusted = Engine::load(*b, o);
  ASSERT_TRUE(trusted) << trusted.error().toString();
  EXPECT_EQ(trusted->sha256(), b->modelSha256);
  // model.ts replaced after the bundle was listed: the old hash no longer opens it, and
  // what is recorded is the hash of the bytes that were loaded.
  fs::copy_file(test::testModels("spleen_like") / "models" / "model.ts", copy / "models" / "model.ts",
                fs::copy_options::overwrite_existing);  // the same network, other weights
  auto changed = Engine::load(*b, o);
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().code, ErrorCode::NotTrusted);
  const std::string newSha = *Sha256::hexOfFile(copy / "models" / "model.ts");
  o.trustedSha256.insert(newSha);
  auto reloaded = Engine::load(*b, o);
  ASSERT_TRUE(reloaded) << reloaded.error().toString();
  EXPECT_EQ(reloaded->sha256(), newSha);
  ImageGeometry g;
  g.size = {20, 20, 20};
  auto r = reloaded->run(test::rampVolume(g));
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_EQ(r->sha256, newSha);
  EXPECT_NE(r->sha256, b->modelSha256);
}

// The CPU memory pool does not swap LibTorch's process-wide allocator around a run: other
// threads of the GUI may be allocating tensors meanwhile.
TEST(Inference, TheCpuAllocatorStaysTheSameDuringAndAfterARun) {
  LUMEN_REQUIRE_TEST_MODELS();
  auto engine = Engine::load(bundle("conv3d"), cpu());
  ASSERT_TRUE(engine) << engine.error().toString();
  c10::Allocator* loaded = c10::GetCPUAllocator();
  std::vector<c10::Allocator*> during;
  ImageGeometry g;
  g.size = {40, 40, 40};
  auto r = engine->run(test::rampVolume(g), Progress([&](double, std::string_view) { during.push_back(c10::GetCPUAllocator()); }));
  ASSERT_TRUE(r) << r.error().toString();
  ASSERT_FALSE(during.empty());
  for (auto* a : during) EXPECT_EQ(a, loaded);
  EXPECT_EQ(c10::GetCPUAllocator(), loaded);
}
