#include <gtest/gtest.h>

#include <cmath>

#include "lumen/core/Geometry.h"

using namespace lumen;

namespace {
Mat3 rotationZ(double deg) {
  const double a = deg * M_PI / 180.0;
  Mat3 m;
  m.m = {std::cos(a), -std::sin(a), 0, std::sin(a), std::cos(a), 0, 0, 0, 1};
  return m;
}
void expectNear(const Vec3& a, const Vec3& b, double tol = 1e-9) {
  EXPECT_NEAR(a.x, b.x, tol);
  EXPECT_NEAR(a.y, b.y, tol);
  EXPECT_NEAR(a.z, b.z, tol);
}
}  // namespace

TEST(Geometry, IjkToLpsUsesOriginSpacingAndDirection) {
  ImageGeometry g;
  g.size = {10, 20, 30};
  g.spacingMm = {0.5, 0.75, 2.0};
  g.originLps = {-100, 50, 1000};
  g.direction = rotationZ(90);  // i runs along +P, j along -L (= R)
  expectNear(g.ijkToLps({0, 0, 0}), {-100, 50, 1000});
  expectNear(g.ijkToLps({2, 0, 0}), {-100, 51, 1000});
  expectNear(g.ijkToLps({0, 4, 0}), {-103, 50, 1000});
  expectNear(g.ijkToLps({0, 0, 3}), {-100, 50, 1006});
}

TEST(Geometry, LpsToIjkInvertsIjkToLpsForObliqueGrids) {
  ImageGeometry g;
  g.size = {64, 64, 40};
  g.spacingMm = {0.9, 1.1, 3.3};
  g.originLps = {12.5, -40, 77};
  g.direction = rotationZ(17) * orthonormalized(Mat3::fromColumns({1, 0, 0.2}, {0, 1, 0}, {0, 0, 1}));
  ASSERT_TRUE(g.isValid());
  for (const Vec3& ijk : {Vec3{0, 0, 0}, Vec3{3.5, 60, 1}, Vec3{63, 0.25, 39}}) expectNear(g.lpsToIjk(g.ijkToLps(ijk)), ijk, 1e-9);
}

TEST(Geometry, OrientationCodeNamesTheDirectionOfIncreasingIndex) {
  EXPECT_EQ(orientationCode(Mat3::identity()), "LPS");
  // Coronal DICOM slice: rows along +L, columns along -S (down), normal towards A.
  EXPECT_EQ(orientationCode(Mat3::fromColumns({1, 0, 0}, {0, 0, -1}, {0, -1, 0})), "LIA");
  // Sagittal: rows along +P, columns down, normal towards R.
  EXPECT_EQ(orientationCode(Mat3::fromColumns({0, 1, 0}, {0, 0, -1}, {-1, 0, 0})), "PIR");
  EXPECT_FALSE(isOblique(Mat3::identity()));
  EXPECT_TRUE(isOblique(rotationZ(20)));
  EXPECT_FALSE(isOblique(rotationZ(0.2)));
}

TEST(Geometry, InvalidGeometryIsExplained) {
  ImageGeometry g;
  g.size = {2, 2, 2};
  std::string why;
  EXPECT_TRUE(g.isValid(&why));
  g.spacingMm.z = 0;
  EXPECT_FALSE(g.isValid(&why));
  EXPECT_NE(why.find("spacing"), std::string::npos);
  g.spacingMm.z = 1;
  g.originLps.x = NAN;
  EXPECT_FALSE(g.isValid(&why));
  EXPECT_NE(why.find("NaN"), std::string::npos);
  g.originLps.x = 0;
  g.direction = Mat3::fromColumns({1, 0, 0}, {1, 0, 0}, {0, 0, 1});
  EXPECT_FALSE(g.isValid(&why));
}

TEST(Geometry, RasAffineFlipsXandY) {
  ImageGeometry g;
  g.size = {4, 4, 4};
  g.spacingMm = {2, 3, 4};
  g.originLps = {10, 20, 30};
  const auto a = ijkToRasAffine(g);
  EXPECT_DOUBLE_EQ(a[0], -2);
  EXPECT_DOUBLE_EQ(a[5], -3);
  EXPECT_DOUBLE_EQ(a[10], 4);
  EXPECT_DOUBLE_EQ(a[3], -10);
  EXPECT_DOUBLE_EQ(a[7], -20);
  EXPECT_DOUBLE_EQ(a[11], 30);
  const Vec3 p{1, 2, 3};
  expectNear(rasToLps(lpsToRas(p)), p);
}

TEST(Geometry, SameGridComparesPhysicalCorners) {
  ImageGeometry a;
  a.size = {10, 10, 10};
  ImageGeometry b = a;
  EXPECT_TRUE(sameGrid(a, b));
  b.originLps.z += 0.01;
  EXPECT_FALSE(sameGrid(a, b, 1e-3));
  EXPECT_TRUE(sameGrid(a, b, 0.02));
}

TEST(Geometry, OrthonormalizedKeepsHandedness) {
  const Mat3 m = Mat3::fromColumns({1, 0.001, 0}, {0.002, 1, 0}, {0, 0, -1});
  const Mat3 o = orthonormalized(m);
  EXPECT_NEAR(o.column(0).dot(o.column(1)), 0, 1e-12);
  EXPECT_LT(o.determinant(), 0);
}
