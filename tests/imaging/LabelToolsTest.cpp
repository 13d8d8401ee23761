#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "lumen/imaging/LabelTools.h"

using namespace lumen;

namespace {

ImageGeometry grid(std::size_t n = 48) {
  ImageGeometry g;
  g.size = {n, n, n};
  g.spacingMm = {0.8, 0.8, 1.5};
  return g;
}

std::size_t countOf(const Volume& v, int label) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < v.voxelCount(); ++i) n += v.data<std::uint8_t>()[i] == label;
  return n;
}

// Two blobs of 100 (radius 6 mm) in 0, centred at index (12,12,12) and (34,34,34).
Volume blobs(const ImageGeometry& g, double noise = 0) {
  auto v = Volume::allocate(PixelType::Int16, g);
  std::mt19937 rng(7);
  std::normal_distribution<double> n(0, noise > 0 ? noise : 1);
  const Vec3 a = g.ijkToLps({12, 12, 12}), b = g.ijkToLps({34, 34, 34});
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        const Vec3 p = g.ijkToLps({double(i), double(j), double(k)});
        const double base = ((p - a).norm() <= 6 || (p - b).norm() <= 6) ? 100 : 0;
        v->data<std::int16_t>()[v->linearIndex(i, j, k)] = static_cast<std::int16_t>(std::lround(base + (noise > 0 ? n(rng) : 0)));
      }
  return std::move(*v);
}

std::size_t ballVoxels(const ImageGeometry& g, const Vec3& c, double r) {
  std::size_t n = 0;
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) n += (g.ijkToLps({double(i), double(j), double(k)}) - c).norm() <= r;
  return n;
}

}  // namespace

TEST(LabelTools, ConnectedThresholdGrowsOnlyTheClickedBlob) {
  const auto g = grid();
  const Volume image = blobs(g);
  auto labels = *LabelEditor::emptyLabelsFor(image);
  LabelEditor ed(labels);
  auto r = seg::growConnected(ed, image, g.ijkToLps({12, 12, 12}), {50, 150}, 2);
  ASSERT_TRUE(r.ok()) << r.error().toString();
  EXPECT_EQ(countOf(*labels, 2), ballVoxels(g, g.ijkToLps({12, 12, 12}), 6));
  EXPECT_EQ(r->voxels, countOf(*labels, 2));
  ed.undo();
  EXPECT_EQ(countOf(*labels, 2), 0u);
  // A seed whose value is outside the range, or outside the image: said so.
  auto bad = seg::growConnected(ed, image, g.ijkToLps({0, 0, 0}), {50, 150}, 2);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("outside the intensity range"), std::string::npos);
  EXPECT_FALSE(seg::growConnected(ed, image, g.ijkToLps({-5, 0, 0}), {-10, 150}, 2).ok());
}

TEST(LabelTools, ConfidenceConnectedFindsANoisyBlob) {
  const auto g = grid();
  const Volume image = blobs(g, 8.0);
  auto labels = *LabelEditor::emptyLabelsFor(image);
  LabelEditor ed(labels);
  auto r = seg::growConfident(ed, image, g.ijkToLps({12, 12, 12}), 2.5, 3, 1, 1);
  ASSERT_TRUE(r.ok()) << r.error().toString();
  const double expected = static_cast<double>(ballVoxels(g, g.ijkToLps({12, 12, 12}), 6));
  EXPECT_NEAR(static_cast<double>(countOf(*labels, 1)), expected, 0.05 * expected);
}

TEST(LabelTools, InterpolationBetweenTwoDiscsIsACone) {
  ImageGeometry g;
  g.size = {80, 80, 30};
  g.spacingMm = {0.5, 0.5, 2.0};
  auto labels = *LabelEditor::emptyLabelsFor(*Volume::zeros(PixelType::Int16, g));
  LabelEditor ed(labels);
  const Vec3 c1 = g.ijkToLps({40, 40, 5}), c2 = g.ijkToLps({40, 40, 25});
  Brush disc{20.0, false, {0, 0, 1}, 2.0};
  ed.paint(disc, c1, 1);
  disc.diameterMm = 8.0;
  ed.paint(disc, c2, 1);
  const std::size_t drawn = countOf(*labels, 1);
  auto r = seg::interpolateSlices(ed, 1, 2);
  ASSERT_TRUE(r.ok()) << r.error().toString();
  // A truncated cone from r = 10 mm to 4 mm over 40 mm (slices 5..25), ends included.
  const double h = 40.0, r1 = 10, r2 = 4;
  const double frustum = M_PI * h / 3 * (r1 * r1 + r1 * r2 + r2 * r2);
  const double voxel = 0.5 * 0.5 * 2.0;
  // Voxel slabs: the end slices count as half-slab each in the frustum, whole in the voxels.
  const double expected = frustum + (M_PI * r1 * r1 + M_PI * r2 * r2) * 1.0;
  const double got = static_cast<double>(countOf(*labels, 1)) * voxel;
  EXPECT_NEAR(got, expected, 0.05 * expected) << "voxels drawn " << drawn;
  // Every slice in between is filled, the middle one with radius ~7 mm.
  std::size_t mid = 0;
  for (std::size_t j = 0; j < 80; ++j)
    for (std::size_t i = 0; i < 80; ++i) mid += labels->data<std::uint8_t>()[labels->linearIndex(i, j, 15)] == 1;
  EXPECT_NEAR(static_cast<double>(mid) * 0.25, M_PI * 49, 0.06 * M_PI * 49);
  ed.undo();
  EXPECT_EQ(countOf(*labels, 1), drawn);
  // One slice is not enough.
  ed.clearOutside(IndexBox{{0, 0, 0}, {79, 79, 10}}, 1);
  EXPECT_FALSE(seg::interpolateSlices(ed, 1, 2).ok());
}

TEST(LabelTools, SmoothingRemovesASpikeAndFillsAPit) {
  ImageGeometry g;
  g.size = {30, 30, 30};
  auto labels = *LabelEditor::emptyLabelsFor(*Volume::zeros(PixelType::Int16, g));
  LabelEditor ed(labels);
  auto* d = labels->data<std::uint8_t>();
  for (std::size_t k = 8; k < 20; ++k)
    for (std::size_t j = 8; j < 20; ++j)
      for (std::size_t i = 8; i < 20; ++i) d[labels->linearIndex(i, j, k)] = 3;
  d[labels->linearIndex(20, 14, 14)] = 3;  // a spike
  d[labels->linearIndex(19, 13, 13)] = 0;  // a pit on the face
  d[labels->linearIndex(2, 2, 2)] = 4;     // another label, far away: untouched
  auto r = seg::smoothLabel(ed, 3, 1.0);
  ASSERT_TRUE(r.ok()) << r.error().toString();
  EXPECT_EQ(d[labels->linearIndex(20, 14, 14)], 0);
  EXPECT_EQ(d[labels->linearIndex(19, 13, 13)], 3);
  EXPECT_EQ(d[labels->linearIndex(2, 2, 2)], 4);
  EXPECT_EQ(d[labels->linearIndex(14, 14, 14)], 3);
}

#include <filesystem>
#include <fstream>

#include "lumen/imaging/LabelMapIO.h"

TEST(LabelMapIO, LabelsAndTheirDescriptionsRoundTrip) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(LUMEN_TEST_WORK_DIR) / "labelmap-io";
  fs::remove_all(dir);
  fs::create_directories(dir);
  ImageGeometry g;
  g.size = {20, 16, 12};
  g.spacingMm = {0.7, 0.8, 2.5};
  g.originLps = {-12.5, 30.0, 7.0};
  g.direction = Mat3::fromColumns(Vec3{0.8, 0.6, 0}, Vec3{-0.6, 0.8, 0}, Vec3{0, 0, 1});
  auto labels = *LabelEditor::emptyLabelsFor(*Volume::zeros(PixelType::Int16, g));
  for (std::size_t i = 0; i < labels->voxelCount(); ++i) labels->data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i % 3 == 0 ? 7 : i % 5 == 0 ? 200 : 0);
  LabelInfo liver;
  liver.value = 7;
  liver.name = "Liver, \"left\" lobe";
  liver.color = {12, 200, 99};
  liver.opacity = 0.5;
  liver.category = commonLabelCodes()[1].first;
  liver.type = commonLabelCodes()[1].second;
  LabelInfo lesion;
  lesion.value = 200;
  lesion.name = "Lesion";
  lesion.visible = false;
  for (const char* name : {"m.nii.gz", "m.nrrd"}) {
    const fs::path p = dir / name;
    ASSERT_TRUE(io::writeLabelMap(*labels, {liver, lesion}, p));
    EXPECT_TRUE(fs::exists(dir / "m.labels.json"));
    auto back = io::readLabelMap(p);
    ASSERT_TRUE(back.ok()) << back.error().toString();
    ASSERT_TRUE(back->hasSidecar);
    EXPECT_TRUE(sameGrid(back->labels->geometry(), g, 1e-4));
    EXPECT_EQ(std::memcmp(back->labels->bytes(), labels->bytes(), labels->byteSize()), 0);
    ASSERT_EQ(back->infos.size(), 2u);
    EXPECT_EQ(back->infos[0].name, liver.name);
    EXPECT_EQ(back->infos[0].color.g, 200);
    EXPECT_EQ(back->infos[0].opacity, 0.5);
    EXPECT_EQ(back->infos[0].type.meaning, "Liver");
    EXPECT_EQ(back->infos[0].category.value, "91723000");
    EXPECT_FALSE(back->infos[1].visible);
    EXPECT_TRUE(back->infos[1].type.empty());
  }
  // A sidecar with a mistake is an error naming it, not a silent default.
  {
    std::ofstream(dir / "m.labels.json") << R"({"format":"lumen-labels","version":1,"labels":[{"value":7,"colour":[1,2,3]}]})";
  }
  auto bad = io::readLabelMap(dir / "m.nrrd");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().toString().find("unknown key \"colour\""), std::string::npos);
  EXPECT_NE(bad.error().toString().find("m.labels.json"), std::string::npos);
  // A value that would wrap to a valid one in 32 bits is refused.
  EXPECT_FALSE(io::labelInfosFromJson(R"({"format":"lumen-labels","version":1,"labels":[{"value":4294967297}]})", "x").ok());
  EXPECT_FALSE(io::labelInfosFromJson(R"({"format":"lumen-labels","version":1,"labels":[{"value":3,"color":[4294967296,0,0]}]})", "x").ok());
  EXPECT_TRUE(io::labelInfosFromJson(R"({"format":"lumen-labels","version":1,"labels":[{"value":3,"color":[255,0,0]}]})", "x").ok());
}

// core's scanline flood fill against ITK's ConnectedThresholdImageFilter (the reference
// the editor follows): the same voxels on noisy images, several seeds and ranges.
#include <itkConnectedThresholdImageFilter.h>
#include <itkImage.h>

TEST(LabelTools, ConnectedRegionIsItksConnectedThreshold) {
  ImageGeometry g;
  g.size = {37, 29, 23};
  auto image = Volume::allocate(PixelType::Int16, g);
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> u(0, 99);
  for (std::size_t i = 0; i < image->voxelCount(); ++i) image->data<std::int16_t>()[i] = static_cast<std::int16_t>(u(rng));
  using Img = itk::Image<std::int16_t, 3>;
  auto itkImage = Img::New();
  Img::RegionType region;
  for (unsigned a = 0; a < 3; ++a) region.SetSize(a, g.size[a]);
  itkImage->SetRegions(region);
  itkImage->GetPixelContainer()->SetImportPointer(image->data<std::int16_t>(), image->voxelCount(), false);
  int compared = 0;
  for (int trial = 0; trial < 12; ++trial) {
    const std::array<long, 3> seed{u(rng) % 37, u(rng) % 29, u(rng) % 23};
    const int lo = u(rng) % 40, hi = lo + 35 + u(rng) % 30;  // around the percolation threshold
    const double v = image->scalarAt(std::size_t(seed[0]), std::size_t(seed[1]), std::size_t(seed[2]));
    if (v < lo || v > hi) continue;
    auto f = itk::ConnectedThresholdImageFilter<Img, itk::Image<std::uint8_t, 3>>::New();
    f->SetInput(itkImage);
    f->SetLower(static_cast<std::int16_t>(lo));
    f->SetUpper(static_cast<std::int16_t>(hi));
    f->SetReplaceValue(1);
    Img::IndexType idx;
    for (unsigned a = 0; a < 3; ++a) idx[a] = seed[a];
    f->AddSeed(idx);
    f->Update();
    std::vector<std::uint8_t> mask;
    IndexBox box;
    connectedRegion(*image, seed, {double(lo), double(hi)}, mask, box);
    const std::uint8_t* ref = f->GetOutput()->GetBufferPointer();
    std::size_t n = 0, differ = 0;
    for (std::size_t i = 0; i < mask.size(); ++i) {
      n += mask[i];
      differ += (mask[i] != 0) != (ref[i] != 0);
    }
    EXPECT_EQ(differ, 0u) << "trial " << trial << ": " << n << " voxels";
    ++compared;
  }
  EXPECT_GE(compared, 6);
}
