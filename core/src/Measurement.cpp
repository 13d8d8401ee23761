#include "lumen/core/Measurement.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace lumen {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kPlaneToleranceMm = 0.01;

struct Uv {
  double u, v;
};

// Coordinates in the measurement's plane, origin at points[0].
Uv toPlane(const Measurement& m, const Vec3& p) {
  const Vec3 d = p - m.points.front();
  return {d.dot(m.right), d.dot(m.up)};
}
Vec3 fromPlane(const Measurement& m, const Uv& uv) { return m.points.front() + m.right * uv.u + m.up * uv.v; }
Vec3 projectToPlane(const Measurement& m, const Vec3& p) { return fromPlane(m, toPlane(m, p)); }

// Ellipse and rectangle: bounding box in plane coordinates.
struct Box {
  double u0, v0, u1, v1;
};
Box boxOf(const Measurement& m) {
  const Uv a = toPlane(m, m.points[0]), b = toPlane(m, m.points[1]);
  return {std::min(a.u, b.u), std::min(a.v, b.v), std::max(a.u, b.u), std::max(a.v, b.v)};
}

bool insideShape(const Measurement& m, const Box& box, const std::vector<Uv>& poly, const Uv& p) {
  switch (m.kind) {
    case MeasurementKind::Rectangle: return p.u >= box.u0 && p.u <= box.u1 && p.v >= box.v0 && p.v <= box.v1;
    case MeasurementKind::Ellipse: {
      const double a = (box.u1 - box.u0) / 2, b = (box.v1 - box.v0) / 2;
      if (a <= 0 || b <= 0) return false;
      const double x = (p.u - (box.u0 + box.u1) / 2) / a, y = (p.v - (box.v0 + box.v1) / 2) / b;
      return x * x + y * y <= 1.0;
    }
    case MeasurementKind::Polygon: {
      bool in = false;  // even-odd rule
      for (std::size_t i = 0, j = poly.size() - 1; i < poly.size(); j = i++) {
        if ((poly[i].v > p.v) != (poly[j].v > p.v) &&
            p.u < (poly[j].u - poly[i].u) * (p.v - poly[i].v) / (poly[j].v - poly[i].v) + poly[i].u)
          in = !in;
      }
      return in;
    }
    default: return false;
  }
}

// Running mean and variance (Welford), min and max.
struct Accumulator {
  std::size_t n = 0;
  double mean = 0, m2 = 0, lo = 0, hi = 0;
  void add(double x) {
    if (n == 0) lo = hi = x;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    ++n;
    const double d = x - mean;
    mean += d / static_cast<double>(n);
    m2 += d * (x - mean);
  }
};

template <class T>
double trilinear(const Volume& v, const Vec3& ijk) {
  const auto& s = v.size();
  const T* d = v.data<T>();
  const double fx = std::floor(ijk.x), fy = std::floor(ijk.y), fz = std::floor(ijk.z);
  const double tx = ijk.x - fx, ty = ijk.y - fy, tz = ijk.z - fz;
  double acc = 0;
  for (int c = 0; c < 8; ++c) {
    const long i = std::clamp(static_cast<long>(fx) + (c & 1), 0L, static_cast<long>(s[0]) - 1);
    const long j = std::clamp(static_cast<long>(fy) + ((c >> 1) & 1), 0L, static_cast<long>(s[1]) - 1);
    const long k = std::clamp(static_cast<long>(fz) + ((c >> 2) & 1), 0L, static_cast<long>(s[2]) - 1);
    const double w = ((c & 1) ? tx : 1 - tx) * (((c >> 1) & 1) ? ty : 1 - ty) * (((c >> 2) & 1) ? tz : 1 - tz);
    if (w == 0) continue;
    acc += w * static_cast<double>(d[static_cast<std::size_t>(i) + s[0] * (static_cast<std::size_t>(j) + s[1] * static_cast<std::size_t>(k))]);
  }
  return acc;
}

std::string number(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

const char* toString(MeasurementKind k) {
  switch (k) {
    case MeasurementKind::Distance: return "distance";
    case MeasurementKind::Angle: return "angle";
    case MeasurementKind::Ellipse: return "ellipse";
    case MeasurementKind::Rectangle: return "rectangle";
    case MeasurementKind::Polygon: return "polygon";
    case MeasurementKind::Point: return "point";
  }
  return "?";
}

bool parseMeasurementKind(const std::string& s, MeasurementKind& out) {
  for (auto k : {MeasurementKind::Distance, MeasurementKind::Angle, MeasurementKind::Ellipse,
                 MeasurementKind::Rectangle, MeasurementKind::Polygon, MeasurementKind::Point})
    if (s == toString(k)) {
      out = k;
      return true;
    }
  return false;
}

bool isRoi(MeasurementKind k) {
  return k == MeasurementKind::Ellipse || k == MeasurementKind::Rectangle || k == MeasurementKind::Polygon;
}

Status validate(const Measurement& m) {
  const std::string what = std::string(toString(m.kind)) + " " + std::to_string(m.id);
  const std::size_t n = m.points.size();
  bool countOk = false;
  switch (m.kind) {
    case MeasurementKind::Distance:
    case MeasurementKind::Ellipse:
    case MeasurementKind::Rectangle: countOk = n == 2; break;
    case MeasurementKind::Angle: countOk = n == 3; break;
    case MeasurementKind::Polygon: countOk = n >= 3 && n <= 10000; break;
    case MeasurementKind::Point: countOk = n == 1; break;
  }
  if (!countOk) return Error(ErrorCode::InvalidArgument, what + ": wrong number of points (" + std::to_string(n) + ")");
  for (const auto& p : m.points)
    if (!p.isFinite()) return Error(ErrorCode::InvalidArgument, what + ": a point is not a finite number");
  if (!m.right.isFinite() || !m.up.isFinite() || std::fabs(m.right.norm() - 1) > 1e-3 ||
      std::fabs(m.up.norm() - 1) > 1e-3 || std::fabs(m.right.dot(m.up)) > 1e-3)
    return Error(ErrorCode::InvalidArgument, what + ": its plane axes are not orthogonal unit vectors");
  if (isRoi(m.kind)) {
    const Vec3 nrm = m.normal();
    for (const auto& p : m.points)
      if (std::fabs((p - m.points.front()).dot(nrm)) > kPlaneToleranceMm)
        return Error(ErrorCode::InvalidArgument, what + ": its points are not in one plane");
  }
  return okStatus();
}

double lengthMm(const Measurement& m) {
  if (m.kind != MeasurementKind::Distance || m.points.size() != 2) return 0.0;
  return (m.points[1] - m.points[0]).norm();
}

double angleDeg(const Measurement& m) {
  if (m.kind != MeasurementKind::Angle || m.points.size() != 3) return 0.0;
  const Vec3 a = m.points[0] - m.points[1], b = m.points[2] - m.points[1];
  const double na = a.norm(), nb = b.norm();
  if (na == 0 || nb == 0) return 0.0;
  // atan2 of |a x b| and a.b: accurate near 0 and 180 degrees, where acos is not.
  return std::atan2(a.cross(b).norm(), a.dot(b)) * 180.0 / kPi;
}

double areaMm2(const Measurement& m) {
  switch (m.kind) {
    case MeasurementKind::Rectangle:
    case MeasurementKind::Ellipse: {
      if (m.points.size() != 2) return 0.0;
      const Box b = boxOf(m);
      const double r = (b.u1 - b.u0) * (b.v1 - b.v0);
      return m.kind == MeasurementKind::Rectangle ? r : kPi * r / 4.0;
    }
    case MeasurementKind::Polygon: {
      if (m.points.size() < 3) return 0.0;
      double twice = 0;
      for (std::size_t i = 0, j = m.points.size() - 1; i < m.points.size(); j = i++) {
        const Uv a = toPlane(m, m.points[j]), b = toPlane(m, m.points[i]);
        twice += a.u * b.v - b.u * a.v;
      }
      return std::fabs(twice) / 2.0;
    }
    default: return 0.0;
  }
}

std::vector<Vec3> outline(const Measurement& m, int segments) {
  std::vector<Vec3> out;
  if (m.points.empty()) return out;
  switch (m.kind) {
    case MeasurementKind::Rectangle: {
      if (m.points.size() != 2) return out;
      const Box b = boxOf(m);
      for (const Uv& p : {Uv{b.u0, b.v0}, Uv{b.u1, b.v0}, Uv{b.u1, b.v1}, Uv{b.u0, b.v1}, Uv{b.u0, b.v0}})
        out.push_back(fromPlane(m, p));
      return out;
    }
    case MeasurementKind::Ellipse: {
      if (m.points.size() != 2) return out;
      const Box b = boxOf(m);
      const double cu = (b.u0 + b.u1) / 2, cv = (b.v0 + b.v1) / 2, a = (b.u1 - b.u0) / 2, r = (b.v1 - b.v0) / 2;
      segments = std::max(segments, 8);
      for (int i = 0; i <= segments; ++i) {
        const double t = 2 * kPi * i / segments;
        out.push_back(fromPlane(m, {cu + a * std::cos(t), cv + r * std::sin(t)}));
      }
      return out;
    }
    case MeasurementKind::Polygon:
      out = m.points;
      out.push_back(m.points.front());
      return out;
    default: return m.points;
  }
}

std::vector<Vec3> handles(const Measurement& m) {
  if ((m.kind == MeasurementKind::Rectangle || m.kind == MeasurementKind::Ellipse) && m.points.size() == 2) {
    const Box b = boxOf(m);
    return {fromPlane(m, {b.u0, b.v0}), fromPlane(m, {b.u1, b.v0}), fromPlane(m, {b.u1, b.v1}),
            fromPlane(m, {b.u0, b.v1})};
  }
  return m.points;
}

Measurement moveHandle(const Measurement& m, int h, const Vec3& to) {
  Measurement r = m;
  if (h < 0) return r;
  if ((m.kind == MeasurementKind::Rectangle || m.kind == MeasurementKind::Ellipse) && m.points.size() == 2) {
    if (h > 3) return r;
    const auto corners = handles(m);
    const Vec3 fixed = corners[static_cast<std::size_t>((h + 2) % 4)];
    r.points = {fixed, projectToPlane(m, to)};
    // Keep points[0] as the plane's origin: it is a point of the plane either way.
    return r;
  }
  if (static_cast<std::size_t>(h) >= m.points.size()) return r;
  r.points[static_cast<std::size_t>(h)] = m.kind == MeasurementKind::Polygon ? projectToPlane(m, to) : to;
  return r;
}

Measurement translated(const Measurement& m, const Vec3& delta) {
  Measurement r = m;
  for (auto& p : r.points) p = p + delta;
  return r;
}

Vec3 centroid(const Measurement& m) {
  Vec3 c;
  if (m.points.empty()) return c;
  for (const auto& p : m.points) c += p;
  return c / static_cast<double>(m.points.size());
}

bool liesInPlane(const Measurement& m, const Vec3& point, const Vec3& normal, double toleranceMm) {
  if (m.points.empty()) return false;
  for (const auto& p : outline(m, 16))
    if (std::fabs((p - point).dot(normal)) > toleranceMm) return false;
  return true;
}

Result<RoiStatistics> roiStatistics(const Measurement& m, const Volume& image) {
  if (!isRoi(m.kind)) return Error(ErrorCode::InvalidArgument, std::string("a ") + toString(m.kind) + " has no area");
  if (auto s = validate(m); !s) return s.error();
  if (image.empty()) return Error(ErrorCode::InvalidArgument, "no image to measure");
  if (image.pixelType() == PixelType::RGB8)
    return Error(ErrorCode::Unsupported, "ROI statistics of a colour image are not computed (no single intensity)");
  RoiStatistics st;
  st.areaMm2 = areaMm2(m);
  const ImageGeometry& g = image.geometry();
  const Box box = boxOf(m);
  std::vector<Uv> poly;
  if (m.kind == MeasurementKind::Polygon)
    for (const auto& p : m.points) poly.push_back(toPlane(m, p));
  const auto shape = outline(m, 72);
  Accumulator acc;
  const Vec3 nrm = m.normal();

  // A plane through voxel centres of one grid slice: the voxels whose centres are inside.
  int sliceAxis = -1;
  long slice = 0;
  const Vec3 origin = g.lpsToIjk(m.points.front());
  for (int c = 0; c < 3; ++c) {
    if (std::fabs(g.direction.column(static_cast<std::size_t>(c)).dot(nrm)) < 1 - 1e-6) continue;
    const double k = origin[static_cast<std::size_t>(c)];
    if (std::fabs(k - std::round(k)) < 1e-3) {
      sliceAxis = c;
      slice = std::lround(k);
    }
  }
  if (sliceAxis >= 0) {
    st.onVoxels = true;
    if (slice < 0 || slice >= static_cast<long>(g.size[static_cast<std::size_t>(sliceAxis)])) return st;
    const int a0 = sliceAxis == 0 ? 1 : 0, a1 = sliceAxis == 2 ? 1 : 2;
    double lo[2] = {1e300, 1e300}, hi[2] = {-1e300, -1e300};
    for (const auto& p : shape) {
      const Vec3 ijk = g.lpsToIjk(p);
      lo[0] = std::min(lo[0], ijk[static_cast<std::size_t>(a0)]);
      hi[0] = std::max(hi[0], ijk[static_cast<std::size_t>(a0)]);
      lo[1] = std::min(lo[1], ijk[static_cast<std::size_t>(a1)]);
      hi[1] = std::max(hi[1], ijk[static_cast<std::size_t>(a1)]);
    }
    const long s0 = static_cast<long>(g.size[static_cast<std::size_t>(a0)]);
    const long s1 = static_cast<long>(g.size[static_cast<std::size_t>(a1)]);
    const long b0 = std::max(0L, static_cast<long>(std::floor(lo[0]))), e0 = std::min(s0 - 1, static_cast<long>(std::ceil(hi[0])));
    const long b1 = std::max(0L, static_cast<long>(std::floor(lo[1]))), e1 = std::min(s1 - 1, static_cast<long>(std::ceil(hi[1])));
    visitScalarType(image.pixelType(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* d = image.template data<T>();
      for (long y = b1; y <= e1; ++y)
        for (long x = b0; x <= e0; ++x) {
          Vec3 ijk;
          ijk[static_cast<std::size_t>(sliceAxis)] = static_cast<double>(slice);
          ijk[static_cast<std::size_t>(a0)] = static_cast<double>(x);
          ijk[static_cast<std::size_t>(a1)] = static_cast<double>(y);
          if (!insideShape(m, box, poly, toPlane(m, g.ijkToLps(ijk)))) continue;
          const auto i = static_cast<std::size_t>(ijk.x), j = static_cast<std::size_t>(ijk.y),
                     k = static_cast<std::size_t>(ijk.z);
          acc.add(static_cast<double>(d[image.linearIndex(i, j, k)]));
        }
    });
  } else {
    // Oblique to the grid: a square lattice of plane samples at the finest voxel spacing.
    const double h = std::min({g.spacingMm.x, g.spacingMm.y, g.spacingMm.z});
    double u0 = 1e300, v0 = 1e300, u1 = -1e300, v1 = -1e300;
    for (const auto& p : shape) {
      const Uv uv = toPlane(m, p);
      u0 = std::min(u0, uv.u);
      u1 = std::max(u1, uv.u);
      v0 = std::min(v0, uv.v);
      v1 = std::max(v1, uv.v);
    }
    const long nu = static_cast<long>(std::ceil((u1 - u0) / h)), nv = static_cast<long>(std::ceil((v1 - v0) / h));
    if (static_cast<double>(nu) * static_cast<double>(nv) > 1e8)
      return Error(ErrorCode::TooLarge, "the ROI is too large to sample");
    // Centre the lattice on the box so a symmetric shape is sampled symmetrically.
    const double su = (u0 + u1) / 2 - (static_cast<double>(nu) - 1) * h / 2;
    const double sv = (v0 + v1) / 2 - (static_cast<double>(nv) - 1) * h / 2;
    visitScalarType(image.pixelType(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      for (long y = 0; y < nv; ++y)
        for (long x = 0; x < nu; ++x) {
          const Uv p{su + static_cast<double>(x) * h, sv + static_cast<double>(y) * h};
          if (!insideShape(m, box, poly, p)) continue;
          const Vec3 ijk = g.lpsToIjk(fromPlane(m, p));
          bool in = true;
          for (std::size_t a = 0; a < 3; ++a)
            in = in && ijk[a] >= -0.5 && ijk[a] <= static_cast<double>(g.size[a]) - 0.5;
          if (in) acc.add(trilinear<T>(image, ijk));
        }
    });
  }
  st.samples = acc.n;
  if (acc.n > 0) {
    st.mean = acc.mean;
    st.sd = acc.n > 1 ? std::sqrt(acc.m2 / static_cast<double>(acc.n - 1)) : 0.0;
    st.min = acc.lo;
    st.max = acc.hi;
  }
  return st;
}

std::string describe(const Measurement& m, const RoiStatistics* stats, const std::string& units) {
  // One decimal as readers report (two under 10 mm); integers stay integers.
  auto value = [](double v) {
    if (std::isfinite(v) && v == std::round(v) && std::fabs(v) < 1e9) return number(v, 0);
    return number(v, std::fabs(v) < 10 ? 2 : 1);
  };
  switch (m.kind) {
    case MeasurementKind::Distance: return number(lengthMm(m), lengthMm(m) < 10 ? 2 : 1) + " mm";
    case MeasurementKind::Angle: return number(angleDeg(m), 1) + "\u00b0";
    case MeasurementKind::Point: return m.text.empty() ? std::string("Point") : m.text;
    default: break;
  }
  std::string s = "Area " + number(stats ? stats->areaMm2 : areaMm2(m), 1) + " mm\u00b2";
  if (stats && stats->samples > 0) {
    s += "\nMean " + value(stats->mean) + "  SD " + value(stats->sd) + "\nMin " + value(stats->min) + "  Max " +
         value(stats->max);
    if (!units.empty()) s += " " + units;
  } else if (stats) {
    s += "\n(outside the image)";
  }
  return s;
}

// ---- MeasurementList --------------------------------------------------------------------

const Measurement* MeasurementList::find(int id) const {
  for (const auto& m : items_)
    if (m.id == id) return &m;
  return nullptr;
}

void MeasurementList::remember() {
  undo_.push_back(items_);
  if (undo_.size() > maxUndo_) undo_.erase(undo_.begin());
  redo_.clear();
  ++revision_;
}

int MeasurementList::add(Measurement m) {
  remember();
  m.id = nextId_++;
  items_.push_back(std::move(m));
  return items_.back().id;
}

bool MeasurementList::replace(const Measurement& m) {
  for (auto& x : items_)
    if (x.id == m.id) {
      remember();
      x = m;
      return true;
    }
  return false;
}

bool MeasurementList::remove(int id) {
  auto it = std::find_if(items_.begin(), items_.end(), [&](const Measurement& m) { return m.id == id; });
  if (it == items_.end()) return false;
  remember();
  items_.erase(it);
  return true;
}

void MeasurementList::clear() {
  if (items_.empty()) return;
  remember();
  items_.clear();
}

bool MeasurementList::undo() {
  if (undo_.empty()) return false;
  redo_.push_back(std::move(items_));
  items_ = std::move(undo_.back());
  undo_.pop_back();
  ++revision_;
  return true;
}

bool MeasurementList::redo() {
  if (redo_.empty()) return false;
  undo_.push_back(std::move(items_));
  items_ = std::move(redo_.back());
  redo_.pop_back();
  ++revision_;
  return true;
}

void MeasurementList::reset(std::vector<Measurement> items) {
  items_ = std::move(items);
  undo_.clear();
  redo_.clear();
  nextId_ = 1;
  for (const auto& m : items_) nextId_ = std::max(nextId_, m.id + 1);
  ++revision_;
}

}  // namespace lumen
