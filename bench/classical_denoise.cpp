// lumen-classical-denoise: ITK's classical edge-preserving and smoothing filters, slice by
// slice (2D, the same information a 2D network sees), for the denoiser's evaluation
// (models/training/eval_denoiser.py compares them with the network, each tuned on the data).
//
//   lumen-classical-denoise gaussian    IN OUT SIGMA_MM
//   lumen-classical-denoise anisotropic IN OUT ITERATIONS CONDUCTANCE [TIME_STEP]
//   lumen-classical-denoise bilateral   IN OUT DOMAIN_SIGMA_MM RANGE_SIGMA
//   lumen-classical-denoise patchbased  IN OUT PATCH_RADIUS ITERATIONS
//   lumen-classical-denoise noise       IN     (prints the noise estimate the AI panel uses, HU)
//
// IN and OUT are NIfTI/NRRD volumes; OUT is float32 on IN's grid.

#include <itkCurvatureAnisotropicDiffusionImageFilter.h>
#include <itkDiscreteGaussianImageFilter.h>
#include <itkImage.h>
#include <itkImportImageFilter.h>
#include <itkPatchBasedDenoisingImageFilter.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "lumen/imaging/Denoise.h"
#include "lumen/imaging/ImageIO.h"

namespace {

using Slice = itk::Image<float, 2>;

Slice::Pointer wrap(float* data, std::size_t nx, std::size_t ny, double sx, double sy) {
  auto imp = itk::ImportImageFilter<float, 2>::New();
  Slice::SizeType size{{nx, ny}};
  Slice::RegionType region;
  region.SetSize(size);
  imp->SetRegion(region);
  const double spacing[2] = {sx, sy};
  imp->SetSpacing(spacing);
  imp->SetImportPointer(data, nx * ny, false);
  imp->Update();
  Slice::Pointer s = imp->GetOutput();
  s->DisconnectPipeline();
  return s;
}

template <typename Filter>
Slice::Pointer run(typename Filter::Pointer f, const Slice::Pointer& in) {
  f->SetInput(in);
  f->Update();
  return f->GetOutput();
}

int usage() {
  std::cerr << "usage: lumen-classical-denoise gaussian|anisotropic|bilateral|patchbased IN OUT PARAMS...\n"
               "  gaussian SIGMA_MM | anisotropic ITERATIONS CONDUCTANCE [TIME_STEP] |\n"
               "  bilateral DOMAIN_SIGMA_MM RANGE_SIGMA | patchbased PATCH_RADIUS ITERATIONS\n"
               "       lumen-classical-denoise noise IN\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string filter = argv[1];
  auto in = lumen::io::readImage(argv[2]);
  if (!in) {
    std::cerr << "lumen-classical-denoise: " << in.error().toString() << "\n";
    return 1;
  }
  if (filter == "noise") {
    auto sd = lumen::imaging::estimateNoiseSd(*in);
    if (!sd) {
      std::cerr << "lumen-classical-denoise: " << argv[2] << ": " << sd.error().toString() << "\n";
      return 1;
    }
    std::cout << *sd << "\n";
    return 0;
  }
  if (argc < 5) return usage();
  const lumen::ImageGeometry g = in->geometry();
  auto out = lumen::Volume::allocate(lumen::PixelType::Float32, g);
  if (!out) return 1;
  // Input as float32.
  float* dst = out->data<float>();
  lumen::visitScalarType(in->pixelType(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = in->template data<T>();
    for (std::size_t i = 0; i < in->voxelCount(); ++i) dst[i] = static_cast<float>(src[i]);
  });
  const std::size_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
  const double p1 = std::atof(argv[4]), p2 = argc > 5 ? std::atof(argv[5]) : 0.0, p3 = argc > 6 ? std::atof(argv[6]) : 0.0;
  if (filter != "gaussian" && filter != "anisotropic" && filter != "bilateral" && filter != "patchbased") return usage();
  if (filter != "gaussian" && argc < 6) return usage();
  if (filter == "bilateral") {  // the workstation's own (the AI panel offers it next to the denoiser)
    auto r = lumen::imaging::bilateralDenoise(*out, p1, p2);
    if (!r) {
      std::cerr << "lumen-classical-denoise: " << r.error().toString() << "\n";
      return 1;
    }
    *out = std::move(*r);
  }
  // ITK filters are multi-threaded themselves; slices go one after another.
  for (std::size_t z = 0; filter != "bilateral" && z < nz; ++z) {
    float* s = dst + z * nx * ny;
    Slice::Pointer img = wrap(s, nx, ny, g.spacingMm.x, g.spacingMm.y);
    Slice::Pointer r;
    if (filter == "gaussian") {
      auto f = itk::DiscreteGaussianImageFilter<Slice, Slice>::New();
      f->SetVariance(p1 * p1);  // in mm (image spacing is used)
      f->SetMaximumKernelWidth(64);
      r = run<itk::DiscreteGaussianImageFilter<Slice, Slice>>(f, img);
    } else if (filter == "anisotropic") {
      auto f = itk::CurvatureAnisotropicDiffusionImageFilter<Slice, Slice>::New();
      f->SetNumberOfIterations(static_cast<unsigned>(p1));
      f->SetConductanceParameter(p2);
      // Stable time step for 2D is spacing / 2^(N+1) = spacing / 8.
      f->SetTimeStep(p3 > 0 ? p3 : 0.125 * std::min(g.spacingMm.x, g.spacingMm.y));
      r = run<itk::CurvatureAnisotropicDiffusionImageFilter<Slice, Slice>>(f, img);
    } else {
      using PB = itk::PatchBasedDenoisingImageFilter<Slice, Slice>;
      auto f = PB::New();
      f->SetPatchRadius(static_cast<unsigned>(p1));
      f->SetNumberOfIterations(static_cast<unsigned>(p2));
      f->SetNoiseModel(PB::NoiseModelEnum::GAUSSIAN);
      f->SetKernelBandwidthEstimation(true);
      r = run<PB>(f, img);
    }
    std::memcpy(s, r->GetBufferPointer(), nx * ny * sizeof(float));
  }
  if (auto st = lumen::io::writeImage(*out, argv[3]); !st) {
    std::cerr << "lumen-classical-denoise: " << st.error().toString() << "\n";
    return 1;
  }
  return 0;
}
