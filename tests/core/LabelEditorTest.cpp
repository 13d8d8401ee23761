#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "lumen/core/LabelEditor.h"

using namespace lumen;

namespace {

ImageGeometry grid(std::size_t nx = 64, std::size_t ny = 56, std::size_t nz = 40) {
  ImageGeometry g;
  g.size = {nx, ny, nz};
  g.spacingMm = {0.7, 0.9, 1.6};
  g.originLps = {-10.0, 4.0, -30.0};
  return g;
}

std::shared_ptr<Volume> labelsOn(const ImageGeometry& g) { return *LabelEditor::emptyLabelsFor(*Volume::zeros(PixelType::Int16, g)); }

std::size_t countOf(const Volume& v, int label) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < v.voxelCount(); ++i) n += v.data<std::uint8_t>()[i] == label;
  return n;
}

std::vector<std::uint8_t> copyOf(const Volume& v) {
  return {v.data<std::uint8_t>(), v.data<std::uint8_t>() + v.voxelCount()};
}

bool equals(const Volume& v, const std::vector<std::uint8_t>& c) {
  return std::memcmp(v.data<std::uint8_t>(), c.data(), c.size()) == 0;
}

// Voxel centres within r of c, counted the slow way.
std::size_t inSphere(const ImageGeometry& g, const Vec3& c, double r) {
  std::size_t n = 0;
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i)
        n += (g.ijkToLps({double(i), double(j), double(k)}) - c).norm() <= r;
  return n;
}

}  // namespace

TEST(LabelEditor, ASphereBrushPaintsTheVoxelsInsideIt) {
  const auto g = grid();
  auto labels = labelsOn(g);
  LabelEditor ed(labels);
  const Vec3 c = g.ijkToLps({30.3, 20.6, 17.2});
  const auto change = ed.paint({10.0, true}, c, 3);
  const std::size_t expected = inSphere(g, c, 5.0);
  EXPECT_EQ(countOf(*labels, 3), expected);
  EXPECT_EQ(change.voxels, expected);
  // About (4/3) pi r^3 / voxel volume.
  EXPECT_NEAR(double(expected), 4.0 / 3 * M_PI * 125 / (0.7 * 0.9 * 1.6), 0.06 * double(expected));
  // A disc one slice thick in an axial plane through a voxel centre: one slice only.
  Brush disc{10.0, false, {0, 0, 1}, 1.6};
  const Vec3 d = g.ijkToLps({10, 10, 5});
  ed.paint(disc, d, 4);
  std::size_t n = 0, expectedDisc = 0;
  for (std::size_t j = 0; j < g.size[1]; ++j)
    for (std::size_t i = 0; i < g.size[0]; ++i) {
      expectedDisc += (g.ijkToLps({double(i), double(j), 5}) - d).norm() <= 5.0;
      n += labels->data<std::uint8_t>()[labels->linearIndex(i, j, 5)] == 4;
    }
  EXPECT_EQ(n, expectedDisc);
  EXPECT_EQ(countOf(*labels, 4), expectedDisc);
}

TEST(LabelEditor, UndoAndRedoAreVoxelExactAndAStrokeIsOneStep) {
  const auto g = grid();
  auto labels = labelsOn(g);
  LabelEditor ed(labels);
  ed.paint({8.0, true}, g.ijkToLps({20, 20, 20}), 1);
  const auto afterFirst = copyOf(*labels);
  ed.beginStep("Paint");
  for (int s = 0; s < 30; ++s) ed.paint({6.0, true}, g.ijkToLps({10.0 + s, 25, 18}), 2);
  ed.erase({4.0, true}, g.ijkToLps({20, 20, 20}), 1);  // part of the stroke too
  const auto stroke = ed.endStep();
  EXPECT_GT(stroke.voxels, 100u);
  EXPECT_EQ(ed.undoSteps(), 2u);
  const auto afterStroke = copyOf(*labels);
  ed.undo();
  EXPECT_TRUE(equals(*labels, afterFirst));
  ed.redo();
  EXPECT_TRUE(equals(*labels, afterStroke));
  ed.undo();
  ed.undo();
  EXPECT_EQ(countOf(*labels, 0), labels->voxelCount());
  EXPECT_FALSE(ed.canUndo());
  ed.redo();
  EXPECT_TRUE(equals(*labels, afterFirst));
  // A new edit drops what could be redone.
  ed.paint({4.0, true}, g.ijkToLps({40, 40, 30}), 5);
  EXPECT_FALSE(ed.canRedo());
  // An edit that changes nothing is no step.
  const auto steps = ed.undoSteps();
  ed.paint({4.0, true}, g.ijkToLps({40, 40, 30}), 5);
  EXPECT_EQ(ed.undoSteps(), steps);
}

TEST(LabelEditor, HistoryKeepsChangedBlocksOnlyAndIsBounded) {
  const auto g = grid(256, 256, 64);
  auto labels = labelsOn(g);
  LabelEditor ed(labels, 64u << 10);
  for (int s = 0; s < 100; ++s) ed.paint({10.0, true}, g.ijkToLps({20.0 + s * 2, 128, 32}), 1);
  // Run-length coded blocks: far less than a copy of the volume per step.
  EXPECT_LE(ed.historyBytes(), 64u << 10);
  EXPECT_LT(ed.undoSteps(), 100u);
  EXPECT_GT(ed.undoSteps(), 5u);
}

TEST(LabelEditor, IntensityLimitsThresholdAndOverwrite) {
  const auto g = grid();
  auto image = Volume::allocate(PixelType::Int16, g);
  for (std::size_t i = 0; i < image->voxelCount(); ++i) image->data<std::int16_t>()[i] = static_cast<std::int16_t>(i % 200);
  auto labels = labelsOn(g);
  LabelEditor ed(labels);
  const Vec3 c = g.ijkToLps({32, 28, 20});
  ed.paint({12.0, true}, c, 1, &*image, {50, 99});
  std::size_t expected = 0;
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) {
        const std::size_t l = labels->linearIndex(i, j, k);
        const auto v = image->data<std::int16_t>()[l];
        expected += (g.ijkToLps({double(i), double(j), double(k)}) - c).norm() <= 6.0 && v >= 50 && v <= 99;
      }
  EXPECT_EQ(countOf(*labels, 1), expected);
  // Threshold without overwrite leaves label 1 alone.
  ed.threshold(*image, {0, 99}, 2, nullptr, false);
  EXPECT_EQ(countOf(*labels, 1), expected);
  std::size_t low = 0;
  for (std::size_t i = 0; i < image->voxelCount(); ++i) low += image->data<std::int16_t>()[i] <= 99;
  EXPECT_EQ(countOf(*labels, 2), low - expected);
  // Relabel merges, erase of one label leaves the others.
  ed.relabel(1, 2);
  EXPECT_EQ(countOf(*labels, 2), low);
}

TEST(LabelEditor, FillHolesIn3dAndPerSlice) {
  const auto g = grid(40, 40, 40);
  auto labels = labelsOn(g);
  LabelEditor ed(labels);
  // A closed box shell around a cavity, and an open tube along k (a hole in each slice only).
  auto* d = labels->data<std::uint8_t>();
  for (std::size_t k = 5; k <= 15; ++k)
    for (std::size_t j = 5; j <= 15; ++j)
      for (std::size_t i = 5; i <= 15; ++i)
        if (i == 5 || i == 15 || j == 5 || j == 15 || k == 5 || k == 15) d[labels->linearIndex(i, j, k)] = 1;
  for (std::size_t k = 0; k < 40; ++k)
    for (std::size_t j = 22; j <= 30; ++j)
      for (std::size_t i = 22; i <= 30; ++i)
        if (i == 22 || i == 30 || j == 22 || j == 30) d[labels->linearIndex(i, j, k)] = 1;
  const std::size_t before = countOf(*labels, 1);
  ed.fillHoles(1);
  EXPECT_EQ(countOf(*labels, 1), before + 9 * 9 * 9);  // the cavity, not the tube
  ed.fillHoles(1, 2);
  EXPECT_EQ(countOf(*labels, 1), before + 9 * 9 * 9 + 7 * 7 * 40);
  ed.undo();
  ed.undo();
  EXPECT_EQ(countOf(*labels, 1), before);
}

TEST(LabelEditor, IslandsAndLogicalOperations) {
  const auto g = grid(30, 30, 30);
  auto labels = labelsOn(g);
  LabelEditor ed(labels);
  auto* d = labels->data<std::uint8_t>();
  auto cube = [&](std::size_t o, std::size_t n, std::uint8_t v) {
    for (std::size_t k = o; k < o + n; ++k)
      for (std::size_t j = o; j < o + n; ++j)
        for (std::size_t i = o; i < o + n; ++i) d[labels->linearIndex(i, j, k)] = v;
  };
  cube(2, 3, 1);    // 27
  cube(10, 2, 1);   // 8
  cube(20, 5, 1);   // 125
  d[labels->linearIndex(0, 29, 29)] = 1;  // 1
  ed.removeSmallIslands(1, 10);
  EXPECT_EQ(countOf(*labels, 1), 27u + 125u);
  ed.keepLargestIsland(1);
  EXPECT_EQ(countOf(*labels, 1), 125u);
  // A mask: union adds it over background, intersect keeps the overlap, subtract removes it.
  auto mask = Volume::zeros(PixelType::Int16, g);
  for (std::size_t k = 22; k < 28; ++k)
    for (std::size_t j = 0; j < 30; ++j)
      for (std::size_t i = 0; i < 30; ++i) mask->data<std::int16_t>()[mask->linearIndex(i, j, k)] = 7;
  ed.combine(1, LabelEditor::LogicalOp::Intersect, *mask, 7);
  EXPECT_EQ(countOf(*labels, 1), 25u * 3u);  // k 22..24 of the cube
  ed.combine(1, LabelEditor::LogicalOp::Subtract, *mask, -1);
  EXPECT_EQ(countOf(*labels, 1), 0u);
  ed.combine(1, LabelEditor::LogicalOp::Union, *mask, 7);
  EXPECT_EQ(countOf(*labels, 1), 30u * 30u * 6u);
  IndexBox keep;
  keep.lo = {0, 0, 0};
  keep.hi = {9, 9, 29};
  ed.clearOutside(keep, -1);
  EXPECT_EQ(countOf(*labels, 1), 100u * 6u);
  EXPECT_EQ(labels->size()[0], 30u);  // the grid is never cropped
}

TEST(LabelEditor, MeasuresVolumeIntensityAndSurface) {
  const auto g = grid(20, 20, 20);
  auto labels = labelsOn(g);
  auto image = Volume::zeros(PixelType::Int16, g);
  auto* d = labels->data<std::uint8_t>();
  for (std::size_t k = 2; k < 6; ++k)      // 4
    for (std::size_t j = 3; j < 8; ++j)    // 5
      for (std::size_t i = 1; i < 4; ++i) {  // 3
        d[labels->linearIndex(i, j, k)] = 9;
        image->data<std::int16_t>()[labels->linearIndex(i, j, k)] = static_cast<std::int16_t>(i == 1 ? 10 : 40);
      }
  const auto m = measureLabels(*labels, &*image);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].label, 9);
  EXPECT_EQ(m[0].voxels, 60u);
  EXPECT_NEAR(m[0].volumeMl, 60 * 0.7 * 0.9 * 1.6 / 1000, 1e-12);
  EXPECT_NEAR(m[0].mean, 30.0, 1e-12);
  EXPECT_NEAR(m[0].sd, std::sqrt((20 * 400.0 + 40 * 100.0) / 59), 1e-9);
  const double a = 3 * 0.7, b = 5 * 0.9, c = 4 * 1.6;
  EXPECT_NEAR(m[0].surfaceMm2, 2 * (a * b + b * c + a * c), 1e-9);
}

TEST(LabelEditor, OnlyIntegerLabelsUpTo255AreEditable) {
  const auto g = grid(4, 4, 4);
  auto v = Volume::zeros(PixelType::Float32, g);
  v->data<float>()[3] = 2.0f;
  auto ok = LabelEditor::toEditable(*v);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)->pixelType(), PixelType::UInt8);
  EXPECT_EQ((*ok)->data<std::uint8_t>()[3], 2);
  v->data<float>()[5] = 1.5f;
  EXPECT_FALSE(LabelEditor::toEditable(*v).ok());
  auto w = Volume::zeros(PixelType::UInt16, g);
  w->data<std::uint16_t>()[0] = 300;
  EXPECT_FALSE(LabelEditor::toEditable(*w).ok());
}

TEST(LabelEditor, BrushAtTheCornerOfAnObliqueGridStaysInsideAndUndoes) {
  ImageGeometry g;
  g.size = {21, 19, 17};  // partial 16^3 blocks on every axis
  g.spacingMm = {0.9, 1.1, 2.0};
  g.originLps = {5, -7, 11};
  const double c = std::cos(0.5), s = std::sin(0.5);
  g.direction = Mat3::fromColumns(Vec3{c, s, 0}, Vec3{-s * 0.8, c * 0.8, 0.6}, Vec3{s * 0.6, -c * 0.6, 0.8});
  auto labels = labelsOn(g);
  LabelEditor ed(labels);
  const auto empty = copyOf(*labels);
  for (const Vec3& ijk : {Vec3{0, 0, 0}, Vec3{20, 18, 16}, Vec3{20, 0, 16}}) {
    const Vec3 centre = g.ijkToLps(ijk) + Vec3{0.3, -0.2, 0.1};
    const auto before = countOf(*labels, 6);
    ed.paint({9.0, true}, centre, 6);
    std::size_t inside = 0;
    for (std::size_t k = 0; k < g.size[2]; ++k)
      for (std::size_t j = 0; j < g.size[1]; ++j)
        for (std::size_t i = 0; i < g.size[0]; ++i) {
          const auto v = labels->data<std::uint8_t>()[labels->linearIndex(i, j, k)];
          inside += v == 6 && (g.ijkToLps({double(i), double(j), double(k)}) - centre).norm() <= 4.5;
        }
    EXPECT_GE(countOf(*labels, 6), before);
    EXPECT_EQ(inside, inSphere(g, centre, 4.5));  // every voxel of the ball, clipped to the grid
  }
  while (ed.canUndo()) ed.undo();
  EXPECT_TRUE(equals(*labels, empty));
}
