#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <algorithm>
#include <fstream>

#include "lumen/core/Volume.h"
#include "lumen/imaging/ImageIO.h"

using namespace lumen;
namespace fs = std::filesystem;

namespace {
fs::path workDir() {
  fs::path d = fs::path(LUMEN_TEST_WORK_DIR) / "imageio";
  fs::create_directories(d);
  return d;
}

ImageGeometry obliqueGeometry() {
  ImageGeometry g;
  g.size = {7, 5, 4};
  g.spacingMm = {0.8, 1.2, 2.5};
  g.originLps = {-12.5, 40.25, 300};
  const double a = 0.3;
  g.direction = orthonormalized(Mat3::fromColumns({std::cos(a), std::sin(a), 0}, {-std::sin(a), std::cos(a), 0.2}, {0, 0, 1}));
  return g;
}

template <class T>
Volume ramp(PixelType t, const ImageGeometry& g) {
  auto v = Volume::allocate(t, g);
  EXPECT_TRUE(v);
  T* d = v->template data<T>();
  for (std::size_t i = 0; i < v->voxelCount(); ++i) d[i] = static_cast<T>(static_cast<double>(i % 200) - 50.0 * std::is_signed_v<T>);
  return std::move(v.value());
}

void expectSameGeometry(const ImageGeometry& a, const ImageGeometry& b) {
  EXPECT_EQ(a.size, b.size);
  EXPECT_TRUE(sameGrid(a, b, 1e-4)) << "voxel centres moved";
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(a.spacingMm[i], b.spacingMm[i], 1e-5);
}
}  // namespace

class ImageRoundTrip : public ::testing::TestWithParam<const char*> {};

TEST_P(ImageRoundTrip, PreservesValuesAndGeometry) {
  const ImageGeometry g = obliqueGeometry();
  const fs::path out = workDir() / (std::string("roundtrip") + GetParam());
  for (PixelType t : {PixelType::Int16, PixelType::UInt8, PixelType::UInt16, PixelType::Float32}) {
    Volume v = visitScalarType(t, [&](auto tag) { return ramp<typename decltype(tag)::type>(t, g); });
    ASSERT_TRUE(io::writeImage(v, out));
    auto r = io::readImage(out);
    ASSERT_TRUE(r) << r.error().toString();
    EXPECT_EQ(r->pixelType(), t);
    expectSameGeometry(r->geometry(), g);
    EXPECT_EQ(0, std::memcmp(r->bytes(), v.bytes(), v.byteSize())) << toString(t);
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, ImageRoundTrip, ::testing::Values(".nii", ".nii.gz", ".nrrd"),
                         [](const auto& param) {
                           std::string n = param.param;
                           for (char& c : n)
                             if (c == '.') c = '_';
                           return n;
                         });

TEST(ImageIO, NiftiOnDiskIsRas) {
  ImageGeometry g;
  g.size = {4, 3, 2};
  g.spacingMm = {2, 3, 4};
  g.originLps = {10, 20, 30};
  auto v = Volume::zeros(PixelType::Int16, g);
  const fs::path out = workDir() / "ras.nii";
  ASSERT_TRUE(io::writeImage(*v, out));
  std::ifstream f(out, std::ios::binary);
  char hdr[348];
  f.read(hdr, sizeof hdr);
  float srow[12];
  std::memcpy(srow, hdr + 280, sizeof srow);
  short sformCode;
  std::memcpy(&sformCode, hdr + 254, 2);
  EXPECT_GT(sformCode, 0);
  // LPS (+x = left) is RAS (-x): the first row of the affine is negated.
  EXPECT_FLOAT_EQ(srow[0], -2.0f);
  EXPECT_FLOAT_EQ(srow[3], -10.0f);
  EXPECT_FLOAT_EQ(srow[5], -3.0f);
  EXPECT_FLOAT_EQ(srow[7], -20.0f);
  EXPECT_FLOAT_EQ(srow[10], 4.0f);
  EXPECT_FLOAT_EQ(srow[11], 30.0f);
}

TEST(ImageIO, RgbRoundTrip) {
  ImageGeometry g;
  g.size = {3, 2, 1};
  auto v = Volume::allocate(PixelType::RGB8, g);
  for (std::size_t i = 0; i < 6; ++i)
    v->data<Rgb8>()[i] = {static_cast<std::uint8_t>(i), static_cast<std::uint8_t>(10 * i), static_cast<std::uint8_t>(255 - i)};
  const fs::path out = workDir() / "rgb.nrrd";
  ASSERT_TRUE(io::writeImage(*v, out));
  auto r = io::readImage(out);
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_EQ(r->pixelType(), PixelType::RGB8);
  EXPECT_EQ(0, std::memcmp(r->bytes(), v->bytes(), v->byteSize()));
}

TEST(ImageIO, ErrorsNameTheFile) {
  ImageGeometry g;
  g.size = {2, 2, 2};
  auto v = Volume::zeros(PixelType::UInt8, g);
  auto bad = io::writeImage(*v, workDir() / "x.png");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().toString().find("x.png"), std::string::npos);
  auto noDir = io::writeImage(*v, workDir() / "missing-folder" / "x.nii");
  ASSERT_FALSE(noDir);
  EXPECT_FALSE(fs::exists(workDir() / "missing-folder" / "x.nii"));
  auto missing = io::readImage(workDir() / "does-not-exist.nii");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::NotFound);
  const fs::path garbage = workDir() / "garbage.nii";
  std::ofstream(garbage) << "this is not a nifti file";
  auto g2 = io::readImage(garbage);
  ASSERT_FALSE(g2);
  EXPECT_NE(g2.error().toString().find("garbage.nii"), std::string::npos);
}

TEST(ImageIO, AFailedWriteKeepsTheExistingFile) {
  ImageGeometry g;
  g.size = {2, 2, 2};
  auto v = Volume::zeros(PixelType::UInt8, g);
  const fs::path out = workDir() / "keep.nii";
  ASSERT_TRUE(io::writeImage(*v, out));
  const auto before = fs::file_size(out);
  Volume broken = Volume::wrap(PixelType::UInt8, [] {
    ImageGeometry b;
    b.size = {2, 2, 2};
    b.spacingMm = {0, 1, 1};
    return b;
  }(), v->bytes(), nullptr);
  EXPECT_FALSE(io::writeImage(broken, out));
  EXPECT_EQ(fs::file_size(out), before);
}
TEST(ImageIO, ReadsTheNiftiFileItIsGivenEvenWithASibling) {
  // niftilib, asked for x.nii.gz, reads x.nii when that exists: Lumen must not.
  ImageGeometry g;
  g.size = {7, 5, 4};
  auto v = Volume::allocate(PixelType::Int16, g);
  const fs::path dir = workDir() / "siblings";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::fill_n(v->data<std::int16_t>(), v->voxelCount(), std::int16_t(1));
  ASSERT_TRUE(io::writeImage(*v, dir / "a.nii"));
  std::fill_n(v->data<std::int16_t>(), v->voxelCount(), std::int16_t(2));
  ASSERT_TRUE(io::writeImage(*v, dir / "a.nii.gz"));
  auto gz = io::readImage(dir / "a.nii.gz");
  auto plain = io::readImage(dir / "a.nii");
  ASSERT_TRUE(gz);
  ASSERT_TRUE(plain);
  EXPECT_EQ(gz->scalarAt(0, 0, 0), 2.0);
  EXPECT_EQ(plain->scalarAt(0, 0, 0), 1.0);
}
