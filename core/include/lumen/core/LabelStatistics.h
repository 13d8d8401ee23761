#pragma once
// Per-label counts and volumes of a label map: what every segmentation result reports
// (lumen-cli's JSON, the AI panel), computed in one place.

#include <cstddef>
#include <vector>

#include "lumen/core/Volume.h"

namespace lumen {

struct LabelStatistic {
  int label = 0;
  std::size_t voxels = 0;
  double volumeMl = 0.0;  // voxels x voxel volume (mm^3) / 1000
};

/// Every non-zero label of an integer volume, in ascending order. Empty for RGB or float
/// volumes with non-integer values.
std::vector<LabelStatistic> labelStatistics(const Volume& labels);

}  // namespace lumen
