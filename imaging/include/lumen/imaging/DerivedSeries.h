#pragma once
// A derived image series (an AI-enhanced volume, e.g. a denoised CT) written as DICOM:
// one instance per source slice, each a copy of its source instance's header (patient,
// study, frame of reference, position, acquisition) with new pixel data, new series and
// instance UIDs, ImageType DERIVED\SECONDARY, a Derivation Description and a Source
// Image Sequence pointing at the slice it was made from. Pixels keep the source's units:
// stored values are the volume's values through the source's own rescale, so a viewer,
// a PACS and Lumen read the same HU the model gave.

#include <filesystem>
#include <string>
#include <vector>

#include "lumen/core/Result.h"
#include "lumen/core/Volume.h"
#include "lumen/imaging/DicomScanner.h"
#include "lumen/imaging/VolumePlanner.h"

namespace lumen::dicom {

struct DerivedSeriesOptions {
  std::string seriesDescription;      // LO, cut to 64 characters; empty: "<source> (derived)"
  std::string derivationDescription;  // ST: what made the images (model, version, SHA-256)
  int seriesNumber = 0;               // 0: the source series number + 2000
  /// Deterministic identity (a batch that must not send a result twice): the series and
  /// instance UIDs derived from this text; generated when empty.
  std::string uidSeed;
};

struct DerivedSeriesReport {
  std::string seriesInstanceUid;
  std::vector<std::filesystem::path> files;  // in slice order
  std::size_t clippedVoxels = 0;             // values outside what the pixel format holds
  std::vector<std::string> notes;            // what the user should know (widened or clipped range)
};

/// Writes `image` (on the grid of `plan`, values in the units the loader gives: rescaled,
/// MONOCHROME1 inverted) as a series of `plan`'s source instances into `folder`, which must
/// not exist or be empty; the files appear there all together or not at all. Refused, with
/// the reason: a volume on another grid, slices that are not plain copies of one
/// single-frame instance each (resampled, multi-frame, tilted), colour or float pixels.
Result<DerivedSeriesReport> writeDerivedSeries(const Volume& image, const ScanResult& scan, const VolumePlan& plan,
                                               const DerivedSeriesOptions& options, const std::filesystem::path& folder);

}  // namespace lumen::dicom
