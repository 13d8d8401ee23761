#include <gtest/gtest.h>

#include "lumen/core/Volume.h"

using namespace lumen;

TEST(Volume, AllocateCarriesGeometryAndType) {
  ImageGeometry g;
  g.size = {3, 4, 5};
  g.spacingMm = {1, 2, 3};
  auto v = Volume::zeros(PixelType::Int16, g);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->byteSize(), 3u * 4 * 5 * 2);
  EXPECT_EQ(v->sliceByteSize(), 3u * 4 * 2);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v->bytes()) % 64, 0u);
  v->data<std::int16_t>()[v->linearIndex(2, 3, 4)] = -1000;
  EXPECT_DOUBLE_EQ(v->scalarAt(2, 3, 4), -1000);
  EXPECT_EQ(v->slice<std::int16_t>(4) + 2 + 3 * 3, &v->data<std::int16_t>()[v->linearIndex(2, 3, 4)]);
  EXPECT_THROW(v->data<float>(), std::logic_error);
}

TEST(Volume, CloneIsADeepCopy) {
  ImageGeometry g;
  g.size = {2, 2, 2};
  auto v = Volume::zeros(PixelType::Float32, g);
  ASSERT_TRUE(v);
  Volume c = v->clone();
  c.data<float>()[0] = 5.f;
  EXPECT_EQ(v->data<float>()[0], 0.f);
  EXPECT_EQ(c.geometry().size, g.size);
}

TEST(Volume, ConvertToRoundsAndClampsIntoIntegerTypes) {
  ImageGeometry g;
  g.size = {5, 1, 1};
  g.spacingMm = {0.5, 0.5, 2};
  auto v = Volume::allocate(PixelType::Float32, g);
  ASSERT_TRUE(v);
  const float in[5] = {-1000.4f, 12.5f, -0.6f, 40000.f, -40000.f};
  std::copy(in, in + 5, v->data<float>());
  auto i16 = v->convertTo(PixelType::Int16);
  ASSERT_TRUE(i16);
  EXPECT_TRUE(sameGrid(i16->geometry(), g));
  const std::int16_t* d = i16->data<std::int16_t>();
  EXPECT_EQ(d[0], -1000);
  EXPECT_EQ(d[1], 13);  // half away from zero
  EXPECT_EQ(d[2], -1);
  EXPECT_EQ(d[3], 32767);
  EXPECT_EQ(d[4], -32768);
  auto u8 = i16->convertTo(PixelType::UInt8);
  ASSERT_TRUE(u8);
  EXPECT_EQ(u8->data<std::uint8_t>()[1], 13);
  EXPECT_EQ(u8->data<std::uint8_t>()[0], 0);
  auto back = i16->convertTo(PixelType::Float32);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->data<float>()[0], -1000.f);
  auto rgb = Volume::zeros(PixelType::RGB8, g);
  EXPECT_FALSE(rgb->convertTo(PixelType::Int16));
}

TEST(Volume, HugeAllocationFailsWithAMessageInsteadOfThrowing) {
  ImageGeometry g;
  g.size = {65535, 65535, 65535};
  auto v = Volume::allocate(PixelType::Float32, g);
  ASSERT_FALSE(v);
  EXPECT_TRUE(v.error().code == ErrorCode::OutOfMemory || v.error().code == ErrorCode::TooLarge);
  g.size = {1u << 31, 1u << 31, 1u << 31};
  auto w = Volume::allocate(PixelType::Float32, g);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::TooLarge);
}

TEST(Volume, RgbLuminanceAndWrap) {
  ImageGeometry g;
  g.size = {1, 1, 1};
  auto keep = std::make_shared<Rgb8>(Rgb8{255, 255, 255});
  Volume v = Volume::wrap(PixelType::RGB8, g, keep.get(), keep);
  EXPECT_NEAR(v.scalarAt(0, 0, 0), 255.0, 1e-9);
  EXPECT_EQ(keep.use_count(), 2);
}

TEST(Volume, SetGeometryMustKeepSize) {
  ImageGeometry g;
  g.size = {2, 2, 2};
  auto v = Volume::zeros(PixelType::UInt8, g);
  ImageGeometry h = g;
  h.originLps = {1, 2, 3};
  v->setGeometry(h);
  EXPECT_DOUBLE_EQ(v->geometry().originLps.y, 2);
  h.size = {3, 2, 2};
  EXPECT_THROW(v->setGeometry(h), std::invalid_argument);
}

TEST(Volume, AMovedFromVolumeIsEmpty) {
  ImageGeometry g;
  g.size = {4, 3, 2};
  auto v = Volume::zeros(PixelType::Int16, g);
  ASSERT_TRUE(v);
  Volume a = std::move(*v);
  EXPECT_TRUE(v->empty());
  EXPECT_EQ(v->voxelCount(), 0u);
  Volume b;
  b = std::move(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.voxelCount(), 0u);
  EXPECT_FALSE(b.empty());
  EXPECT_EQ(b.voxelCount(), 24u);
}
