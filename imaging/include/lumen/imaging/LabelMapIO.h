#pragma once
// Label maps with their names, colours and codes: the voxels as NIfTI / NRRD / MetaImage
// (ImageIO), the label descriptions in a JSON file beside them ("liver.nii.gz" ->
// "liver.labels.json"), read strictly.

#include <filesystem>
#include <memory>
#include <vector>

#include "lumen/core/LabelEditor.h"
#include "lumen/core/Result.h"

namespace lumen::io {

/// "x.nii.gz", "x.nii", "x.nrrd", "x.mha" -> "x.labels.json" in the same folder.
std::filesystem::path labelSidecarPath(const std::filesystem::path& image);

/// Writes the label voxels and, beside them, the descriptions (both replaced atomically).
Status writeLabelMap(const Volume& labels, const std::vector<LabelInfo>& infos, const std::filesystem::path& path);

struct LabelMapFile {
  std::shared_ptr<Volume> labels;  // uint8
  std::vector<LabelInfo> infos;    // from the sidecar; empty when there is none
  bool hasSidecar = false;
};
/// Reads a label map (integer values 0..255) and its descriptions when the sidecar exists.
Result<LabelMapFile> readLabelMap(const std::filesystem::path& path);

/// The descriptions as JSON and back (also what the study database keeps with a map).
std::string labelInfosToJson(const std::vector<LabelInfo>& infos);
Result<std::vector<LabelInfo>> labelInfosFromJson(const std::string& text, const std::string& resource);

}  // namespace lumen::io
