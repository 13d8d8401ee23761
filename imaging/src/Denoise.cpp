#include "lumen/imaging/Denoise.h"

#include <itkBilateralImageFilter.h>
#include <itkImage.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace lumen::imaging {

namespace {

using Slice = itk::Image<float, 2>;

// Index reflected at the border as scipy.ndimage's "reflect" mode (d c b a | a b c d), which
// the training scripts' estimator uses.
inline std::size_t reflect(long i, std::size_t n) {
  const long m = static_cast<long>(n);
  while (i < 0 || i >= m) i = i < 0 ? -i - 1 : 2 * m - i - 1;
  return static_cast<std::size_t>(i);
}

// Box mean of width 2r + 1 (separable running sums, reflected border).
std::vector<float> boxMean(const std::vector<float>& in, std::size_t nx, std::size_t ny, int r) {
  std::vector<float> tmp(in.size()), out(in.size());
  const double norm = 1.0 / static_cast<double>(2 * r + 1);
  // One line (n samples at `stride`) of src into dst.
  auto line = [r, norm](const float* src, float* dst, std::size_t n, std::size_t stride) {
    auto at = [&](long i) { return static_cast<double>(src[reflect(i, n) * stride]); };
    double sum = 0;
    for (long d = -r; d <= r; ++d) sum += at(d);
    for (std::size_t i = 0; i < n; ++i) {
      dst[i * stride] = static_cast<float>(sum * norm);
      sum += at(static_cast<long>(i) + r + 1) - at(static_cast<long>(i) - r);
    }
  };
  for (std::size_t y = 0; y < ny; ++y) line(in.data() + y * nx, tmp.data() + y * nx, nx, 1);
  for (std::size_t x = 0; x < nx; ++x) line(tmp.data() + x, out.data() + x, ny, nx);
  return out;
}

double median(std::vector<double>& v) {
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  if (v.size() % 2 == 1) return *mid;
  return 0.5 * (*mid + *std::max_element(v.begin(), mid));
}

}  // namespace

Result<double> estimateNoiseSd(const Volume& ct) {
  if (ct.empty() || ct.pixelType() == PixelType::RGB8)
    return Error(ErrorCode::InvalidArgument, "noise estimate: needs a greyscale CT volume");
  const std::size_t nx = ct.size()[0], ny = ct.size()[1], nz = ct.size()[2];
  constexpr std::size_t kMinPixels = 2000;  // ct_eval_data: slices with less are not measured
  std::vector<double> perSlice;
  std::vector<float> hu(nx * ny), inside(nx * ny);
  // Up to kMaxSlices evenly spaced slices: the median needs no more, and the AI panel's
  // advice stays quick on a 500-slice series.
  constexpr std::size_t kMaxSlices = 24;
  const std::size_t count = std::min(nz, kMaxSlices);
  for (std::size_t k = 0; k < count; ++k) {
    const std::size_t z = count == nz ? k : (k * (nz - 1) + (count - 1) / 2) / (count - 1);
    visitScalarType(ct.pixelType(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* s = ct.template data<T>() + z * nx * ny;
      for (std::size_t i = 0; i < nx * ny; ++i) hu[i] = static_cast<float>(s[i]);
    });
    // Soft tissue is found in the 7 x 7 mean, so that noise (up to 100 HU and more) does not
    // break it up; whole 7 x 7 neighbourhoods of it keep edges out.
    const std::vector<float> mean7 = boxMean(hu, nx, ny, 3);
    for (std::size_t i = 0; i < nx * ny; ++i) inside[i] = mean7[i] > -20.0f && mean7[i] < 100.0f ? 1.0f : 0.0f;
    const std::vector<float> homogeneous = boxMean(inside, nx, ny, 3);
    const std::vector<float> mean3 = boxMean(hu, nx, ny, 1);
    std::vector<double> r;
    for (std::size_t i = 0; i < nx * ny; ++i)
      if (homogeneous[i] > 0.999f) r.push_back(static_cast<double>(hu[i]) - static_cast<double>(mean3[i]));
    if (r.size() < kMinPixels) continue;
    std::vector<double> dev = r;
    const double m = median(dev);
    for (double& d : r) d = std::abs(d - m);
    perSlice.push_back(1.4826 * median(r) / std::sqrt(1.0 - 1.0 / 9.0));
  }
  if (perSlice.empty())
    return Error(ErrorCode::InvalidArgument,
                 "noise estimate: no slice shows enough homogeneous soft tissue (2000 pixels within -20..100 HU)");
  return median(perSlice);
}

Result<Volume> bilateralDenoise(const Volume& ct, double domainMm, double rangeHu, const Progress& progress,
                                const CancelToken& cancel) {
  if (ct.empty() || ct.pixelType() == PixelType::RGB8)
    return Error(ErrorCode::InvalidArgument, "bilateral filter: needs a greyscale volume");
  if (!(domainMm > 0) || !(rangeHu > 0))
    return Error(ErrorCode::InvalidArgument, "bilateral filter: the domain and range widths must be positive");
  const ImageGeometry& g = ct.geometry();
  auto out = Volume::allocate(PixelType::Float32, g);
  if (!out) return out.error();
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  float* dst = out->data<float>();
  visitScalarType(ct.pixelType(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = ct.template data<T>();
    for (std::size_t i = 0; i < ct.voxelCount(); ++i) dst[i] = static_cast<float>(src[i]);
  });
  for (std::size_t z = 0; z < nz; ++z) {
    if (cancel.isCancelled()) return Error(ErrorCode::Cancelled, "cancelled");
    auto img = Slice::New();
    Slice::RegionType region;
    region.SetSize({{nx, ny}});
    img->SetRegions(region);
    const double spacing[2] = {g.spacingMm.x, g.spacingMm.y};
    img->SetSpacing(spacing);
    // ITK neither copies nor frees the buffer; the filter writes a new image.
    img->GetPixelContainer()->SetImportPointer(dst + z * nx * ny, nx * ny, false);
    auto f = itk::BilateralImageFilter<Slice, Slice>::New();
    f->SetInput(img);
    f->SetDomainSigma(domainMm);
    f->SetRangeSigma(rangeHu);
    try {
      f->Update();
    } catch (const itk::ExceptionObject& e) {
      return Error(ErrorCode::Internal, std::string("bilateral filter: ") + e.GetDescription());
    }
    std::memcpy(dst + z * nx * ny, f->GetOutput()->GetBufferPointer(), nx * ny * sizeof(float));
    progress.report(static_cast<double>(z + 1) / static_cast<double>(nz), "bilateral filter");
  }
  return std::move(*out);
}

}  // namespace lumen::imaging
