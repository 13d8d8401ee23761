#include "lumen/core/Geometry.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace lumen {

Vec3 ImageGeometry::lpsToIjk(const Vec3& lps) const {
  Mat3 inv;
  if (!indexToPhysical().inverse(inv)) return {NAN, NAN, NAN};
  return inv * (lps - originLps);
}

Vec3 ImageGeometry::centerLps() const {
  const auto half = [](std::size_t n) { return n > 0 ? (static_cast<double>(n) - 1.0) / 2.0 : 0.0; };
  return ijkToLps({half(size[0]), half(size[1]), half(size[2])});
}

bool ImageGeometry::isValid(std::string* why) const {
  const auto fail = [&](const std::string& msg) {
    if (why) *why = msg;
    return false;
  };
  if (!spacingMm.isFinite() || !originLps.isFinite() || !direction.isFinite())
    return fail("geometry contains NaN or infinite values");
  for (int a = 0; a < 3; ++a) {
    if (!(spacingMm[a] > 0.0)) {
      std::ostringstream s;
      s << "voxel spacing along axis " << a << " is not positive (" << spacingMm[a] << " mm)";
      return fail(s.str());
    }
  }
  for (int c = 0; c < 3; ++c) {
    const double n = direction.column(c).norm();
    if (std::fabs(n - 1.0) > 1e-3) {
      std::ostringstream s;
      s << "direction cosine " << c << " is not a unit vector (length " << n << ")";
      return fail(s.str());
    }
  }
  if (std::fabs(direction.determinant()) < 1e-3) return fail("direction cosines are degenerate (collinear axes)");
  return true;
}

bool sameGrid(const ImageGeometry& a, const ImageGeometry& b, double toleranceMm) {
  if (a.size != b.size) return false;
  for (int corner = 0; corner < 8; ++corner) {
    Vec3 ijk;
    for (int ax = 0; ax < 3; ++ax) {
      const double hi = a.size[ax] > 0 ? static_cast<double>(a.size[ax] - 1) : 0.0;
      ijk[ax] = (corner >> ax) & 1 ? hi : 0.0;
    }
    if ((a.ijkToLps(ijk) - b.ijkToLps(ijk)).norm() > toleranceMm) return false;
  }
  return true;
}

char dominantDirectionLetter(const Vec3& v) {
  const double ax = std::fabs(v.x), ay = std::fabs(v.y), az = std::fabs(v.z);
  if (ax >= ay && ax >= az) return v.x >= 0 ? 'L' : 'R';
  if (ay >= ax && ay >= az) return v.y >= 0 ? 'P' : 'A';
  return v.z >= 0 ? 'S' : 'I';
}

std::string orientationCode(const Mat3& direction) {
  std::string code(3, '?');
  for (int c = 0; c < 3; ++c) code[c] = dominantDirectionLetter(direction.column(c));
  return code;
}

bool isOblique(const Mat3& direction, double toleranceDeg) {
  const double cosTol = std::cos(toleranceDeg * M_PI / 180.0);
  for (int c = 0; c < 3; ++c) {
    const Vec3 v = direction.column(c).normalized();
    const double m = std::max({std::fabs(v.x), std::fabs(v.y), std::fabs(v.z)});
    if (m < cosTol) return true;
  }
  return false;
}

Mat3 orthonormalized(const Mat3& d) {
  const Vec3 c0 = d.column(0).normalized();
  Vec3 c1 = d.column(1) - c0 * c0.dot(d.column(1));
  c1 = c1.normalized();
  Vec3 c2 = c0.cross(c1);
  if (c2.dot(d.column(2)) < 0) c2 = -c2;
  return Mat3::fromColumns(c0, c1, c2);
}

std::array<double, 16> ijkToRasAffine(const ImageGeometry& g) {
  const Mat3 m = g.indexToPhysical();
  std::array<double, 16> a{};
  for (int r = 0; r < 3; ++r) {
    const double flip = r < 2 ? -1.0 : 1.0;  // LPS -> RAS negates x and y
    for (int c = 0; c < 3; ++c) a[r * 4 + c] = flip * m(r, c);
    a[r * 4 + 3] = flip * g.originLps[r];
  }
  a[15] = 1.0;
  return a;
}

}  // namespace lumen
