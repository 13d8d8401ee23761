#pragma once
// Small fixed-size vector and matrix types for geometry. Double precision throughout:
// positions in a CT can be > 1000 mm from the origin and we compare them to 1e-3 mm.

#include <array>
#include <cmath>
#include <cstddef>

namespace lumen {

struct Vec3 {
  double x = 0.0, y = 0.0, z = 0.0;

  constexpr Vec3() = default;
  constexpr Vec3(double x_, double y_, double z_) : x(x_), y(y_), z(z_) {}

  constexpr double operator[](std::size_t i) const { return i == 0 ? x : (i == 1 ? y : z); }
  constexpr double& operator[](std::size_t i) { return i == 0 ? x : (i == 1 ? y : z); }

  constexpr Vec3 operator+(const Vec3& o) const { return {x + o.x, y + o.y, z + o.z}; }
  constexpr Vec3 operator-(const Vec3& o) const { return {x - o.x, y - o.y, z - o.z}; }
  constexpr Vec3 operator-() const { return {-x, -y, -z}; }
  constexpr Vec3 operator*(double s) const { return {x * s, y * s, z * s}; }
  constexpr Vec3 operator/(double s) const { return {x / s, y / s, z / s}; }
  constexpr Vec3& operator+=(const Vec3& o) { x += o.x; y += o.y; z += o.z; return *this; }

  constexpr double dot(const Vec3& o) const { return x * o.x + y * o.y + z * o.z; }
  constexpr Vec3 cross(const Vec3& o) const {
    return {y * o.z - z * o.y, z * o.x - x * o.z, x * o.y - y * o.x};
  }
  double norm() const { return std::sqrt(dot(*this)); }
  Vec3 normalized() const {
    const double n = norm();
    return n > 0.0 ? *this / n : Vec3{};
  }
  bool isFinite() const { return std::isfinite(x) && std::isfinite(y) && std::isfinite(z); }
};

inline constexpr Vec3 operator*(double s, const Vec3& v) { return v * s; }

/// 3x3 matrix, row-major storage: m[r * 3 + c].
struct Mat3 {
  std::array<double, 9> m{1, 0, 0, 0, 1, 0, 0, 0, 1};

  static constexpr Mat3 identity() { return Mat3{}; }
  static Mat3 fromColumns(const Vec3& c0, const Vec3& c1, const Vec3& c2) {
    Mat3 r;
    for (std::size_t i = 0; i < 3; ++i) {
      r(i, 0) = c0[i];
      r(i, 1) = c1[i];
      r(i, 2) = c2[i];
    }
    return r;
  }
  static Mat3 diagonal(const Vec3& d) {
    Mat3 r;
    r.m = {d.x, 0, 0, 0, d.y, 0, 0, 0, d.z};
    return r;
  }

  constexpr double operator()(std::size_t r, std::size_t c) const { return m[r * 3 + c]; }
  constexpr double& operator()(std::size_t r, std::size_t c) { return m[r * 3 + c]; }

  Vec3 column(std::size_t c) const { return {m[c], m[3 + c], m[6 + c]}; }
  void setColumn(std::size_t c, const Vec3& v) {
    m[c] = v.x;
    m[3 + c] = v.y;
    m[6 + c] = v.z;
  }

  Vec3 operator*(const Vec3& v) const {
    return {m[0] * v.x + m[1] * v.y + m[2] * v.z, m[3] * v.x + m[4] * v.y + m[5] * v.z,
            m[6] * v.x + m[7] * v.y + m[8] * v.z};
  }
  Mat3 operator*(const Mat3& o) const {
    Mat3 r;
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 3; ++j)
        r(i, j) = (*this)(i, 0) * o(0, j) + (*this)(i, 1) * o(1, j) + (*this)(i, 2) * o(2, j);
    return r;
  }
  Mat3 transposed() const {
    Mat3 r;
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 3; ++j) r(i, j) = (*this)(j, i);
    return r;
  }
  double determinant() const {
    return m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
           m[2] * (m[3] * m[7] - m[4] * m[6]);
  }
  /// Inverse; returns false (and leaves out untouched) when singular.
  bool inverse(Mat3& out) const {
    const double det = determinant();
    if (!(std::fabs(det) > 1e-12)) return false;
    const double id = 1.0 / det;
    Mat3 r;
    r(0, 0) = (m[4] * m[8] - m[5] * m[7]) * id;
    r(0, 1) = (m[2] * m[7] - m[1] * m[8]) * id;
    r(0, 2) = (m[1] * m[5] - m[2] * m[4]) * id;
    r(1, 0) = (m[5] * m[6] - m[3] * m[8]) * id;
    r(1, 1) = (m[0] * m[8] - m[2] * m[6]) * id;
    r(1, 2) = (m[2] * m[3] - m[0] * m[5]) * id;
    r(2, 0) = (m[3] * m[7] - m[4] * m[6]) * id;
    r(2, 1) = (m[1] * m[6] - m[0] * m[7]) * id;
    r(2, 2) = (m[0] * m[4] - m[1] * m[3]) * id;
    out = r;
    return true;
  }
  bool isFinite() const {
    for (double v : m)
      if (!std::isfinite(v)) return false;
    return true;
  }
};

}  // namespace lumen
