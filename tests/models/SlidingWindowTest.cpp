#include <gtest/gtest.h>

#include <torch/script.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "ModelsTestSupport.h"
#include "lumen/models/SlidingWindow.h"

using namespace lumen;
using namespace lumen::models;

namespace {
torch::jit::Module loadModule(const std::string& bundle) {
  auto m = torch::jit::load((test::testModels(bundle) / "models" / "model.ts").string());
  m.eval();
  return m;
}
Predictor predictorOf(torch::jit::Module& m) {
  return [&m](const torch::Tensor& x) {
    torch::NoGradGuard g;
    return m.forward({x}).toTensor();
  };
}
torch::Tensor readBin(const std::string& name, const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  std::vector<float> data(static_cast<std::size_t>(n));
  std::ifstream in(test::testModels("reference") / (name + ".bin"), std::ios::binary);
  in.read(reinterpret_cast<char*>(data.data()), n * 4);
  EXPECT_TRUE(in.good()) << name;
  return torch::from_blob(data.data(), shape, torch::kFloat32).clone();
}
}  // namespace

TEST(SlidingWindow, WindowPositionsFollowMonai) {
  // 40 voxels, windows of 16, overlap 0.5: interval 8, the last window ends at the border.
  auto s = windowStarts({40, 10, 30}, {16, 10, 16}, 0.5);
  EXPECT_EQ(s[0], (std::vector<std::int64_t>{0, 8, 16, 24}));
  EXPECT_EQ(s[1], (std::vector<std::int64_t>{0}));  // roi == size: one window
  EXPECT_EQ(s[2], (std::vector<std::int64_t>{0, 8, 14}));  // snapped: 16 -> 14
  auto t = windowStarts({100}, {32}, 0.0);
  EXPECT_EQ(t[0], (std::vector<std::int64_t>{0, 32, 64, 68}));
}

TEST(SlidingWindow, GaussianImportanceMap) {
  const auto w = importanceMap({9, 7, 5}, BlendMode::Gaussian, 0.125, torch::kCPU);
  EXPECT_NEAR(w.max().item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(w[4][3][2].item<double>(), 1.0, 1e-6);  // centre
  EXPECT_GE(w.min().item<double>(), 1e-3);
  EXPECT_TRUE(torch::allclose(w, w.flip({0}).flip({1}).flip({2})));  // symmetric
  const auto c = importanceMap({4, 4}, BlendMode::Constant, 0.125, torch::kCPU);
  EXPECT_TRUE(torch::all(c == 1).item<bool>());
}

// A translation-equivariant network: any tiling equals the whole-volume forward pass.
struct Tiling {
  std::vector<std::int64_t> shape;
  std::vector<int> roi;
  double overlap;
  BlendMode mode;
  int batch;
};

// Readable test names ("n1_40x33x27_roi16x16x16_ov50_constant_b4") instead of gtest's byte dump.
std::string describe(const Tiling& t) {
  std::string s = "n" + std::to_string(t.shape[0]) + "_";
  for (std::size_t i = 2; i < t.shape.size(); ++i) s += (i > 2 ? "x" : "") + std::to_string(t.shape[i]);
  s += "_roi";
  for (std::size_t i = 0; i < t.roi.size(); ++i) s += (i ? "x" : "") + std::to_string(t.roi[i]);
  s += "_ov" + std::to_string(static_cast<int>(t.overlap * 100 + 0.5));
  s += t.mode == BlendMode::Gaussian ? "_gaussian" : "_constant";
  s += "_b" + std::to_string(t.batch);
  return s;
}
std::string tilingName(const ::testing::TestParamInfo<Tiling>& info) { return describe(info.param); }
void PrintTo(const Tiling& t, std::ostream* os) { *os << describe(t); }

class EquivariantNet : public ::testing::TestWithParam<Tiling> {};

TEST_P(EquivariantNet, SlidingWindowEqualsWholeForward) {
  LUMEN_REQUIRE_TEST_MODELS();
  const Tiling& t = GetParam();
  auto m = loadModule(t.shape.size() == 5 ? "pointwise3d" : "pointwise2d");
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn(t.shape);
  SlidingWindowParams p;
  p.roiSize = t.roi;
  p.overlap = t.overlap;
  p.mode = t.mode;
  p.swBatchSize = t.batch;
  SlidingWindowReport report;
  auto y = slidingWindowInference(x, p, predictorOf(m), report);
  ASSERT_TRUE(y) << y.error().toString();
  torch::NoGradGuard g;
  const torch::Tensor whole = m.forward({x}).toTensor();
  ASSERT_EQ(y->sizes(), whole.sizes());
  EXPECT_LT((*y - whole).abs().max().item<double>(), 1e-4);  // float sums over many windows
  EXPECT_GE(report.windows, 1);
}

INSTANTIATE_TEST_SUITE_P(
    Tilings, EquivariantNet,
    ::testing::Values(Tiling{{1, 1, 40, 33, 27}, {16, 16, 16}, 0.5, BlendMode::Constant, 4},
                      Tiling{{1, 1, 40, 33, 27}, {16, 12, 20}, 0.25, BlendMode::Gaussian, 3},
                      Tiling{{1, 1, 40, 33, 27}, {16, 16, 16}, 0.0, BlendMode::Constant, 1},
                      Tiling{{1, 1, 40, 33, 27}, {16, 16, 16}, 0.9, BlendMode::Gaussian, 7},
                      Tiling{{1, 1, 9, 7, 5}, {16, 16, 16}, 0.5, BlendMode::Constant, 2},     // smaller than the window
                      Tiling{{1, 1, 30, 7, 20}, {16, 16, 16}, 0.5, BlendMode::Gaussian, 2},   // smaller along one axis
                      Tiling{{2, 1, 25, 19, 21}, {12, 12, 12}, 0.5, BlendMode::Constant, 5},  // two images
                      Tiling{{6, 1, 45, 38}, {20, 20}, 0.5, BlendMode::Gaussian, 8}),        // 2D
    tilingName);

TEST(SlidingWindow, MatchesThePythonReferenceImplementation) {
  LUMEN_REQUIRE_TEST_MODELS();
  std::ifstream f(test::testModels("reference") / "manifest.json");
  const auto manifest = nlohmann::json::parse(f);
  auto m = loadModule("conv3d");
  for (auto it = manifest.begin(); it != manifest.end(); ++it) {
    const auto& c = it.value();
    const torch::Tensor x = readBin(it.key() + "_input", c["input"].get<std::vector<std::int64_t>>());
    const torch::Tensor ref = readBin(it.key() + "_output", c["output"].get<std::vector<std::int64_t>>());
    SlidingWindowParams p;
    p.roiSize = c["roi"].get<std::vector<int>>();
    p.overlap = c["overlap"].get<double>();
    p.mode = c["mode"] == "gaussian" ? BlendMode::Gaussian : BlendMode::Constant;
    p.swBatchSize = c["batch"].get<int>();
    SlidingWindowReport report;
    auto y = slidingWindowInference(x, p, predictorOf(m), report);
    ASSERT_TRUE(y) << y.error().toString();
    ASSERT_EQ(y->sizes(), ref.sizes()) << it.key();
    EXPECT_LT((*y - ref).abs().max().item<double>(), 1e-4) << it.key();
  }
}

// Out of memory on the CPU: a predictor that fails like LibTorch's allocator does. The
// batch is halved (the output is stitched on the host already, on the CPU); the result is
// the one an unconstrained run gives; with no way left, a clear error.
TEST(SlidingWindow, OutOfMemoryBacksOffAndKeepsTheResult) {
  LUMEN_REQUIRE_TEST_MODELS();
  auto m = loadModule("conv3d");
  const torch::Tensor x = torch::randn({1, 1, 30, 30, 30});
  SlidingWindowParams p;
  p.roiSize = {16, 16, 16};
  p.overlap = 0.5;
  p.swBatchSize = 4;
  SlidingWindowReport plainReport;
  auto plain = slidingWindowInference(x, p, predictorOf(m), plainReport);
  ASSERT_TRUE(plain) << plain.error().toString();

  // Too many windows at once: fails for any batch above one.
  Predictor bigBatchesFail = [&m](const torch::Tensor& w) {
    if (w.size(0) > 1) throw c10::Error({__func__, __FILE__, __LINE__}, "DefaultCPUAllocator: not enough memory: you tried to allocate 1 GB");
    torch::NoGradGuard g;
    return m.forward({w}).toTensor();
  };
  SlidingWindowReport a;
  auto y1 = slidingWindowInference(x, p, bigBatchesFail, a);
  ASSERT_TRUE(y1) << y1.error().toString();
  EXPECT_EQ(a.batchSize, 1);
  ASSERT_GE(a.decisions.size(), 2u);
  EXPECT_NE(a.decisions[0].find("window batch reduced to 2"), std::string::npos) << a.decisions[0];
  EXPECT_NE(a.decisions[1].find("window batch reduced to 1"), std::string::npos) << a.decisions[1];
  EXPECT_TRUE(torch::allclose(*y1, *plain, 1e-5, 1e-6));

  // Not even one window: an out-of-memory error, not a crash.
  Predictor neverFits = [](const torch::Tensor&) -> torch::Tensor { throw std::runtime_error("not enough memory"); };
  SlidingWindowReport c;
  auto y3 = slidingWindowInference(x, p, neverFits, c);
  ASSERT_FALSE(y3);
  EXPECT_EQ(y3.error().code, ErrorCode::OutOfMemory);
}

TEST(SlidingWindow, ReportsProgressAndStopsWhenCancelled) {
  LUMEN_REQUIRE_TEST_MODELS();
  auto m = loadModule("conv3d");
  const torch::Tensor x = torch::randn({1, 1, 40, 40, 40});
  SlidingWindowParams p;
  p.roiSize = {16, 16, 16};
  p.overlap = 0.5;
  p.swBatchSize = 2;
  std::vector<double> seen;
  CancelToken cancel;
  SlidingWindowReport r;
  auto y = slidingWindowInference(x, p, predictorOf(m), r, {}, Progress([&](double f, std::string_view) {
                                    seen.push_back(f);
                                    if (seen.size() == 3) cancel.cancel();
                                  }),
                                  cancel);
  ASSERT_FALSE(y);
  EXPECT_EQ(y.error().code, ErrorCode::Cancelled);
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
}

TEST(SlidingWindow, NetworksThatChangeTheWindowAreRefused) {
  const torch::Tensor x = torch::randn({1, 1, 20, 20, 20});
  SlidingWindowParams p;
  p.roiSize = {8, 8, 8};
  SlidingWindowReport r;
  auto shrink = [](const torch::Tensor& t) { return t.narrow(2, 0, 4); };
  auto y = slidingWindowInference(x, p, shrink, r);
  ASSERT_FALSE(y);
  EXPECT_NE(y.error().message.find("changed the window size"), std::string::npos);
  p.roiSize = {8, 8};
  auto z = slidingWindowInference(x, p, shrink, r);
  ASSERT_FALSE(z);
  EXPECT_NE(z.error().message.find("roi_size"), std::string::npos);
}

#include "CpuKernels.h"

TEST(CpuKernels, OneDnnConvolutionsComputeTheSameFunction) {
  torch::manual_seed(5);
  torch::NoGradGuard g;
  for (std::int64_t batch : {1, 3}) {
    const torch::Tensor x = torch::randn({batch, 6, 9, 8, 7});
    const torch::Tensor w = torch::randn({4, 6, 3, 3, 3}), b = torch::randn({4});
    const torch::Tensor ref = at::conv3d(x, w, b, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1);
    EXPECT_LT((fastConv3d(x, w, b, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1) - ref).abs().max().item<double>(), 1e-4);
    const torch::Tensor s2 = at::conv3d(x, w, c10::nullopt, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, 1);
    EXPECT_LT((fastConv3d(x, w, c10::nullopt, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, 1) - s2).abs().max().item<double>(), 1e-4);
    // Transposed, the U-Net up-sampling: Cin 6 -> Cout 5 (packed path) and Cout 17 (eight
    // convolutions), stride 2, kernel 3, with and without bias.
    for (std::int64_t cout : {5, 17})
      for (bool withBias : {true, false}) {
        const torch::Tensor wt = torch::randn({6, cout, 3, 3, 3});
        const c10::optional<torch::Tensor> bt = withBias ? c10::optional<torch::Tensor>(torch::randn({cout})) : c10::nullopt;
        const torch::Tensor up = at::conv_transpose3d(x, wt, bt, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, 1, {1, 1, 1});
        const torch::Tensor got = fastConvTranspose3d(x, wt, bt, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, 1, {1, 1, 1});
        ASSERT_EQ(got.sizes(), up.sizes());
        EXPECT_LT((got - up).abs().max().item<double>(), 1e-4) << "Cout " << cout << (withBias ? " with bias" : "");
      }
    const torch::Tensor wt = torch::randn({6, 5, 3, 3, 3}), bt = torch::randn({5});
    // Other shapes fall back to ATen.
    const torch::Tensor other = at::conv_transpose3d(x, wt, bt, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, 1, {1, 1, 1});
    EXPECT_TRUE(torch::allclose(fastConvTranspose3d(x, wt, bt, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, 1, {1, 1, 1}), other));
  }
}

// oneDNN pads a thin output to 16 channels in its own copy; such convolutions run in slabs
// along depth. Every slab depth, stride, padding and dilation gives the same function, also
// where the padding is wider than the kernel's reach (whole slabs in the padding).
TEST(CpuKernels, ConvolutionInSlabsComputesTheSameFunction) {
  torch::manual_seed(6);
  torch::NoGradGuard g;
  for (std::int64_t batch : {1, 2}) {
    const torch::Tensor x = torch::randn({batch, 3, 11, 9, 8});
    const torch::Tensor b = torch::randn({2});
    for (std::int64_t kernel : {1, 3}) {
      const torch::Tensor w = torch::randn({2, 3, kernel, kernel, kernel});
      for (std::int64_t stride : {1, 2})
        for (std::int64_t pad : {0, 1, 2})
          for (std::int64_t dil : {1, 2})
            for (std::int64_t slab : {1, 2, 3, 100}) {
              const std::vector<std::int64_t> s(3, stride), p(3, pad), d(3, dil);
              const torch::Tensor ref = at::conv3d(x, w, b, s, p, d, 1);
              const torch::Tensor got = conv3dInSlabs(x, w, b, s, p, d, 1, slab);
              const auto what = [&] {
                std::ostringstream m;
                m << "kernel " << kernel << " stride " << stride << " pad " << pad << " dilation " << dil << " slab " << slab;
                return m.str();
              };
              ASSERT_EQ(got.sizes(), ref.sizes()) << what();
              EXPECT_LT((got - ref).abs().max().item<double>(), 1e-4) << what();
            }
    }
  }
  // Large enough for fastConv3d to choose slabs (2 channels padded to 16: 40 MiB): same
  // values as one oneDNN call.
  const torch::Tensor x = torch::randn({1, 2, 40, 128, 128});
  const torch::Tensor w = torch::randn({2, 2, 3, 3, 3}), b = torch::randn({2});
  const torch::Tensor whole = at::mkldnn_convolution(x, w, b, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1);
  EXPECT_LT((fastConv3d(x, w, b, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1) - whole).abs().max().item<double>(), 1e-4);
}

TEST(SlidingWindow, PermutedInputGivesTheSameResult) {
  // Volumes reach the engine as permuted views (z-major memory, x-major tensor); windows
  // are gathered in memory order then transposed.
  LUMEN_REQUIRE_TEST_MODELS();
  auto m = loadModule("pointwise3d");
  torch::manual_seed(8);
  const torch::Tensor memory = torch::randn({1, 1, 27, 33, 40});  // [.., Z, Y, X]
  const torch::Tensor view = memory.permute({0, 1, 4, 3, 2});      // [.., X, Y, Z]
  SlidingWindowParams p;
  p.roiSize = {16, 16, 16};
  p.overlap = 0.25;
  p.swBatchSize = 3;
  SlidingWindowReport r1, r2;
  auto a = slidingWindowInference(view, p, predictorOf(m), r1);
  auto b = slidingWindowInference(view.contiguous(), p, predictorOf(m), r2);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->sizes().slice(2), view.sizes().slice(2));
  EXPECT_TRUE(torch::equal(*a, *b));
}

#include <c10/core/CPUAllocator.h>

#include <unistd.h>

#include <fstream>

#include "CpuMemoryPool.h"

TEST(CpuMemoryPool, RecyclesLargeBlocksDuringARunAndKeepsOneAllocator) {
  installCpuMemoryPool();
  c10::Allocator* installed = c10::GetCPUAllocator();
  torch::Tensor survivor;
  {
    CpuMemoryPoolGuard guard;
    EXPECT_EQ(c10::GetCPUAllocator(), installed);  // caching starts; nothing is swapped
    void* first = nullptr;
    for (int i = 0; i < 5; ++i) {
      torch::Tensor t = torch::full({4, 1024, 1024}, static_cast<float>(i));  // 16 MiB
      EXPECT_EQ(t.sum().item<double>(), 4.0 * 1024 * 1024 * i);  // contents are the tensor's own
      if (i == 0) first = t.data_ptr();
      else EXPECT_EQ(t.data_ptr(), first);  // the same block, recycled
    }
    const auto small = torch::ones({10});  // small blocks bypass the pool
    EXPECT_EQ(small.sum().item<double>(), 10.0);
    // ATen's raw interface (used inside some kernels) pairs with the pool's deleter.
    void* raw = c10::GetCPUAllocator()->raw_allocate(8 << 20);
    ASSERT_NE(raw, nullptr);
    c10::GetCPUAllocator()->raw_deallocate(raw);
    survivor = torch::ones({2, 1024, 1024});  // outlives the guard
    const auto s = guard.stats();
    EXPECT_GE(s.hits, 4u);
    EXPECT_GE(s.peakBytes, std::size_t{16} << 20);
  }
  EXPECT_EQ(c10::GetCPUAllocator(), installed);
  EXPECT_EQ(survivor.sum().item<double>(), 2.0 * 1024 * 1024);
  survivor = torch::Tensor();  // freed after the guard: no crash
  {
    // Outside any run, large blocks are not kept: two allocations in a row get fresh memory.
    torch::Tensor a = torch::zeros({4, 1024, 1024});
    a = torch::Tensor();
    CpuMemoryPoolGuard outer;
    CpuMemoryPoolGuard inner;  // nested and concurrent runs share the cache
    torch::Tensor b = torch::zeros({4, 1024, 1024});
    EXPECT_EQ(outer.stats().hits, 0u);  // nothing was cached from before the run
  }
  EXPECT_EQ(c10::GetCPUAllocator(), installed);
}

// Free ranges are split and merged: memory freed in one size serves requests of another, so
// the pool holds about what is in use at the worst moment, not a block per size.
TEST(CpuMemoryPool, FreeRangesAreSplitAndMergedAndGiveTheirPagesBackAfterTheRun) {
  constexpr std::size_t MiB = std::size_t{1} << 20;
  const auto residentBytes = [] {
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  };
  std::size_t held = 0;
  {
    CpuMemoryPoolGuard guard;
    char* big = nullptr;
    {
      torch::Tensor a = torch::ones({16, 1024, 1024});  // 64 MiB
      big = static_cast<char*>(a.data_ptr());
    }
    {
      // Two 32 MiB blocks fit in the freed 64 MiB range: no new memory.
      torch::Tensor b = torch::full({8, 1024, 1024}, 2.0f), c = torch::full({8, 1024, 1024}, 3.0f);
      EXPECT_EQ(static_cast<char*>(b.data_ptr()), big);
      EXPECT_EQ(static_cast<char*>(c.data_ptr()), big + 32 * MiB);
      EXPECT_EQ(b.sum().item<double>(), 2.0 * 8 * MiB);
      EXPECT_EQ(c.sum().item<double>(), 3.0 * 8 * MiB);
    }
    // Freed, the halves merge again: a 64 MiB request gets the whole range.
    torch::Tensor d = torch::zeros({16, 1024, 1024});
    EXPECT_EQ(static_cast<char*>(d.data_ptr()), big);
    EXPECT_EQ(d.sum().item<double>(), 0.0);
    const auto s = guard.stats();
    EXPECT_EQ(s.misses, 1u);
    EXPECT_EQ(s.hits, 3u);
    EXPECT_EQ(s.peakBytes, 64 * MiB);
    d = torch::Tensor();
    held = residentBytes();
  }
  // The run is over: the 64 MiB it kept resident go back to the system.
  EXPECT_LT(residentBytes() + 48 * MiB, held);
}
