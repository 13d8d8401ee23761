// lumen-bench-region-growing: region growing on a real series, Lumen's editor tool (scanline
// flood fill, written into the label map as one undoable step) side by side with ITK's
// ConnectedThresholdImageFilter (the filter alone, its output not written anywhere), same
// seed and range, in one run.
//
//   lumen-bench-region-growing SERIES [RUNS] [LO HI]
//
// The seed is voxel (2, 2, middle slice): with the default range -1100..-400 HU it grows the
// air around the patient. Prints the median of RUNS (default 5) for each and their ratio.

#include <itkConnectedThresholdImageFilter.h>
#include <itkImage.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "lumen/core/LabelEditor.h"
#include "lumen/imaging/DicomScanner.h"
#include "lumen/imaging/LabelTools.h"
#include "lumen/imaging/VolumeLoader.h"
#include "lumen/imaging/VolumePlanner.h"

using namespace lumen;

namespace {
double ms(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: lumen-bench-region-growing SERIES [RUNS] [LO HI]\n");
    return 2;
  }
  const int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  const double lo = argc > 4 ? std::atof(argv[3]) : -1100, hi = argc > 4 ? std::atof(argv[4]) : -400;
  auto scan = dicom::scanInputs({argv[1]}, {});
  if (!scan) return std::fprintf(stderr, "%s\n", scan.error().toString().c_str()), 1;
  auto plans = dicom::planVolumes(*scan);
  if (plans.empty()) return std::fprintf(stderr, "no volume\n"), 1;
  auto image = dicom::loadVolume(*scan, plans.front());
  if (!image) return std::fprintf(stderr, "%s\n", image.error().toString().c_str()), 1;
  if (image->pixelType() != PixelType::Int16) return std::fprintf(stderr, "expects an int16 CT\n"), 1;
  const auto& g = image->geometry();
  const Vec3 seed = g.ijkToLps({2, 2, static_cast<double>(g.size[2] / 2)});

  std::vector<double> lumenMs, itkMs;
  std::size_t lumenVoxels = 0, itkVoxels = 0;
  for (int r = 0; r < runs; ++r) {
    auto labels = *LabelEditor::emptyLabelsFor(*image);
    LabelEditor editor(labels);
    const auto t0 = std::chrono::steady_clock::now();
    auto c = seg::growConnected(editor, *image, seed, {lo, hi}, 1);
    lumenMs.push_back(ms(t0));
    if (!c) return std::fprintf(stderr, "%s\n", c.error().toString().c_str()), 1;
    lumenVoxels = c->voxels;

    using Img = itk::Image<std::int16_t, 3>;
    auto img = Img::New();
    Img::RegionType region;
    for (unsigned a = 0; a < 3; ++a) region.SetSize(a, g.size[a]);
    img->SetRegions(region);
    img->GetPixelContainer()->SetImportPointer(image->data<std::int16_t>(), image->voxelCount(), false);
    auto f = itk::ConnectedThresholdImageFilter<Img, itk::Image<std::uint8_t, 3>>::New();
    f->SetInput(img);
    f->SetLower(static_cast<std::int16_t>(std::max(lo, -32768.0)));
    f->SetUpper(static_cast<std::int16_t>(std::min(hi, 32767.0)));
    f->SetReplaceValue(1);
    Img::IndexType idx;
    idx[0] = 2;
    idx[1] = 2;
    idx[2] = static_cast<long>(g.size[2] / 2);
    f->AddSeed(idx);
    const auto t1 = std::chrono::steady_clock::now();
    f->Update();
    itkMs.push_back(ms(t1));
    itkVoxels = 0;
    const std::uint8_t* out = f->GetOutput()->GetBufferPointer();
    for (std::size_t i = 0; i < image->voxelCount(); ++i) itkVoxels += out[i] != 0;
  }
  std::printf("grid=%zux%zux%zu range=%g..%g voxels lumen=%zu itk=%zu\n", g.size[0], g.size[1], g.size[2], lo, hi,
              lumenVoxels, itkVoxels);
  std::printf("median of %d: lumen_ms=%.0f itk_connected_threshold_ms=%.0f ratio=%.2f\n", runs, median(lumenMs),
              median(itkMs), median(lumenMs) / median(itkMs));
  return lumenVoxels == itkVoxels ? 0 : 1;
}
