#include "lumen/core/LabelStatistics.h"

#include <cmath>
#include <map>

namespace lumen {

std::vector<LabelStatistic> labelStatistics(const Volume& labels) {
  std::vector<LabelStatistic> out;
  if (labels.empty() || labels.pixelType() == PixelType::RGB8) return out;
  std::map<long, std::size_t> counts;
  bool integral = true;
  visitScalarType(labels.pixelType(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* d = labels.template data<T>();
    for (std::size_t i = 0; i < labels.voxelCount(); ++i) {
      if (d[i] == T(0)) continue;
      const double v = static_cast<double>(d[i]);
      if (v != std::floor(v)) {
        integral = false;
        return;
      }
      ++counts[static_cast<long>(v)];
    }
  });
  if (!integral) return out;
  const auto& sp = labels.geometry().spacingMm;
  const double voxelMl = sp.x * sp.y * sp.z / 1000.0;
  for (const auto& [label, n] : counts) out.push_back({static_cast<int>(label), n, static_cast<double>(n) * voxelMl});
  return out;
}

}  // namespace lumen
