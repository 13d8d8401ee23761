// lumen-cli convert with --reference: DICOM SEG or RT Structure Set to a label map on the
// source grid, and a label map file to a SEG of its source series.

#include <iostream>

#include "CliCommands.h"
#include "lumen/imaging/DicomSeg.h"
#include "lumen/imaging/ImageIO.h"
#include "lumen/imaging/LabelMapIO.h"

namespace lumen::cli {

namespace fs = std::filesystem;

namespace {

bool endsWith(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

Result<dicom::SegAlgorithm::Type> algorithmType(const std::string& s) {
  if (s.empty() || s == "manual") return dicom::SegAlgorithm::Type::Manual;
  if (s == "semiautomatic") return dicom::SegAlgorithm::Type::SemiAutomatic;
  if (s == "automatic") return dicom::SegAlgorithm::Type::Automatic;
  return Error(ErrorCode::InvalidArgument, "--algorithm-type must be manual, semiautomatic or automatic");
}

}  // namespace

bool isSegConversion(const ConvertOptions& o) {
  return !o.reference.empty() || endsWith(o.output, ".dcm") || dicom::isLabelObjectFile(o.input);
}

int runConvertSeg(const ConvertOptions& o, const CommonOptions& common) {
  const bool toSeg = endsWith(o.output, ".dcm");
  const bool fromSeg = !toSeg && fs::is_regular_file(o.input) &&
                       dicom::isLabelObjectFile(o.input);
  if (!toSeg && !fromSeg)
    return fail("--reference is for a DICOM SEG or RT Structure Set input (to a label map) or a .dcm output (a label map "
                "to a SEG); " + o.input + " is neither");
  if (o.reference.empty())
    return fail(toSeg ? "a SEG references the series it segments: give that DICOM series with --reference"
                      : o.input + ": give the DICOM series it segments with --reference (its voxels are placed on that grid)");
  if (toSeg && io::formatFromPath(o.input) == io::ImageFormat::Unknown)
    return fail(o.input + ": a SEG is written from a label map (.nii, .nii.gz, .nrrd or .mha)");
  if (fromSeg && io::formatFromPath(o.output) == io::ImageFormat::Unknown)
    return fail(o.output + ": unknown output format (use .nii, .nii.gz or .nrrd)");
  if (!toSeg && (!o.algorithmType.empty() || !o.algorithmName.empty()))
    return fail("--algorithm-type and --algorithm-name describe a SEG being written (a .dcm output)");

  auto ref = dicom::loadSegReference(o.reference, o.seriesUid, o.volumeIndex);
  if (!ref) return fail(ref.error().toString());

  if (fromSeg) {
    auto r = dicom::readLabelObject(o.input, ref->geometry, ref->frameOfReferenceUid);
    if (!r) return fail(r.error().toString());
    if (!r->referencedSeriesUid.empty() && r->referencedSeriesUid != ref->seriesInstanceUid)
      std::cerr << "lumen-cli: warning: " << o.input << " references another series than the one given with --reference\n";
    for (const auto& n : r->notes) std::cerr << "lumen-cli: note: " << n << "\n";
    if (auto s = io::writeLabelMap(*r->labels, r->infos, o.output); !s) return fail(s.error().toString());
    if (!common.json) {
      std::cout << "wrote " << o.output << " and " << io::labelSidecarPath(o.output).string() << ": " << r->infos.size()
                << " segment(s) on the " << ref->geometry.size[0] << " x " << ref->geometry.size[1] << " x "
                << ref->geometry.size[2] << " grid of the reference\n";
    }
    return 0;
  }

  auto labels = io::readLabelMap(o.input);
  if (!labels) return fail(labels.error().toString());
  if (!labels->hasSidecar)
    std::cerr << "lumen-cli: note: no " << io::labelSidecarPath(o.input).filename().string()
              << " beside the label map: segments are named by their values and coded as tissue\n";
  auto type = algorithmType(o.algorithmType);
  if (!type) return fail(type.error().toString());
  dicom::SegWriteOptions so;
  so.algorithm.type = *type;
  so.algorithm.name = o.algorithmName;
  if (!o.seriesDescription.empty()) so.seriesDescription = o.seriesDescription;
  so.softwareVersion = LUMEN_VERSION;
  // The label map must lie on the reference's grid; a small difference of float rounding
  // in the file's affine is not a different grid.
  if (!sameGrid(labels->labels->geometry(), ref->geometry, 1e-3))
    return fail(o.input + ": not on the grid of the reference series (convert the series with `lumen-cli convert` and "
                "draw on that grid)");
  labels->labels->setGeometry(ref->geometry);
  auto w = dicom::writeSegmentation(*labels->labels, labels->infos, *ref, so, o.output);
  if (!w) return fail(w.error().toString());
  for (const auto& n : w->notes) std::cerr << "lumen-cli: note: " << n << "\n";
  if (!common.json)
    std::cout << "wrote " << o.output << ": DICOM SEG, " << w->segments << " segment(s), " << w->frames << " frame(s)\n";
  return 0;
}

}  // namespace lumen::cli
