#include <gtest/gtest.h>

#include <cmath>

#include "lumen/core/Measurement.h"

using namespace lumen;

namespace {

constexpr double kPi = 3.14159265358979323846;

// An axial int16 volume with anisotropic voxels, filled by fn(lps).
template <class Fn>
Volume makeVolume(const ImageGeometry& g, Fn fn) {
  auto v = Volume::allocate(PixelType::Int16, g);
  EXPECT_TRUE(v.ok());
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i)
        v->data<std::int16_t>()[v->linearIndex(i, j, k)] = static_cast<std::int16_t>(
            std::lround(fn(g.ijkToLps({static_cast<double>(i), static_cast<double>(j), static_cast<double>(k)}))));
  return std::move(*v);
}

ImageGeometry anisotropic() {
  ImageGeometry g;
  g.size = {64, 48, 20};
  g.spacingMm = {0.6, 0.9, 2.5};
  g.originLps = {-20.0, -15.0, 7.0};
  return g;
}

Measurement shape(MeasurementKind kind, std::vector<Vec3> pts, Vec3 right = {1, 0, 0}, Vec3 up = {0, 1, 0}) {
  Measurement m;
  m.kind = kind;
  m.points = std::move(pts);
  m.right = right;
  m.up = up;
  return m;
}

}  // namespace

TEST(Measurement, DistanceAndAngleArePhysical) {
  const ImageGeometry g = anisotropic();
  const Vec3 a = g.ijkToLps({3, 4, 2}), b = g.ijkToLps({40, 30, 15});
  const auto d = shape(MeasurementKind::Distance, {a, b});
  EXPECT_NEAR(lengthMm(d), std::sqrt(std::pow(37 * 0.6, 2) + std::pow(26 * 0.9, 2) + std::pow(13 * 2.5, 2)), 1e-9);
  EXPECT_EQ(lengthMm(shape(MeasurementKind::Angle, {a, b, a})), 0.0);

  EXPECT_NEAR(angleDeg(shape(MeasurementKind::Angle, {{10, 0, 0}, {0, 0, 0}, {0, 7, 0}})), 90.0, 1e-9);
  EXPECT_NEAR(angleDeg(shape(MeasurementKind::Angle, {{1, 1, 0}, {0, 0, 0}, {3, 0, 0}})), 45.0, 1e-9);
  EXPECT_NEAR(angleDeg(shape(MeasurementKind::Angle, {{-1, 0, 0}, {0, 0, 0}, {5, 0, 0}})), 180.0, 1e-9);
  EXPECT_NEAR(angleDeg(shape(MeasurementKind::Angle, {{1, 0, 0}, {0, 0, 0}, {5, 1e-7, 0}})), 1e-7 / 5 * 180 / kPi, 1e-12);
}

TEST(Measurement, AreasOfEachShapeInAnObliquePlane) {
  const Vec3 right = Vec3{1, 1, 0}.normalized(), up = Vec3{-1, 1, 2}.normalized();
  const Vec3 o{5, -3, 12};
  auto at = [&](double u, double v) { return o + right * u + up * v; };
  EXPECT_NEAR(areaMm2(shape(MeasurementKind::Rectangle, {at(0, 0), at(10, -20)}, right, up)), 200.0, 1e-9);
  EXPECT_NEAR(areaMm2(shape(MeasurementKind::Ellipse, {at(-5, 4), at(5, -16)}, right, up)), kPi * 5 * 10, 1e-9);
  EXPECT_NEAR(areaMm2(shape(MeasurementKind::Polygon, {at(0, 0), at(8, 0), at(8, 6), at(0, 6), at(4, 3)}, right, up)),
              48.0 - 12.0, 1e-9);
  EXPECT_EQ(areaMm2(shape(MeasurementKind::Distance, {at(0, 0), at(1, 1)})), 0.0);
  // The outline closes and lies in the plane.
  const auto m = shape(MeasurementKind::Ellipse, {at(-5, 4), at(5, -16)}, right, up);
  const auto line = outline(m, 40);
  ASSERT_EQ(line.size(), 41u);
  EXPECT_NEAR((line.front() - line.back()).norm(), 0.0, 1e-9);
  EXPECT_TRUE(liesInPlane(m, o + right * 100, right.cross(up), 1e-6));
  EXPECT_FALSE(liesInPlane(m, o + right.cross(up) * 0.5, right.cross(up), 0.4));
}

TEST(Measurement, RoiStatisticsOverTheVoxelsOfASlice) {
  const ImageGeometry g = anisotropic();
  const Vec3 c{-2.0, 3.0, 7.0 + 6 * 2.5};  // slice 6
  // Uniform 40 inside a 12 mm radius disk around c (all slices), 1000 elsewhere.
  const Volume v = makeVolume(g, [&](const Vec3& p) {
    const double dx = p.x - c.x, dy = p.y - c.y;
    return dx * dx + dy * dy <= 144 ? 40.0 : 1000.0;
  });
  const auto ellipse = shape(MeasurementKind::Ellipse, {c + Vec3{-8, -5, 0}, c + Vec3{8, 5, 0}});
  auto st = roiStatistics(ellipse, v);
  ASSERT_TRUE(st.ok()) << st.error().toString();
  EXPECT_TRUE(st->onVoxels);
  EXPECT_NEAR(st->areaMm2, kPi * 8 * 5, 1e-9);
  EXPECT_EQ(st->mean, 40.0);
  EXPECT_EQ(st->sd, 0.0);
  EXPECT_EQ(st->min, 40.0);
  EXPECT_EQ(st->max, 40.0);
  // The voxel count is that of the voxel centres inside, counted independently.
  std::size_t expected = 0;
  for (std::size_t j = 0; j < g.size[1]; ++j)
    for (std::size_t i = 0; i < g.size[0]; ++i) {
      const Vec3 p = g.ijkToLps({static_cast<double>(i), static_cast<double>(j), 6});
      expected += std::pow((p.x - c.x) / 8, 2) + std::pow((p.y - c.y) / 5, 2) <= 1;
    }
  EXPECT_EQ(st->samples, expected);
  // About area / voxel area.
  EXPECT_NEAR(static_cast<double>(expected), kPi * 40 / (0.6 * 0.9), 6);

  // Half in, half out of the disk: two values, their statistics exact.
  const auto rect = shape(MeasurementKind::Rectangle, {c + Vec3{-3, -1, 0}, c + Vec3{20, 1, 0}});
  st = roiStatistics(rect, v);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->min, 40.0);
  EXPECT_EQ(st->max, 1000.0);
  EXPECT_GT(st->sd, 100.0);

  // Outside the image: no samples, NaN values, area still given.
  st = roiStatistics(translated(ellipse, {500, 0, 0}), v);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->samples, 0u);
  EXPECT_TRUE(std::isnan(st->mean));
  EXPECT_NEAR(st->areaMm2, kPi * 40, 1e-9);
}

TEST(Measurement, RoiStatisticsOnAnObliquePlaneSampleTheVolume) {
  const ImageGeometry g = anisotropic();
  // A linear field: the mean over a centred symmetric shape is the value at its centre.
  const Volume v = makeVolume(g, [](const Vec3& p) { return 2 * p.x + 3 * p.y + 5 * p.z; });
  const Vec3 right = Vec3{1, 0, 0.3}.normalized(), up = Vec3{0, 1, 0};
  const Vec3 c{0, 2, 30};
  const auto m = shape(MeasurementKind::Ellipse, {c - right * 6 - up * 4, c + right * 6 + up * 4}, right, up);
  auto st = roiStatistics(m, v);
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(st->onVoxels);
  EXPECT_NEAR(st->mean, 2 * c.x + 3 * c.y + 5 * c.z, 0.5);
  EXPECT_GT(st->samples, 100u);
  // An axial plane between two slices is sampled too, not snapped to a slice.
  const Vec3 between{0, 2, 7.0 + 2.5 * 4.5};
  st = roiStatistics(shape(MeasurementKind::Rectangle, {between - Vec3{5, 5, 0}, between + Vec3{5, 5, 0}}), v);
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(st->onVoxels);
  EXPECT_NEAR(st->mean, 2 * between.x + 3 * between.y + 5 * between.z, 0.5);
}

TEST(Measurement, RefusesWhatItCannotMeasure) {
  const ImageGeometry g = anisotropic();
  const Volume v = makeVolume(g, [](const Vec3&) { return 1.0; });
  EXPECT_FALSE(roiStatistics(shape(MeasurementKind::Distance, {{0, 0, 0}, {1, 0, 0}}), v).ok());
  auto rgb = Volume::zeros(PixelType::RGB8, g);
  ASSERT_TRUE(rgb.ok());
  const auto r = roiStatistics(shape(MeasurementKind::Rectangle, {{0, 0, 7}, {5, 5, 7}}), *rgb);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("colour"), std::string::npos);

  EXPECT_FALSE(validate(shape(MeasurementKind::Distance, {{0, 0, 0}})).ok());
  EXPECT_FALSE(validate(shape(MeasurementKind::Polygon, {{0, 0, 0}, {1, 0, 0}, {0, 1, 1}})).ok());
  EXPECT_FALSE(validate(shape(MeasurementKind::Point, {{0, NAN, 0}})).ok());
  EXPECT_FALSE(validate(shape(MeasurementKind::Point, {{0, 0, 0}}, {1, 0, 0}, {1, 0, 0})).ok());
  EXPECT_TRUE(validate(shape(MeasurementKind::Polygon, {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}})).ok());
}

TEST(Measurement, HandlesMoveOneCornerAndKeepTheOpposite) {
  const auto r = shape(MeasurementKind::Rectangle, {{0, 0, 5}, {10, 20, 5}});
  const auto h = handles(r);
  ASSERT_EQ(h.size(), 4u);
  // Corner 2 (u1, v1) dragged off the plane: it lands in the plane, corner 0 stays.
  const auto moved = moveHandle(r, 2, {4, 6, 9});
  EXPECT_NEAR(areaMm2(moved), 24.0, 1e-9);
  EXPECT_TRUE(validate(moved).ok());
  const auto mh = handles(moved);
  EXPECT_NEAR((mh[0] - Vec3{0, 0, 5}).norm(), 0.0, 1e-9);
  EXPECT_NEAR((mh[2] - Vec3{4, 6, 5}).norm(), 0.0, 1e-9);
  const auto d = moveHandle(shape(MeasurementKind::Distance, {{0, 0, 0}, {1, 0, 0}}), 1, {0, 3, 4});
  EXPECT_NEAR(lengthMm(d), 5.0, 1e-12);
  EXPECT_NEAR((centroid(translated(r, {1, 1, 1})) - Vec3{6, 11, 6}).norm(), 0.0, 1e-12);
}

TEST(Measurement, ListUndoRedoIsBoundedAndIdsStayUnique) {
  MeasurementList list(3);
  const int a = list.add(shape(MeasurementKind::Point, {{0, 0, 0}}));
  const int b = list.add(shape(MeasurementKind::Point, {{1, 0, 0}}));
  EXPECT_NE(a, b);
  Measurement m = *list.find(b);
  m.text = "lesion";
  ASSERT_TRUE(list.replace(m));
  ASSERT_TRUE(list.remove(a));
  EXPECT_EQ(list.items().size(), 1u);
  const auto rev = list.revision();
  ASSERT_TRUE(list.undo());  // a back
  EXPECT_GT(list.revision(), rev);
  EXPECT_EQ(list.items().size(), 2u);
  ASSERT_TRUE(list.undo());  // text gone
  EXPECT_EQ(list.find(b)->text, "");
  ASSERT_TRUE(list.undo());  // b gone
  EXPECT_EQ(list.items().size(), 1u);
  EXPECT_FALSE(list.undo());  // only three steps kept
  ASSERT_TRUE(list.redo());
  ASSERT_TRUE(list.redo());
  EXPECT_EQ(list.find(b)->text, "lesion");
  const int c = list.add(shape(MeasurementKind::Point, {{2, 0, 0}}));
  EXPECT_FALSE(list.redo());  // a new edit drops the redo branch
  EXPECT_NE(c, a);
  EXPECT_NE(c, b);
  list.reset({shape(MeasurementKind::Point, {{0, 0, 0}})});
  EXPECT_FALSE(list.canUndo());
  Measurement kept = shape(MeasurementKind::Point, {{0, 0, 0}});
  kept.id = 41;
  list.reset({kept});
  EXPECT_EQ(list.add(shape(MeasurementKind::Point, {{0, 0, 0}})), 42);
}

TEST(Measurement, DescriptionsAreWhatAReaderReads) {
  EXPECT_EQ(describe(shape(MeasurementKind::Distance, {{0, 0, 0}, {3, 4, 0}}), nullptr, {}), "5.00 mm");
  EXPECT_EQ(describe(shape(MeasurementKind::Distance, {{0, 0, 0}, {0, 0, 23.45}}), nullptr, {}), "23.4 mm");
  EXPECT_EQ(describe(shape(MeasurementKind::Angle, {{1, 0, 0}, {0, 0, 0}, {0, 1, 0}}), nullptr, {}), "90.0\u00b0");
  auto p = shape(MeasurementKind::Point, {{0, 0, 0}});
  EXPECT_EQ(describe(p, nullptr, {}), "Point");
  p.text = "nodule";
  EXPECT_EQ(describe(p, nullptr, {}), "nodule");
  const auto r = shape(MeasurementKind::Rectangle, {{0, 0, 0}, {4, 3, 0}});
  RoiStatistics st;
  st.areaMm2 = 12;
  st.samples = 20;
  st.mean = 41.25;
  st.sd = 3.5;
  st.min = -2;
  st.max = 57;
  EXPECT_EQ(describe(r, &st, "HU"), "Area 12.0 mm\u00b2\nMean 41.2  SD 3.50\nMin -2  Max 57 HU");
  st.samples = 0;
  EXPECT_EQ(describe(r, &st, "HU"), "Area 12.0 mm\u00b2\n(outside the image)");
  EXPECT_EQ(describe(r, nullptr, "HU"), "Area 12.0 mm\u00b2");
}
