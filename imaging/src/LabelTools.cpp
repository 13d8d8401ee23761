#include "lumen/imaging/LabelTools.h"

#include <itkBinaryMedianImageFilter.h>
#include <itkConfidenceConnectedImageFilter.h>
#include <itkImage.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace lumen::seg {

namespace {

template <class P>
typename itk::Image<P, 3>::Pointer wrap(const Volume& v) {
  using ImageT = itk::Image<P, 3>;
  auto img = ImageT::New();
  typename ImageT::RegionType region;
  typename ImageT::SpacingType spacing;
  for (unsigned a = 0; a < 3; ++a) {
    region.SetSize(a, v.size()[a]);
    spacing[a] = v.geometry().spacingMm[a];
  }
  img->SetRegions(region);
  img->SetSpacing(spacing);
  // ITK neither copies nor frees Lumen's buffer.
  img->GetPixelContainer()->SetImportPointer(reinterpret_cast<P*>(const_cast<std::byte*>(v.bytes())), v.voxelCount(),
                                            false);
  return img;
}

Result<std::array<long, 3>> seedIndex(const Volume& image, const Vec3& lps) {
  const Vec3 ijk = image.geometry().lpsToIjk(lps);
  std::array<long, 3> s{};
  for (std::size_t a = 0; a < 3; ++a) {
    s[a] = std::lround(ijk[a]);
    if (s[a] < 0 || s[a] >= static_cast<long>(image.size()[a]))
      return Error(ErrorCode::InvalidArgument, "the seed point is outside the image");
  }
  return s;
}

Status checkInputs(const LabelEditor& editor, const Volume& image, int label) {
  if (label <= 0 || label > 255) return Error(ErrorCode::InvalidArgument, "label values are 1 to 255");
  if (image.pixelType() == PixelType::RGB8) return Error(ErrorCode::Unsupported, "region growing needs a single-valued image");
  if (image.size() != editor.labels()->size()) return Error(ErrorCode::Inconsistent, "the label map is not on the image's grid");
  return okStatus();
}

IndexBox boxOf(const std::uint8_t* mask, const Size3& s) {
  long lo[3] = {static_cast<long>(s[0]), static_cast<long>(s[1]), static_cast<long>(s[2])}, hi[3] = {-1, -1, -1};
  std::size_t i = 0;
  for (long z = 0; z < static_cast<long>(s[2]); ++z)
    for (long y = 0; y < static_cast<long>(s[1]); ++y)
      for (long x = 0; x < static_cast<long>(s[0]); ++x, ++i)
        if (mask[i]) {
          lo[0] = std::min(lo[0], x);
          hi[0] = std::max(hi[0], x);
          lo[1] = std::min(lo[1], y);
          hi[1] = std::max(hi[1], y);
          lo[2] = std::min(lo[2], z);
          hi[2] = std::max(hi[2], z);
        }
  IndexBox b;
  for (std::size_t a = 0; a < 3; ++a) {
    b.lo[a] = lo[a];
    b.hi[a] = hi[a];
  }
  return b;
}

// Writes a uint8 mask (1 = in, all inside `box`) into the editor as `label`: one step.
Change applyMask(LabelEditor& editor, const std::uint8_t* mask, const IndexBox& box, int label, bool overwrite,
                 const char* name) {
  if (box.empty()) return {};
  const auto value = static_cast<std::uint8_t>(label);
  return editor.edit(name, box, [&](Volume& l) {
    std::uint8_t* d = l.data<std::uint8_t>();
    for (long z = box.lo[2]; z <= box.hi[2]; ++z)
      for (long y = box.lo[1]; y <= box.hi[1]; ++y) {
        std::size_t j = l.linearIndex(static_cast<std::size_t>(box.lo[0]), static_cast<std::size_t>(y), static_cast<std::size_t>(z));
        for (long x = box.lo[0]; x <= box.hi[0]; ++x, ++j)
          if (mask[j] && (overwrite || d[j] == 0)) d[j] = value;
      }
  });
}

template <class Filter, class Configure>
Result<Change> grow(LabelEditor& editor, const Volume& image, const Vec3& seedLps, int label, bool overwrite,
                    const char* name, Configure configure) {
  if (auto st = checkInputs(editor, image, label); !st) return st.error();
  auto seed = seedIndex(image, seedLps);
  if (!seed) return seed.error();
  std::vector<std::uint8_t> mask;
  try {
    visitScalarType(image.pixelType(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using In = itk::Image<T, 3>;
      using Out = itk::Image<std::uint8_t, 3>;
      using F = typename Filter::template apply<In, Out>::type;
      auto f = F::New();
      f->SetInput(wrap<T>(image));
      typename In::IndexType idx;
      for (unsigned a = 0; a < 3; ++a) idx[a] = (*seed)[a];
      f->AddSeed(idx);
      f->SetReplaceValue(1);
      configure(f.GetPointer(), static_cast<double>(image.template data<T>()[image.linearIndex(
                                    static_cast<std::size_t>(idx[0]), static_cast<std::size_t>(idx[1]), static_cast<std::size_t>(idx[2]))]));
      f->Update();
      const std::uint8_t* out = f->GetOutput()->GetBufferPointer();
      mask.assign(out, out + image.voxelCount());
    });
  } catch (const std::exception& e) {
    return Error(ErrorCode::Internal, std::string(name) + " failed: " + e.what());
  }
  return applyMask(editor, mask.data(), boxOf(mask.data(), image.size()), label, overwrite, name);
}

struct ConfidenceConnected {
  template <class In, class Out> struct apply {
    using type = itk::ConfidenceConnectedImageFilter<In, Out>;
  };
};

// Squared Euclidean distance transform along one line (Felzenszwalb & Huttenlocher),
// sample positions q * step mm. f: 0 at sites, +inf elsewhere (or a previous pass).
void edt1d(const double* f, long n, double step, double* d, std::vector<long>& v, std::vector<double>& z) {
  v.assign(static_cast<std::size_t>(n), 0);
  z.assign(static_cast<std::size_t>(n) + 1, 0);
  const double inf = std::numeric_limits<double>::infinity();
  long k = -1;
  for (long q = 0; q < n; ++q) {
    if (f[q] == inf) continue;
    const double pq = static_cast<double>(q) * step;
    double s = -inf;
    while (k >= 0) {
      const long r = v[static_cast<std::size_t>(k)];
      const double pr = static_cast<double>(r) * step;
      s = ((f[q] + pq * pq) - (f[r] + pr * pr)) / (2 * (pq - pr));
      if (s > z[static_cast<std::size_t>(k)]) break;
      --k;
    }
    ++k;
    v[static_cast<std::size_t>(k)] = q;
    z[static_cast<std::size_t>(k)] = k == 0 ? -inf : s;
    z[static_cast<std::size_t>(k) + 1] = inf;
  }
  if (k < 0) {
    for (long q = 0; q < n; ++q) d[q] = inf;
    return;
  }
  long j = 0;
  for (long q = 0; q < n; ++q) {
    const double x = static_cast<double>(q) * step;
    while (z[static_cast<std::size_t>(j) + 1] < x) ++j;
    const long r = v[static_cast<std::size_t>(j)];
    const double dx = x - static_cast<double>(r) * step;
    d[q] = dx * dx + f[r];
  }
}

// Distance (mm) from every pixel of a w x h slice to the nearest pixel where `site` is true.
std::vector<double> distanceTo(const std::vector<std::uint8_t>& site, bool want, long w, long h, double su, double sv) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> g(static_cast<std::size_t>(w * h)), line(static_cast<std::size_t>(std::max(w, h))),
      out(static_cast<std::size_t>(std::max(w, h)));
  std::vector<long> v;
  std::vector<double> z;
  for (long y = 0; y < h; ++y) {
    for (long x = 0; x < w; ++x) line[static_cast<std::size_t>(x)] = (site[static_cast<std::size_t>(y * w + x)] != 0) == want ? 0 : inf;
    edt1d(line.data(), w, su, out.data(), v, z);
    for (long x = 0; x < w; ++x) g[static_cast<std::size_t>(y * w + x)] = out[static_cast<std::size_t>(x)];
  }
  for (long x = 0; x < w; ++x) {
    for (long y = 0; y < h; ++y) line[static_cast<std::size_t>(y)] = g[static_cast<std::size_t>(y * w + x)];
    edt1d(line.data(), h, sv, out.data(), v, z);
    for (long y = 0; y < h; ++y) g[static_cast<std::size_t>(y * w + x)] = std::sqrt(out[static_cast<std::size_t>(y)]);
  }
  return g;
}

}  // namespace

Result<Change> growConnected(LabelEditor& editor, const Volume& image, const Vec3& seedLps, IntensityRange range,
                             int label, bool overwrite) {
  if (!(range.lo <= range.hi)) return Error(ErrorCode::InvalidArgument, "the intensity range is empty");
  if (auto seed = seedIndex(image, seedLps); seed && image.pixelType() != PixelType::RGB8) {
    const double v = image.scalarAt(static_cast<std::size_t>((*seed)[0]), static_cast<std::size_t>((*seed)[1]),
                                    static_cast<std::size_t>((*seed)[2]));
    if (!range.contains(v))
      return Error(ErrorCode::InvalidArgument, "the seed's value (" + std::to_string(static_cast<long long>(std::lround(v))) +
                                                   ") is outside the intensity range");
  }
  if (auto st = checkInputs(editor, image, label); !st) return st.error();
  auto seed = seedIndex(image, seedLps);
  if (!seed) return seed.error();
  std::vector<std::uint8_t> mask;
  IndexBox box;
  connectedRegion(image, *seed, range, mask, box);
  return applyMask(editor, mask.data(), box, label, overwrite, "Region growing");
}

Result<Change> growConfident(LabelEditor& editor, const Volume& image, const Vec3& seedLps, double multiplier,
                             int iterations, int initialRadius, int label, bool overwrite) {
  if (!(multiplier > 0) || iterations < 0 || initialRadius < 1)
    return Error(ErrorCode::InvalidArgument, "confidence connected needs multiplier > 0, iterations >= 0, radius >= 1");
  return grow<ConfidenceConnected>(editor, image, seedLps, label, overwrite, "Confidence connected", [&](auto* f, double) {
    f->SetMultiplier(multiplier);
    f->SetNumberOfIterations(static_cast<unsigned>(iterations));
    f->SetInitialNeighborhoodRadius(static_cast<unsigned>(initialRadius));
  });
}

Result<Change> interpolateSlices(LabelEditor& editor, int label, int axis) {
  if (label <= 0 || label > 255) return Error(ErrorCode::InvalidArgument, "label values are 1 to 255");
  if (axis < 0 || axis > 2) return Error(ErrorCode::InvalidArgument, "the slice axis is 0, 1 or 2");
  const Volume& labels = *editor.labels();
  const auto& s = labels.size();
  const int au = axis == 0 ? 1 : 0, av = axis == 2 ? 1 : 2;
  const long w = static_cast<long>(s[static_cast<std::size_t>(au)]), h = static_cast<long>(s[static_cast<std::size_t>(av)]);
  const long n = static_cast<long>(s[static_cast<std::size_t>(axis)]);
  const double su = labels.geometry().spacingMm[static_cast<std::size_t>(au)];
  const double sv = labels.geometry().spacingMm[static_cast<std::size_t>(av)];
  const auto value = static_cast<std::uint8_t>(label);
  auto index = [&](long u, long v, long k) {
    std::array<std::size_t, 3> c{};
    c[static_cast<std::size_t>(au)] = static_cast<std::size_t>(u);
    c[static_cast<std::size_t>(av)] = static_cast<std::size_t>(v);
    c[static_cast<std::size_t>(axis)] = static_cast<std::size_t>(k);
    return labels.linearIndex(c[0], c[1], c[2]);
  };
  auto sliceMask = [&](long k) {
    std::vector<std::uint8_t> m(static_cast<std::size_t>(w * h));
    const std::uint8_t* d = labels.data<std::uint8_t>();
    bool any = false;
    for (long v = 0; v < h; ++v)
      for (long u = 0; u < w; ++u) {
        const bool in = d[index(u, v, k)] == value;
        m[static_cast<std::size_t>(v * w + u)] = in;
        any = any || in;
      }
    return std::make_pair(any, m);
  };
  std::vector<long> drawn;
  for (long k = 0; k < n; ++k)
    if (sliceMask(k).first) drawn.push_back(k);
  if (drawn.size() < 2) return Error(ErrorCode::InvalidArgument, "draw the label on at least two slices to interpolate between them");
  // Signed distance (mm): negative inside, positive outside.
  auto sdf = [&](const std::vector<std::uint8_t>& m) {
    const auto toIn = distanceTo(m, true, w, h, su, sv), toOut = distanceTo(m, false, w, h, su, sv);
    std::vector<double> out(m.size());
    for (std::size_t i = 0; i < m.size(); ++i) out[i] = m[i] ? -toOut[i] : toIn[i];
    return out;
  };
  IndexBox box;
  box.lo[static_cast<std::size_t>(axis)] = drawn.front();
  box.hi[static_cast<std::size_t>(axis)] = drawn.back();
  box.hi[static_cast<std::size_t>(au)] = w - 1;
  box.hi[static_cast<std::size_t>(av)] = h - 1;
  return editor.edit("Interpolate", box, [&](Volume& l) {
    std::uint8_t* d = l.data<std::uint8_t>();
    std::vector<double> below = sdf(sliceMask(drawn.front()).second);
    for (std::size_t p = 0; p + 1 < drawn.size(); ++p) {
      const long a = drawn[p], b = drawn[p + 1];
      std::vector<double> above = sdf(sliceMask(b).second);
      for (long k = a + 1; k < b; ++k) {
        const double t = static_cast<double>(k - a) / static_cast<double>(b - a);
        for (long v = 0; v < h; ++v)
          for (long u = 0; u < w; ++u) {
            const std::size_t i = static_cast<std::size_t>(v * w + u);
            if ((1 - t) * below[i] + t * above[i] < 0) {
              const std::size_t j = index(u, v, k);
              if (d[j] == 0) d[j] = value;
            }
          }
      }
      below = std::move(above);
    }
  });
}

Result<Change> smoothLabel(LabelEditor& editor, int label, double radiusMm) {
  if (label <= 0 || label > 255) return Error(ErrorCode::InvalidArgument, "label values are 1 to 255");
  if (!(radiusMm > 0)) return Error(ErrorCode::InvalidArgument, "the smoothing radius must be positive");
  const Volume& labels = *editor.labels();
  const auto& g = labels.geometry();
  const auto value = static_cast<std::uint8_t>(label);
  // Work on the label's bounding box grown by the radius: the rest cannot change.
  IndexBox box;
  const std::uint8_t* d = labels.data<std::uint8_t>();
  std::size_t i = 0;
  for (long z = 0; z < static_cast<long>(g.size[2]); ++z)
    for (long y = 0; y < static_cast<long>(g.size[1]); ++y)
      for (long x = 0; x < static_cast<long>(g.size[0]); ++x, ++i)
        if (d[i] == value) {
          IndexBox v;
          v.lo = v.hi = {x, y, z};
          box.include(v);
        }
  if (box.empty()) return Change{};
  itk::Size<3> radius;
  for (std::size_t a = 0; a < 3; ++a) {
    radius[a] = static_cast<itk::SizeValueType>(std::lround(radiusMm / g.spacingMm[a]));
    box.lo[a] -= static_cast<long>(radius[a]);
    box.hi[a] += static_cast<long>(radius[a]);
  }
  box = box.intersected(IndexBox::of(g));
  using Img = itk::Image<std::uint8_t, 3>;
  auto mask = Img::New();
  Img::RegionType region;
  for (unsigned a = 0; a < 3; ++a) region.SetSize(a, static_cast<itk::SizeValueType>(box.hi[a] - box.lo[a] + 1));
  mask->SetRegions(region);
  mask->Allocate();
  std::uint8_t* m = mask->GetBufferPointer();
  std::size_t n = 0;
  for (long z = box.lo[2]; z <= box.hi[2]; ++z)
    for (long y = box.lo[1]; y <= box.hi[1]; ++y)
      for (long x = box.lo[0]; x <= box.hi[0]; ++x)
        m[n++] = d[labels.linearIndex(static_cast<std::size_t>(x), static_cast<std::size_t>(y), static_cast<std::size_t>(z))] == value;
  std::vector<std::uint8_t> smooth;
  try {
    auto f = itk::BinaryMedianImageFilter<Img, Img>::New();
    f->SetInput(mask);
    f->SetRadius(radius);
    f->SetForegroundValue(1);
    f->SetBackgroundValue(0);
    f->Update();
    smooth.assign(f->GetOutput()->GetBufferPointer(), f->GetOutput()->GetBufferPointer() + n);
  } catch (const std::exception& e) {
    return Error(ErrorCode::Internal, std::string("smoothing failed: ") + e.what());
  }
  return editor.edit("Smooth", box, [&](Volume& l) {
    std::uint8_t* out = l.data<std::uint8_t>();
    std::size_t k = 0;
    for (long z = box.lo[2]; z <= box.hi[2]; ++z)
      for (long y = box.lo[1]; y <= box.hi[1]; ++y)
        for (long x = box.lo[0]; x <= box.hi[0]; ++x, ++k) {
          const std::size_t j = l.linearIndex(static_cast<std::size_t>(x), static_cast<std::size_t>(y), static_cast<std::size_t>(z));
          if (smooth[k] && out[j] == 0) out[j] = value;
          else if (!smooth[k] && out[j] == value) out[j] = 0;
        }
  });
}

}  // namespace lumen::seg
