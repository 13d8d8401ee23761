// The engine against MONAI's documented behaviour: Spacingd's grid, the indices the
// network saw, AsDiscrete's threshold, 2D models' plane, KeepLargestConnectedComponent.
#include <gtest/gtest.h>

#include <torch/script.h>
#include <torch/torch.h>

#include "ModelsTestSupport.h"
#include "Pipeline.h"
#include "lumen/models/Inference.h"

using namespace lumen;
using namespace lumen::models;
using test::bundle;
using test::cpu;

// Spacingd exactly as MONAI (non-integer factors on every axis): size round((n - 1) old /
// new + 1) per axis, spacing exactly pixdim, the grid anchored at the first voxel centre
// (after Orientationd RAS, which flips an LPS volume's first two axes).
TEST(Inference, ModelGridFollowsMonaisSpacing) {
  LUMEN_REQUIRE_TEST_MODELS();
  const Vec3 pixdim{1.37, 0.83, 2.21};
  for (const auto& [size, spacing] : std::vector<std::pair<Size3, Vec3>>{{{61, 47, 23}, {0.9, 1.1, 1.0}},
                                                                        {{40, 52, 17}, {0.3125, 0.3125, 0.7}},
                                                                        {{33, 33, 9}, {2.5, 0.45, 3.3}}}) {
    ImageGeometry g;
    g.size = size;
    g.spacingMm = spacing;
    g.originLps = {12.5, -40.0, 7.25};
    const Volume in = test::rampVolume(g);
    auto r = runInference(bundle("monai_probabilities"), in, cpu());
    ASSERT_TRUE(r) << r.error().toString();
    for (int a = 0; a < 3; ++a) {
      const double n = static_cast<double>(size[static_cast<std::size_t>(a)]);
      const auto expect = static_cast<std::size_t>(std::nearbyint((n - 1) * spacing[a] / pixdim[a] + 1));
      EXPECT_EQ(r->modelGridSize[static_cast<std::size_t>(a)], expect) << "axis " << a;
      double norm = 0;
      for (int row = 0; row < 3; ++row) norm += r->modelGridAffine[row * 4 + a] * r->modelGridAffine[row * 4 + a];
      EXPECT_DOUBLE_EQ(std::sqrt(norm), pixdim[a]) << "axis " << a;
    }
    // RAS: +x is the first voxel of the flipped L axis, i.e. input voxel (n0 - 1, n1 - 1, 0).
    const Vec3 first = lpsToRas(g.ijkToLps({double(size[0] - 1), double(size[1] - 1), 0.0}));
    EXPECT_NEAR(r->modelGridAffine[3], first.x, 1e-9);
    EXPECT_NEAR(r->modelGridAffine[7], first.y, 1e-9);
    EXPECT_NEAR(r->modelGridAffine[11], first.z, 1e-9);
    EXPECT_TRUE(sameGrid(r->output.geometry(), g));
  }
}

// The orientation test a consistently wrong convention cannot pass: a network whose output
// is its own array index along one axis. Put back on the input grid, the model grid's RAS
// affine must turn the three indices into each voxel's own RAS position (wherever the voxel
// lies inside the model grid; beyond its last voxel MONAI's border padding clamps).
TEST(Inference, IndicesTheNetworkSawMapToEachVoxelsOwnPosition) {
  LUMEN_REQUIRE_TEST_MODELS();
  for (bool flip : {false, true}) {
    ImageGeometry g = test::obliqueGeometry({26, 21, 13}, {0.9, 1.2, 2.6}, flip);
    const Volume in = test::rampVolume(g);
    std::array<Volume, 3> idx;
    std::array<double, 16> A{};
    std::array<std::size_t, 3> m{};
    for (int a = 0; a < 3; ++a) {
      auto r = runInference(bundle("ras_index" + std::to_string(a)), in, cpu());
      ASSERT_TRUE(r) << r.error().toString();
      idx[static_cast<std::size_t>(a)] = std::move(r->output);
      A = r->modelGridAffine;
      m = r->modelGridSize;
    }
    const Mat3 M = Mat3::fromColumns({A[0], A[4], A[8]}, {A[1], A[5], A[9]}, {A[2], A[6], A[10]});
    const Vec3 t{A[3], A[7], A[11]};
    Mat3 Minv;
    ASSERT_TRUE(M.inverse(Minv));
    std::size_t inside = 0;
    double worst = 0;
    for (std::size_t k = 0; k < g.size[2]; ++k)
      for (std::size_t j = 0; j < g.size[1]; ++j)
        for (std::size_t i = 0; i < g.size[0]; ++i) {
          const Vec3 ras = lpsToRas(g.ijkToLps({double(i), double(j), double(k)}));
          const Vec3 q = Minv * (ras - t);
          bool within = true;
          for (int a = 0; a < 3; ++a) within = within && q[a] >= -1e-6 && q[a] <= double(m[static_cast<std::size_t>(a)] - 1) + 1e-6;
          if (!within) continue;
          ++inside;
          const std::size_t v = in.linearIndex(i, j, k);
          const Vec3 seen{idx[0].data<float>()[v], idx[1].data<float>()[v], idx[2].data<float>()[v]};
          worst = std::max(worst, (M * seen + t - ras).norm());
        }
    EXPECT_GT(inside, in.voxelCount() / 2);
    EXPECT_LT(worst, 1e-3) << (flip ? "flipped" : "oblique") << ": mm between where the network saw a voxel and where it is";
  }
}

TEST(Inference, AThresholdKeepsEveryChannel) {
  LUMEN_REQUIRE_TEST_MODELS();
  ImageGeometry g;
  g.size = {24, 20, 10};
  g.spacingMm = {1.0, 1.0, 2.0};
  const Volume in = test::rampVolume(g);
  auto r = runInference(bundle("multilabel_threshold"), in, cpu());
  ASSERT_TRUE(r) << r.error().toString();
  ASSERT_EQ(r->channelMasks.size(), 3u);
  // Each mask: sigmoid(channel) >= 0.5 of the network's own output, voxel for voxel.
  auto net = torch::jit::load((test::testModels("multilabel_threshold") / "models" / "model.ts").string());
  torch::NoGradGuard ng;
  torch::Tensor x = torch::from_blob(const_cast<std::byte*>(in.bytes()), {10, 20, 24}, torch::kFloat32).permute({2, 1, 0});
  x = ((x.clamp(-200, 300) + 200) / 500 * 2 - 1).unsqueeze(0).unsqueeze(0);
  const torch::Tensor y = torch::sigmoid(net.forward({x}).toTensor())[0] >= 0.5;  // [3, X, Y, Z]
  std::size_t overlap = 0;
  for (int c = 0; c < 3; ++c) {
    const torch::Tensor got = torch::from_blob(const_cast<std::byte*>(r->channelMasks[static_cast<std::size_t>(c)].bytes()),
                                               {10, 20, 24}, torch::kUInt8).permute({2, 1, 0});
    EXPECT_TRUE(torch::equal(got.to(torch::kBool), y[c])) << "channel " << c;
  }
  overlap = (y[0] & y[2]).sum().item<std::int64_t>();
  EXPECT_GT(overlap, 0u);  // the channels overlap: one label map could not hold them
  EXPECT_EQ(r->labelNames.at(1), "mean");
  EXPECT_EQ(r->labelNames.at(3), "flat");
}

TEST(Inference, TwoDimensionalModelsReadTheirTrainingPlane) {
  LUMEN_REQUIRE_TEST_MODELS();
  // A coronal series (slices along P): the axial model reads its axial planes.
  ImageGeometry g;
  g.size = {30, 12, 22};  // i: L, j: S (rows head to feet), k: P
  g.spacingMm = {0.8, 2.0, 1.5};
  g.direction = Mat3::fromColumns({1, 0, 0}, {0, 0, -1}, {0, 1, 0});
  const Volume in = test::rampVolume(g);
  auto r = runInference(bundle("classifier2d_any_size"), in, cpu());
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_EQ(r->sliceProbabilities.size(), 12u);  // the axial planes, not the 22 coronal slices
  const auto logged = std::any_of(r->log.begin(), r->log.end(), [](const std::string& l) { return l.find("reformatted") != std::string::npos; });
  EXPECT_TRUE(logged);
  auto seg = runInference(bundle("pointwise2d"), in, cpu());
  ASSERT_TRUE(seg) << seg.error().toString();
  EXPECT_TRUE(sameGrid(seg->output.geometry(), g));
  // An axial version of the same voxels gives the same labels.
  auto noplane = runInference(bundle("noplane2d"), in, cpu());
  ASSERT_FALSE(noplane);
  EXPECT_NE(noplane.error().toString().find("\"plane\""), std::string::npos) << noplane.error().toString();
  // 45 degrees from any patient plane: refused, not guessed.
  ImageGeometry oblique = g;
  const double c = std::cos(M_PI / 4), s = std::sin(M_PI / 4);
  oblique.direction = Mat3::fromColumns({1, 0, 0}, {0, c, s}, {0, -s, c});
  auto refused = runInference(bundle("pointwise2d"), test::rampVolume(oblique), cpu());
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("degrees from the axial plane"), std::string::npos) << refused.error().message;
}

TEST(Inference, KeepLargestConnectedComponentFollowsMonaisOptions) {
  // Label 1: a 3-voxel bar and a 2-voxel bar touching only at a corner; label 2: one voxel.
  torch::Tensor labels = torch::zeros({6, 6, 3}, torch::kInt32);
  for (int x = 0; x < 3; ++x) labels[x][0][0] = 1;
  labels[3][1][0] = 1;
  labels[4][1][0] = 1;
  labels[0][5][2] = 2;
  const auto run = [&](bool independent, int connectivity, int count) {
    torch::Tensor l = labels.clone();
    pipeline::keepLargestComponents(l, KeepLargestComponentT{{}, independent, connectivity, count});
    return l;
  };
  // Full connectivity (MONAI's default): the corner joins the bars, one component of 5.
  EXPECT_EQ(run(true, 0, 1).eq(1).sum().item<int>(), 5);
  // Faces only: the 2-voxel bar goes.
  EXPECT_EQ(run(true, 1, 1).eq(1).sum().item<int>(), 3);
  // Two components kept: nothing goes.
  EXPECT_EQ(run(true, 1, 2).eq(1).sum().item<int>(), 5);
  // Not independent: labels 1 and 2 as one foreground; the single voxel of 2 is a small
  // component of the union and goes, the 3-bar stays.
  torch::Tensor u = run(false, 1, 1);
  EXPECT_EQ(u.eq(2).sum().item<int>(), 0);
  EXPECT_EQ(u.eq(1).sum().item<int>(), 3);
  // Independent: label 2's only component stays.
  EXPECT_EQ(run(true, 1, 1).eq(2).sum().item<int>(), 1);
}
