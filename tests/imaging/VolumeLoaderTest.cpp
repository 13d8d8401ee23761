#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>

#include "Corpus.h"

using namespace lumen;
using namespace lumen::dicom;
namespace fs = std::filesystem;

// Every voxel of the ramp phantom must hold ramp() of its own LPS position: a single
// misplaced slice, flipped axis or wrong spacing shows up as an error of many units.
class RampGeometry : public ::testing::TestWithParam<const char*> {};

TEST_P(RampGeometry, EveryVoxelSitsWhereItsGeometrySays) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus(std::string("ramp/") + GetParam()));
  ASSERT_FALSE(l.plans.empty());
  for (std::size_t i = 0; i < l.plans.size(); ++i) {
    const auto& p = l.plans[i];
    if (p.info.splitLabel.find("localizer") != std::string::npos) continue;
    Volume v = test::load(l, i);
    ASSERT_FALSE(v.empty());
    // Echo / time point n holds ramp + 100 (n - 1).
    double offset = 0;
    if (p.info.splitLabel.find("echo 2") != std::string::npos || p.info.splitLabel.find("time 2") != std::string::npos)
      offset = 100;
    if (p.info.splitLabel.find("time 3") != std::string::npos) offset = 200;
    // Linear interpolation of rounded samples is exact to within one unit; a stack left
    // unresampled because it drifts by less than half a voxel (0.28 mm here, 3 units/mm in
    // y) is off by that drift.
    const double tol = p.resampled || std::string(GetParam()) == "drift" ? 1.0 : 0.0;
    EXPECT_LE(test::maxRampError(v, offset, p.paddingValue), tol) << GetParam() << " volume " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, RampGeometry,
                         ::testing::Values("axial-shuffled", "missing", "nonuniform", "tilt", "oblique", "sagittal",
                                           "two-stacks", "two-orientations", "localizer", "echoes", "time",
                                           "duplicates", "acquisition-per-slice", "drift", "mixed-encoding"),
                         [](const auto& param) {
                           std::string n = param.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

// Through physical positions: every tilted frame lands whole in the corrected volume. Each
// output slice holds its frame shifted in-plane; bilinear sampling between the frame's pixel
// centres gives at least (rows - 1) x columns voxels of it (a fractional shift leaves the
// grid row beyond one edge outside the frame), each equal to the ramp at its position. The
// old grid kept the first frame's field of view and cut up to 5 rows of the last frames.
TEST(VolumeLoader, TiltCorrectionKeepsEveryFrameWhole) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("ramp/tilt"));
  ASSERT_EQ(l.plans.size(), 1u);
  const auto& plan = l.plans[0];
  Volume v = test::load(l);
  const auto& g = v.geometry();
  ASSERT_EQ(g.size[2], 20u);
  for (std::size_t k = 0; k < g.size[2]; ++k) {
    std::size_t inside = 0;
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i)
        if (v.scalarAt(i, j, k) != plan.paddingValue) ++inside;
    EXPECT_GE(inside, (plan.frameRows - 1) * plan.frameColumns) << "slice " << k;
    EXPECT_LE(inside, plan.frameRows * plan.frameColumns) << "slice " << k;
  }
  EXPECT_LE(test::maxRampError(v, 0.0, plan.paddingValue), 1.0);
}

TEST(VolumeLoader, EnhancedMultiFrameEqualsTheRamp) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("enhanced"));
  ASSERT_EQ(l.plans.size(), 1u);
  Volume v = test::load(l);
  EXPECT_EQ(v.pixelType(), PixelType::Int16);
  EXPECT_EQ(v.size()[2], 12u);
  EXPECT_EQ(test::maxRampError(v), 0.0);
}

namespace {
Volume loadFile(const fs::path& p) {
  auto l = test::scanAndPlan(p);
  EXPECT_EQ(l.plans.size(), 1u) << p;
  if (l.plans.size() != 1) return Volume{};
  return test::load(l);
}
}  // namespace

TEST(VolumeLoader, EveryLosslessTransferSyntaxDecodesBitExactly) {
  LUMEN_REQUIRE_CORPUS();
  Volume ref = loadFile(test::corpus("transfer/explicit-le.dcm"));
  ASSERT_FALSE(ref.empty());
  std::ifstream names(test::corpus("transfer/LOSSLESS"));
  std::string name;
  int checked = 0;
  while (std::getline(names, name)) {
    if (name.empty()) continue;
    Volume v = loadFile(test::corpus("transfer/" + name + ".dcm"));
    ASSERT_FALSE(v.empty()) << name;
    ASSERT_EQ(v.pixelType(), ref.pixelType()) << name;
    EXPECT_EQ(0, std::memcmp(v.bytes(), ref.bytes(), ref.byteSize())) << name << " differs from the original";
    ++checked;
  }
  EXPECT_GE(checked, 9);
}

TEST(VolumeLoader, LossyTransferSyntaxesStayClose) {
  LUMEN_REQUIRE_CORPUS();
  Volume ref = loadFile(test::corpus("transfer/explicit-le.dcm"));
  for (const char* name : {"jpeg-extended", "jpegls-near", "j2k-lossy"}) {
    Volume v = loadFile(test::corpus(std::string("transfer/") + name + ".dcm"));
    ASSERT_FALSE(v.empty()) << name;
    double sum = 0;
    for (std::size_t i = 0; i < v.voxelCount(); ++i)
      sum += std::fabs(double(v.data<std::int16_t>()[i]) - ref.data<std::int16_t>()[i]);
    EXPECT_LT(sum / double(v.voxelCount()), 20.0) << name << ": mean absolute difference in HU";
  }
}

TEST(VolumeLoader, SeriesMixingTransferSyntaxesEqualsTheOriginal) {
  LUMEN_REQUIRE_CORPUS();
  auto mixed = test::scanAndPlan(test::corpus("mixed-series"));
  auto orig = test::scanAndPlan(test::sampleCt());
  ASSERT_EQ(mixed.plans.size(), 1u);
  EXPECT_GE(mixed.plans[0].info.transferSyntaxes.size(), 8u);
  Volume a = test::load(mixed), b = test::load(orig);
  ASSERT_EQ(a.byteSize(), b.byteSize());
  EXPECT_TRUE(sameGrid(a.geometry(), b.geometry()));
  EXPECT_EQ(0, std::memcmp(a.bytes(), b.bytes(), a.byteSize()));
}

TEST(VolumeLoader, RealCtIsInHounsfieldUnits) {
  auto l = test::scanAndPlan(test::sampleCt());
  Volume v = test::load(l);
  ASSERT_EQ(v.pixelType(), PixelType::Int16);
  int lo = 32767, hi = -32768;
  for (std::size_t i = 0; i < v.voxelCount(); ++i) {
    lo = std::min<int>(lo, v.data<std::int16_t>()[i]);
    hi = std::max<int>(hi, v.data<std::int16_t>()[i]);
  }
  EXPECT_GE(lo, -1024);  // air after rescale, nothing below
  EXPECT_GT(hi, 1000);   // bone
  // Corner voxel outside the head is air.
  EXPECT_LT(v.scalarAt(2, 2, 0), -900);
}

TEST(VolumeLoader, FullRealSeriesLoadsWhenPresent) {
  if (!test::haveFullCt()) GTEST_SKIP() << "full 163-slice CT not found at " << test::fullCt() << " (optional)";
  auto l = test::scanAndPlan(test::fullCt());
  ASSERT_EQ(l.plans.size(), 1u);
  Volume v = test::load(l);
  EXPECT_EQ(v.size()[2], 163u);
  EXPECT_NEAR(v.geometry().spacingMm.z, 0.7, 1e-3);
}

TEST(VolumeLoader, PhotometricInterpretations) {
  LUMEN_REQUIRE_CORPUS();
  Volume mono2 = loadFile(test::corpus("photometric/mono2.dcm"));
  Volume mono1 = loadFile(test::corpus("photometric/mono1.dcm"));
  Volume highbit = loadFile(test::corpus("photometric/highbit.dcm"));
  ASSERT_FALSE(mono2.empty());
  ASSERT_EQ(mono1.pixelType(), mono2.pixelType());
  EXPECT_EQ(0, std::memcmp(mono1.bytes(), mono2.bytes(), mono2.byteSize())) << "MONOCHROME1 must be inverted";
  EXPECT_EQ(0, std::memcmp(highbit.bytes(), mono2.bytes(), mono2.byteSize())) << "stored bits must be extracted";
  // The window of the MONOCHROME1 image is mirrored with the values.
  auto l1 = test::scanAndPlan(test::corpus("photometric/mono1.dcm"));
  ASSERT_EQ(l1.plans[0].info.windows.size(), 1u);
  EXPECT_DOUBLE_EQ(l1.plans[0].info.windows[0].center, 4095 - 1000);

  Volume pal = loadFile(test::corpus("photometric/palette.dcm"));
  Volume inter = loadFile(test::corpus("photometric/rgb-interleaved.dcm"));
  Volume planar = loadFile(test::corpus("photometric/rgb-planar.dcm"));
  ASSERT_EQ(pal.pixelType(), PixelType::RGB8);
  ASSERT_EQ(inter.pixelType(), PixelType::RGB8);
  EXPECT_EQ(0, std::memcmp(pal.bytes(), inter.bytes(), inter.byteSize())) << "palette lookup";
  EXPECT_EQ(0, std::memcmp(planar.bytes(), inter.bytes(), inter.byteSize())) << "planar configuration";
  const Rgb8 c = inter.data<Rgb8>()[7];
  EXPECT_EQ(c.r, 7);
  EXPECT_EQ(c.g, 248);
  EXPECT_EQ(c.b, 3);
}

TEST(VolumeLoader, CineFramesInOrder) {
  LUMEN_REQUIRE_CORPUS();
  Volume v = loadFile(test::corpus("cine/XA_CINE.dcm"));
  ASSERT_EQ(v.pixelType(), PixelType::UInt8);
  for (std::size_t f = 0; f < 5; ++f) EXPECT_EQ(v.scalarAt(5, 5, f), 10.0 * double(f + 1));
}

TEST(VolumeLoader, BadFilesDoNotStopTheGoodOnes) {
  LUMEN_REQUIRE_CORPUS();
  auto l = test::scanAndPlan(test::corpus("bad"));
  ASSERT_EQ(l.plans.size(), 1u) << "only good.dcm is an image";
  EXPECT_GE(l.skipped.size(), 17u);
  Volume v = test::load(l);
  EXPECT_EQ(v.size()[0], 512u);
}

TEST(VolumeLoader, ReportsProgressAndSlicesAsTheyArrive) {
  auto l = test::scanAndPlan(test::sampleCt());
  std::mutex m;
  std::vector<double> progress;
  std::set<std::size_t> slices;
  std::size_t first = SIZE_MAX;
  LoadOptions o;
  o.threads = 1;
  o.onSliceReady = [&](std::size_t k) {
    std::lock_guard<std::mutex> lock(m);
    if (first == SIZE_MAX) first = k;
    slices.insert(k);
  };
  auto v = loadVolume(l.scan, l.plans[0], o, Progress([&](double f, std::string_view) {
                        std::lock_guard<std::mutex> lock(m);
                        progress.push_back(f);
                      }));
  ASSERT_TRUE(v);
  EXPECT_EQ(slices.size(), 32u);
  EXPECT_EQ(first, 16u) << "the middle slice comes first";
  ASSERT_FALSE(progress.empty());
  EXPECT_DOUBLE_EQ(progress.back(), 1.0);
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
}

TEST(VolumeLoader, CancelStopsLoading) {
  auto l = test::scanAndPlan(test::sampleCt());
  CancelToken cancel;
  std::atomic<int> done{0};
  LoadOptions o;
  o.threads = 1;
  o.onSliceReady = [&](std::size_t) {
    if (++done == 3) cancel.cancel();
  };
  auto v = loadVolume(l.scan, l.plans[0], o, {}, cancel);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, ErrorCode::Cancelled);
  EXPECT_LT(done.load(), 32);
}

TEST(VolumeLoader, RefusesVolumesAboveTheMemoryLimit) {
  auto l = test::scanAndPlan(test::sampleCt());
  LoadOptions o;
  o.memoryLimitBytes = 1 << 20;
  auto v = loadVolume(l.scan, l.plans[0], o);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, ErrorCode::TooLarge);
  EXPECT_NE(v.error().message.find("512x512x32"), std::string::npos) << v.error().message;
}

TEST(VolumeLoader, ScanIsCancellable) {
  CancelToken cancel;
  cancel.cancel();
  auto s = scanInputs({test::sampleCt()}, {}, {}, cancel);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::Cancelled);
}

TEST(VolumeLoader, PydicomCorpusFilesLoad) {
  LUMEN_REQUIRE_CORPUS();
  // Encodings not produced by our own tools: big endian RGB, deflate, RLE colour,
  // JPEG colour with YBR, JPEG 2000 (GDCM fallback), 32-bit RT dose with scaling.
  for (const char* f : {"ExplVR_BigEnd.dcm", "image_dfl.dcm", "SC_rgb_rle.dcm", "SC_rgb_rle_16bit.dcm",
                        "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_ybr_full_422_uncompressed.dcm",
                        "JPEG2000.dcm", "MR_small_jp2klossless.dcm", "rtdose.dcm", "rtdose_rle.dcm", "CT_small.dcm"}) {
    auto l = test::scanAndPlan(test::corpus(std::string("pydicom/") + f));
    ASSERT_EQ(l.plans.size(), 1u) << f;
    auto v = loadVolume(l.scan, l.plans[0]);
    EXPECT_TRUE(v) << f << ": " << (v ? "" : v.error().toString());
  }
  // RGB encodings of the same picture agree.
  Volume raw = loadFile(test::corpus("pydicom/SC_rgb_rle.dcm"));
  Volume wide = loadFile(test::corpus("pydicom/SC_rgb_rle_16bit.dcm"));
  ASSERT_EQ(raw.byteSize(), wide.byteSize());
  EXPECT_EQ(0, std::memcmp(raw.bytes(), wide.bytes(), raw.byteSize()));
}
