// Pre-processing of Engine::run: the volume as a tensor, the plane a 2D network reads, the
// bundle's spatial and intensity transforms with MONAI's semantics, and their inverses.

#include <algorithm>
#include <cmath>
#include <sstream>

#include "Pipeline.h"

namespace lumen::models::pipeline {

namespace F = torch::nn::functional;

namespace {

constexpr double kAffineTol = 1e-3;  // MONAI's AFFINE_TOL

torch::ScalarType scalarOf(PixelType t) {
  switch (t) {
    case PixelType::UInt8: return torch::kUInt8;
    case PixelType::Int16: return torch::kInt16;
    case PixelType::UInt16: return torch::kInt32;  // widened by the caller
    case PixelType::Float32: return torch::kFloat32;
    case PixelType::RGB8: return torch::kUInt8;
  }
  return torch::kFloat32;
}

// ---- Orientation: a permute and flips, no interpolation -------------------------------

Oriented orientationTo(const ImageGeometry& g, const std::string& axcodes, std::string& why) {
  // World axis and sign of each target letter, in RAS.
  auto letter = [](char c, int& axis, int& sign) {
    switch (std::toupper(static_cast<unsigned char>(c))) {
      case 'R': axis = 0; sign = 1; return true;
      case 'L': axis = 0; sign = -1; return true;
      case 'A': axis = 1; sign = 1; return true;
      case 'P': axis = 1; sign = -1; return true;
      case 'S': axis = 2; sign = 1; return true;
      case 'I': axis = 2; sign = -1; return true;
      default: return false;
    }
  };
  Oriented o{{0, 1, 2}, {false, false, false}};
  std::array<Vec3, 3> ras;
  for (int a = 0; a < 3; ++a) ras[static_cast<std::size_t>(a)] = lpsToRas(g.direction.column(a));
  std::array<bool, 3> used{false, false, false}, worldUsed{false, false, false};
  for (int t = 0; t < 3; ++t) {
    int axis = 0, sign = 1;
    if (!letter(axcodes[static_cast<std::size_t>(t)], axis, sign)) {
      why = std::string("axcodes letter '") + axcodes[static_cast<std::size_t>(t)] + "' is not one of RLAPSI";
      return o;
    }
    if (worldUsed[static_cast<std::size_t>(axis)]) {
      why = "axcodes '" + axcodes + "' names one direction twice";
      return o;
    }
    worldUsed[static_cast<std::size_t>(axis)] = true;
    // The unused array axis closest to this world axis.
    int best = -1;
    double bestAbs = -1;
    for (int a = 0; a < 3; ++a) {
      if (used[static_cast<std::size_t>(a)]) continue;
      const double v = std::fabs(ras[static_cast<std::size_t>(a)][static_cast<std::size_t>(axis)]);
      if (v > bestAbs) {
        bestAbs = v;
        best = a;
      }
    }
    used[static_cast<std::size_t>(best)] = true;
    o.perm[static_cast<std::size_t>(t)] = best;
    o.flip[static_cast<std::size_t>(t)] = (ras[static_cast<std::size_t>(best)][static_cast<std::size_t>(axis)] >= 0 ? 1 : -1) != sign;
  }
  return o;
}

void applyOrientation(State& s, const Oriented& o) {
  const ImageGeometry g = s.geometry;
  s.x = s.x.permute({0, 1, 2 + o.perm[0], 2 + o.perm[1], 2 + o.perm[2]});
  std::vector<std::int64_t> flips;
  for (int t = 0; t < 3; ++t)
    if (o.flip[static_cast<std::size_t>(t)]) flips.push_back(2 + t);
  if (!flips.empty()) s.x = s.x.flip(flips);
  ImageGeometry n = g;
  Vec3 firstVoxel;
  for (std::size_t t = 0; t < 3; ++t) {
    const auto a = static_cast<std::size_t>(o.perm[t]);
    n.size[t] = g.size[a];
    n.spacingMm[t] = g.spacingMm[a];
    n.direction.setColumn(t, g.direction.column(static_cast<int>(a)) * (o.flip[t] ? -1.0 : 1.0));
    firstVoxel[a] = o.flip[t] ? static_cast<double>(g.size[a] - 1) : 0.0;
  }
  n.originLps = g.ijkToLps(firstVoxel);
  s.geometry = n;
  s.spatial.emplace_back(o);
}

torch::Tensor undoOrientation(const torch::Tensor& x, const Oriented& o) {
  std::vector<std::int64_t> flips;
  for (int t = 0; t < 3; ++t)
    if (o.flip[static_cast<std::size_t>(t)]) flips.push_back(2 + t);
  torch::Tensor y = flips.empty() ? x : x.flip(flips);
  std::array<std::int64_t, 3> inv{};
  for (int t = 0; t < 3; ++t) inv[static_cast<std::size_t>(o.perm[static_cast<std::size_t>(t)])] = t;
  return y.permute({0, 1, 2 + inv[0], 2 + inv[1], 2 + inv[2]});
}

bool isIdentity(const Oriented& o) {
  return o.perm == std::array<int, 3>{0, 1, 2} && o.flip == std::array<bool, 3>{false, false, false};
}

// ---- Spacing, as MONAI's Spacing (monai.transforms.Spacing, MONAI 1.x) ---------------
//  - target spacing per axis: pixdim (<= 0: keep); an axis already within 1e-3 of it (or of
//    [min_pixdim, max_pixdim]) keeps its own spacing;
//  - the new grid keeps the input's axis directions (diagonal=False) and its first voxel
//    centre (compute_shape_offset's corner), spacing exactly the target;
//  - size per axis: round((n - 1) * old / new + 1), numpy's round (half to even);
//  - output voxel j samples input index j * new / old (align_corners=False maps voxel
//    centres), trilinear or nearest, padding "border" (clamped) or "zeros";
//  - nothing is resampled when no axis changes (MONAI's "affine unchanged").
void applySpacing(State& s, const SpacingT& sp, std::vector<std::string>& log) {
  Resampled r;
  r.nearest = sp.mode == "nearest";
  r.zeroPadding = sp.padding == "zeros";
  bool changed = false;
  ImageGeometry n = s.geometry;
  for (std::size_t a = 0; a < 3; ++a) {
    const double old = s.geometry.spacingMm[a];
    const double target = sp.pixdim[a] > 0 ? sp.pixdim[a] : old;
    double lo = target, hi = target;
    if (a < sp.minPixdim.size() && !std::isnan(sp.minPixdim[a])) lo = std::min(sp.minPixdim[a], target);
    if (a < sp.maxPixdim.size() && !std::isnan(sp.maxPixdim[a])) hi = std::max(sp.maxPixdim[a], target);
    const double out = (lo - kAffineTol <= old && old <= hi + kAffineTol) ? old : target;
    r.oldSize[a] = static_cast<std::int64_t>(s.geometry.size[a]);
    r.oldSpacing[a] = old;
    r.newSpacing[a] = out;
    r.newSize[a] = static_cast<std::int64_t>(std::nearbyint(static_cast<double>(r.oldSize[a] - 1) * old / out + 1.0));
    r.newSize[a] = std::max<std::int64_t>(1, r.newSize[a]);
    if (out != old || r.newSize[a] != r.oldSize[a]) changed = true;
    n.size[a] = static_cast<std::size_t>(r.newSize[a]);
    n.spacingMm[a] = out;
  }
  if (!changed) return;
  // In double, rounded to float once at the end, as MONAI does: a label boundary that falls
  // between two channels' scores must not move with the rounding of each axis.
  torch::Tensor x = r.nearest ? s.x : s.x.to(torch::kFloat64);
  for (int a = 0; a < 3; ++a) {
    const auto ua = static_cast<std::size_t>(a);
    if (r.newSpacing[ua] == r.oldSpacing[ua] && r.newSize[ua] == r.oldSize[ua]) continue;
    x = resampleAxis(x, a + 2, r.newSize[ua], r.newSpacing[ua] / r.oldSpacing[ua], r.nearest, r.zeroPadding);
  }
  s.x = x.to(torch::kFloat32);
  std::ostringstream m;
  m << "resampled " << r.oldSize[0] << "x" << r.oldSize[1] << "x" << r.oldSize[2] << " -> " << r.newSize[0] << "x"
    << r.newSize[1] << "x" << r.newSize[2] << " at " << r.newSpacing[0] << " x " << r.newSpacing[1] << " x "
    << r.newSpacing[2] << " mm (" << sp.mode << ", " << sp.padding << " padding)";
  log.push_back(m.str());
  s.geometry = n;  // same directions, same first voxel centre
  s.spatial.emplace_back(r);
}

void applyCrop(State& s, const CropForegroundT& c, std::vector<std::string>& log) {
  const torch::Tensor mask = (s.x > c.threshold).any(1).squeeze(0);  // [X, Y, Z]
  if (!mask.any().item<bool>()) {
    log.push_back("CropForeground: no foreground, not cropped");
    return;
  }
  Cropped cr;
  Size3 size{};
  for (int a = 0; a < 3; ++a) {
    std::vector<std::int64_t> others;
    for (int b = 0; b < 3; ++b)
      if (b != a) others.push_back(b);
    const torch::Tensor any = mask.any(others[1]).any(others[0]);  // along axis a
    const torch::Tensor idx = torch::nonzero(any).flatten().cpu();
    const auto ua = static_cast<std::size_t>(a);
    cr.oldSize[ua] = mask.size(a);
    const std::int64_t lo = std::max<std::int64_t>(0, idx[0].item<std::int64_t>() - c.margin);
    const std::int64_t hi = std::min<std::int64_t>(cr.oldSize[ua] - 1, idx[-1].item<std::int64_t>() + c.margin);
    cr.start[ua] = lo;
    size[ua] = hi - lo + 1;
  }
  for (int a = 0; a < 3; ++a) s.x = s.x.narrow(a + 2, cr.start[static_cast<std::size_t>(a)], size[static_cast<std::size_t>(a)]);
  s.geometry.originLps = s.geometry.ijkToLps(
      {static_cast<double>(cr.start[0]), static_cast<double>(cr.start[1]), static_cast<double>(cr.start[2])});
  for (std::size_t a = 0; a < 3; ++a) s.geometry.size[a] = static_cast<std::size_t>(size[a]);
  std::ostringstream m;
  m << "cropped to the foreground: " << size[0] << "x" << size[1] << "x" << size[2];
  log.push_back(m.str());
  s.spatial.emplace_back(cr);
}

void applyIntensity(State& s, const Transform& t) {
  if (const auto* r = std::get_if<ScaleIntensityRangeT>(&t)) {
    const double scale = (r->bMax - r->bMin) / (r->aMax - r->aMin);
    s.x = (s.x - r->aMin) * scale + r->bMin;
    if (r->clip) s.x = s.x.clamp(std::min(r->bMin, r->bMax), std::max(r->bMin, r->bMax));
    s.intensity.push_back({scale, r->bMin - r->aMin * scale});
  } else if (const auto* n = std::get_if<NormalizeIntensityT>(&t)) {
    // Mean and population standard deviation (MONAI: unbiased=False; 0 -> 1), over the
    // non-zero voxels when asked. One channel, so channel_wise changes nothing.
    torch::Tensor mean, stdv;
    if (n->nonzero) {
      const torch::Tensor vals = s.x.masked_select(s.x != 0);
      if (vals.numel() == 0) return;
      mean = vals.mean();
      stdv = vals.std(/*unbiased=*/false);
    } else {
      mean = s.x.mean();
      stdv = s.x.std(/*unbiased=*/false);
    }
    const double m = mean.item<double>();
    double sd = stdv.item<double>();
    if (!(sd > 0)) sd = 1.0;
    if (n->nonzero) s.x = torch::where(s.x != 0, (s.x - m) / sd, s.x);
    else s.x = (s.x - m) / sd;
    s.intensity.push_back({1.0 / sd, -m / sd});
  } else if (const auto* si = std::get_if<ScaleIntensityT>(&t)) {
    const double lo = s.x.min().item<double>(), hi = s.x.max().item<double>();
    if (hi > lo) {
      const double scale = (si->maxv - si->minv) / (hi - lo);
      s.x = (s.x - lo) * scale + si->minv;
      s.intensity.push_back({scale, si->minv - lo * scale});
    } else {
      s.x = s.x * si->minv;  // MONAI's rescale_array of a constant image
      s.intensity.push_back({si->minv, 0.0});
    }
  }
}

// The patient direction (LPS unit vector) normal to a plane's slices.
Vec3 planeNormal(const std::string& plane) {
  if (plane == "axial") return {0, 0, 1};
  if (plane == "coronal") return {0, 1, 0};
  return {1, 0, 0};
}

std::string planeOfAxcode(char c) {
  switch (std::toupper(static_cast<unsigned char>(c))) {
    case 'S': case 'I': return "axial";
    case 'A': case 'P': return "coronal";
    default: return "sagittal";
  }
}

}  // namespace

State toState(const Volume& input, const torch::Device& device) {
  const auto& sz = input.size();
  const std::vector<std::int64_t> kji{static_cast<std::int64_t>(sz[2]), static_cast<std::int64_t>(sz[1]),
                                      static_cast<std::int64_t>(sz[0])};
  torch::Tensor raw;
  if (input.pixelType() == PixelType::UInt16) {
    raw = torch::from_blob(const_cast<std::byte*>(input.bytes()), kji, torch::kInt16);  // reinterpret, fixed below
    raw = raw.to(torch::kInt32).bitwise_and(0xFFFF);
  } else {
    raw = torch::from_blob(const_cast<std::byte*>(input.bytes()), kji, scalarOf(input.pixelType()));
  }
  State s;
  s.x = raw.to(device, torch::kFloat32).permute({2, 1, 0}).unsqueeze(0).unsqueeze(0);
  s.geometry = input.geometry();
  return s;
}

Status reformatToPlane(State& s, const Bundle& b, std::vector<std::string>& log) {
  std::string implied;
  for (const auto& t : b.preprocessing)
    if (const auto* o = std::get_if<OrientationT>(&t)) implied = planeOfAxcode(o->axcodes[2]);
  const std::string extraFile = (b.root / "configs" / "lumen.json").string();
  if (!implied.empty()) {
    // The bundle's own Orientationd decides which axis the slices are cut along.
    if (!b.extras.plane.empty() && b.extras.plane != implied)
      return Error(ErrorCode::Model,
                   "plane: \"" + b.extras.plane + "\" contradicts the bundle's Orientationd, whose slices are " + implied,
                   extraFile);
    return {};
  }
  if (b.extras.plane.empty())
    return Error(ErrorCode::Model,
                 "a 2D network must state the plane it was trained on: lumen.json \"plane\" (axial, coronal or sagittal)",
                 extraFile);
  const Vec3 want = planeNormal(b.extras.plane);
  int best = 2;
  double bestCos = -1;
  for (int a = 0; a < 3; ++a) {
    const double c = std::fabs(s.geometry.direction.column(a).normalized().dot(want));
    if (c > bestCos + 1e-9) {
      bestCos = c;
      best = a;
    }
  }
  const double angle = std::acos(std::min(1.0, bestCos)) * 180.0 / M_PI;
  if (angle > 30.0) {
    std::ostringstream e;
    e << "the series' slices are " << std::round(angle) << " degrees from the " << b.extras.plane
      << " plane the model was trained on (at most 30)";
    return Error(ErrorCode::InvalidArgument, e.str());
  }
  if (best == 2) return {};
  Oriented o{{0, 1, 2}, {false, false, false}};
  int t = 0;
  for (int a = 0; a < 3; ++a)
    if (a != best) o.perm[static_cast<std::size_t>(t++)] = a;
  o.perm[2] = best;
  applyOrientation(s, o);
  log.push_back("reformatted: the model reads " + b.extras.plane + " slices; the series was acquired in another plane");
  return {};
}

Status preprocess(State& s, const Bundle& b, std::vector<std::string>& log) {
  for (const auto& t : b.preprocessing) {
    if (const auto* o = std::get_if<OrientationT>(&t)) {
      std::string err;
      const Oriented ori = orientationTo(s.geometry, o->axcodes, err);
      if (!err.empty()) return Error(ErrorCode::Model, "Orientationd: " + err, b.root.string());
      if (!isIdentity(ori)) {
        applyOrientation(s, ori);
        log.push_back("reoriented to " + o->axcodes);
      }
    } else if (const auto* sp = std::get_if<SpacingT>(&t)) {
      applySpacing(s, *sp, log);
    } else if (const auto* c = std::get_if<CropForegroundT>(&t)) {
      applyCrop(s, *c, log);
    } else {
      applyIntensity(s, t);
    }
  }
  return {};
}

torch::Tensor resampleAxis(const torch::Tensor& x, int axis, std::int64_t newSize, double scale, bool nearest,
                           bool zeroPadding) {
  const std::int64_t n = x.size(axis);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  // Input index of each output voxel. A position exactly half-way between two voxels
  // (nearest neighbour) rounds to the even one; MONAI's rounding there follows the
  // floating-point noise of its affine arithmetic, so the two may differ on such planes.
  const torch::Tensor pos = torch::arange(newSize, opts) * scale;
  const torch::Device dev = x.device();
  std::vector<std::int64_t> shape(static_cast<std::size_t>(x.dim()), 1);
  shape[static_cast<std::size_t>(axis)] = newSize;
  if (nearest) {
    torch::Tensor idx = torch::round(pos);  // half to even, as grid_sample's nearbyint
    const torch::Tensor inside = (idx >= 0) & (idx <= n - 1);
    idx = idx.clamp(0, n - 1).to(torch::kLong).to(dev);
    torch::Tensor y = x.index_select(axis, idx);
    if (zeroPadding && !inside.all().item<bool>()) y = y * inside.to(dev, x.scalar_type()).view(shape);
    return y;
  }
  torch::Tensor p = zeroPadding ? pos : pos.clamp(0, static_cast<double>(n - 1));
  const torch::Tensor i0 = torch::floor(p);
  const torch::Tensor w1 = p - i0;  // weight of the upper neighbour
  const torch::Tensor lo = i0.to(torch::kLong), hi = lo + 1;
  torch::Tensor wLo = 1.0 - w1, wHi = w1.clone();
  if (zeroPadding) {  // neighbours outside the image count as zero
    wLo = wLo * ((lo >= 0) & (lo <= n - 1)).to(torch::kFloat64);
    wHi = wHi * ((hi >= 0) & (hi <= n - 1)).to(torch::kFloat64);
  }
  const torch::Tensor a = x.index_select(axis, lo.clamp(0, n - 1).to(dev));
  const torch::Tensor b = x.index_select(axis, hi.clamp(0, n - 1).to(dev));
  const auto t = x.is_floating_point() ? x.scalar_type() : torch::kFloat32;
  return a.to(t) * wLo.to(dev, t).view(shape) + b.to(t) * wHi.to(dev, t).view(shape);
}

torch::Tensor undoSpatial(torch::Tensor x, const std::vector<SpatialStep>& steps, bool nearest) {
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    if (const auto* o = std::get_if<Oriented>(&*it)) {
      x = undoOrientation(x, *o);
    } else if (const auto* r = std::get_if<Resampled>(&*it)) {
      // MONAI's inverse of Spacing: the same resampling from the model grid back to the
      // input's (voxel i reads model index i * old / new), padding as the forward one.
      for (int a = 0; a < 3; ++a) {
        const auto ua = static_cast<std::size_t>(a);
        if (r->newSpacing[ua] == r->oldSpacing[ua] && r->newSize[ua] == r->oldSize[ua]) continue;
        x = resampleAxis(x, a + 2, r->oldSize[ua], r->oldSpacing[ua] / r->newSpacing[ua], nearest, r->zeroPadding);
      }
    } else if (const auto* c = std::get_if<Cropped>(&*it)) {
      // Outside the crop: zero, i.e. background for every channel but the first.
      std::vector<std::int64_t> pad;
      for (int a = 2; a >= 0; --a) {
        const auto ua = static_cast<std::size_t>(a);
        pad.push_back(c->start[ua]);
        pad.push_back(c->oldSize[ua] - c->start[ua] - x.size(a + 2));
      }
      x = F::pad(x, F::PadFuncOptions(pad).mode(torch::kConstant).value(0));
    }
  }
  return x;
}

torch::Tensor undoIntensity(torch::Tensor y, const std::vector<Linear>& steps) {
  for (auto it = steps.rbegin(); it != steps.rend(); ++it)
    if (it->scale != 0) y = (y - it->offset) / it->scale;
  return y;
}

// Per slice, tissue in (lo, hi) counted at the centres of whole neighbourhood squares in
// that range, after a box mean: a low-dose slice's noise would otherwise break the squares
// up and grade fewer slices the noisier the scan. Sizes in mm, odd pixel counts.
torch::Tensor evidenceAreaMm2(const State& s, const LumenExtras::SliceEvidence& ev) {
  const double sx = s.geometry.spacingMm[0], sy = s.geometry.spacingMm[1];
  const auto odd = [](double mm, double pixel) { return 2 * static_cast<std::int64_t>(std::floor(mm / (2 * pixel))) + 1; };
  const std::int64_t ki = odd(ev.neighbourhoodMm, sx), kj = odd(ev.neighbourhoodMm, sy);
  const std::int64_t si = odd(ev.smoothingMm, sx), sj = odd(ev.smoothingMm, sy);
  const torch::Tensor x = s.x[0][0].permute({2, 1, 0}).unsqueeze(1);  // [Z, 1, Y, X]
  torch::Tensor area = torch::zeros({x.size(0)}, x.options().dtype(torch::kFloat64));
  if (kj > x.size(2) || ki > x.size(3) || sj > x.size(2) || si > x.size(3)) return area.cpu();
  // A few slices at a time: the temporaries of a whole 2000-slice CT would take gigabytes.
  for (std::int64_t z = 0; z < x.size(0); z += 32) {
    const torch::Tensor part = x.narrow(0, z, std::min<std::int64_t>(32, x.size(0) - z));
    const torch::Tensor mean = F::avg_pool2d(
        part, F::AvgPool2dFuncOptions({sj, si}).stride(1).padding({sj / 2, si / 2}).count_include_pad(false));
    const torch::Tensor in = ((mean > ev.lo) & (mean < ev.hi)).to(torch::kFloat32);
    const torch::Tensor whole = F::avg_pool2d(in, F::AvgPool2dFuncOptions({kj, ki}).stride(1)) >= 1.0f - 1e-6f;
    area.narrow(0, z, part.size(0)).copy_(whole.sum({1, 2, 3}).to(torch::kFloat64) * (sx * sy));
  }
  return area.cpu();
}

// After AAPM Report 220: the diameter of the water disc that attenuates as the slice does,
// from the pixels above -500 HU weighted by HU / 1000 + 1. No body contour: air inside the
// head (sinuses) is left out and a head holder counts; the training fit used the same rule.
torch::Tensor waterEquivalentDiametersMm(const State& s) {
  const double pixelArea = s.geometry.spacingMm[0] * s.geometry.spacingMm[1];
  const torch::Tensor x = s.x[0][0].permute({2, 1, 0});  // [Z, Y, X]
  torch::Tensor d = torch::zeros({x.size(0)}, x.options().dtype(torch::kFloat64));
  for (std::int64_t z = 0; z < x.size(0); z += 32) {  // bounded temporaries, as above
    const torch::Tensor part = x.narrow(0, z, std::min<std::int64_t>(32, x.size(0) - z)).to(torch::kFloat64);
    const torch::Tensor water = torch::where(part > -500.0, part / 1000.0 + 1.0, torch::zeros_like(part)).sum({1, 2});
    d.narrow(0, z, part.size(0)).copy_(2.0 * torch::sqrt(water * (pixelArea / M_PI)));
  }
  return d.cpu();
}

std::array<double, 16> rasAffine(const ImageGeometry& g) { return ijkToRasAffine(g); }

}  // namespace lumen::models::pipeline
