#pragma once
// NIfTI (.nii, .nii.gz) and NRRD (.nrrd, .nhdr) through ITK. Geometry is preserved: Lumen
// is LPS inside; ITK writes NIfTI's RAS convention on disk and converts back on reading.

#include <filesystem>
#include <vector>

#include "lumen/core/Result.h"
#include "lumen/core/Volume.h"

namespace lumen::io {

enum class ImageFormat { Nifti, Nrrd, MetaImage, Unknown };

/// Format from the file name (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd").
ImageFormat formatFromPath(const std::filesystem::path& path);

/// Writes the volume. ".gz" (and NRRD) are compressed. The file is written beside the
/// target and renamed into place, so an interrupted write never leaves a partial file
/// under the requested name.
Status writeImage(const Volume& volume, const std::filesystem::path& path);

/// Writes several 8-bit volumes on one grid (e.g. the channel masks of a segmentation) as
/// one 4D image, the channels along the fourth axis (NIfTI or NRRD; nibabel reads X, Y, Z,
/// C). Same atomic replacement as writeImage.
Status writeChannels(const std::vector<Volume>& channels, const std::filesystem::path& path);

/// Reads a volume; scalar types other than uint8/int16/uint16/float32 become float32, and
/// 3-component 8-bit images RGB. 2D images are one-slice volumes.
Result<Volume> readImage(const std::filesystem::path& path);

}  // namespace lumen::io
