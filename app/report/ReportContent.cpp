#include "ReportContent.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <locale>
#include <sstream>

namespace lumen::report {

RgbImage renderSlice(const Volume& image, std::size_t k, double center, double width, const Volume* labels,
                     const std::vector<LabelInfo>& infos, const std::vector<std::vector<Vec3>>& outlines, int maxSide) {
  const auto& g = image.geometry();
  const double wmm = g.size[0] * g.spacingMm.x, hmm = g.size[1] * g.spacingMm.y;
  const double scale = maxSide / std::max(wmm, hmm);  // output pixels per mm
  RgbImage out;
  out.width = std::max(1, static_cast<int>(std::lround(wmm * scale)));
  out.height = std::max(1, static_cast<int>(std::lround(hmm * scale)));
  out.rgb.assign(static_cast<std::size_t>(out.width) * out.height * 3, 0);
  const double lo = center - width / 2, span = std::max(width, 1e-6);
  std::array<Rgb8, 256> colour{};
  std::array<bool, 256> shown{};
  for (int v = 1; v < 256; ++v) colour[v] = defaultLabelColor(v), shown[v] = true;
  for (const auto& i : infos)
    if (i.value > 0 && i.value < 256) colour[i.value] = i.color, shown[i.value] = i.visible;
  const bool withLabels = labels && labels->pixelType() == PixelType::UInt8 && labels->size() == image.size();
  for (int y = 0; y < out.height; ++y) {
    const std::size_t j = std::min(g.size[1] - 1, static_cast<std::size_t>((y + 0.5) / scale / g.spacingMm.y));
    for (int x = 0; x < out.width; ++x) {
      const std::size_t i = std::min(g.size[0] - 1, static_cast<std::size_t>((x + 0.5) / scale / g.spacingMm.x));
      const double v = image.scalarAt(i, j, k);
      const double grey = std::clamp((v - lo) / span, 0.0, 1.0) * 255.0;
      double rgb[3] = {grey, grey, grey};
      if (withLabels) {
        const std::uint8_t l = labels->data<std::uint8_t>()[labels->linearIndex(i, j, k)];
        if (l && shown[l]) {
          const double a = 0.45;
          rgb[0] = (1 - a) * rgb[0] + a * colour[l].r;
          rgb[1] = (1 - a) * rgb[1] + a * colour[l].g;
          rgb[2] = (1 - a) * rgb[2] + a * colour[l].b;
        }
      }
      std::uint8_t* p = &out.rgb[(static_cast<std::size_t>(y) * out.width + x) * 3];
      for (int c = 0; c < 3; ++c) p[c] = static_cast<std::uint8_t>(std::lround(rgb[c]));
    }
  }
  // Outlines: segments between points, sampled every half output pixel, two pixels wide.
  const auto plot = [&](double x, double y) {
    for (int dy = 0; dy < 2; ++dy)
      for (int dx = 0; dx < 2; ++dx) {
        const int px = static_cast<int>(std::floor(x)) + dx, py = static_cast<int>(std::floor(y)) + dy;
        if (px < 0 || py < 0 || px >= out.width || py >= out.height) continue;
        std::uint8_t* p = &out.rgb[(static_cast<std::size_t>(py) * out.width + px) * 3];
        p[0] = 255, p[1] = 220, p[2] = 0;
      }
  };
  for (const auto& line : outlines) {
    if (line.size() == 1) {  // a point: a small cross
      const double x = (line[0].x + 0.5) * g.spacingMm.x * scale, y = (line[0].y + 0.5) * g.spacingMm.y * scale;
      for (int d = -5; d <= 5; ++d) plot(x + d - 0.5, y - 0.5), plot(x - 0.5, y + d - 0.5);
    }
    for (std::size_t s = 0; s + 1 < line.size(); ++s) {
      // Voxel index (continuous, centre of voxel i at i) to output pixels.
      const double x0 = (line[s].x + 0.5) * g.spacingMm.x * scale, y0 = (line[s].y + 0.5) * g.spacingMm.y * scale;
      const double x1 = (line[s + 1].x + 0.5) * g.spacingMm.x * scale, y1 = (line[s + 1].y + 0.5) * g.spacingMm.y * scale;
      const int n = std::max(1, static_cast<int>(std::ceil(2 * std::hypot(x1 - x0, y1 - y0))));
      for (int t = 0; t <= n; ++t) plot(x0 + (x1 - x0) * t / n - 0.5, y0 + (y1 - y0) * t / n - 0.5);
    }
  }
  return out;
}

void describeSeries(ReportContent& c, const VolumeInfo& info) {
  c.patientName = info.patient.name;
  c.patientId = info.patient.patientId;
  c.birthDate = info.patient.birthDate;
  c.sex = info.patient.sex;
  c.studyDate = info.study.date;
  c.studyDescription = info.study.description;
  c.accession = info.study.accessionNumber;
  c.modality = info.series.modality;
  c.seriesDescription = info.series.description;
}

std::string classificationResult(const std::string& predicted, const std::vector<std::pair<std::string, double>>& probabilities,
                                 const std::string& detail) {
  std::ostringstream out;
  out.imbue(std::locale::classic());  // "0.84" whatever the GUI's locale
  out << predicted;
  for (const auto& [cls, p] : probabilities)
    if (!predicted.empty() && cls == predicted) out << " (p = " << std::fixed << std::setprecision(2) << p << ")";
  if (!detail.empty()) out << (predicted.empty() ? "" : "; ") << detail;
  return out.str();
}

std::string personName(const std::string& pn) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : pn.substr(0, pn.find('='))) {
    if (c == '^') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  std::string out = parts[0];
  if (parts.size() > 1 && !parts[1].empty()) out += ", " + parts[1];
  return out;
}

std::string isoDate(const std::string& da) {
  if (da.size() != 8) return da;
  return da.substr(0, 4) + "-" + da.substr(4, 2) + "-" + da.substr(6, 2);
}

}  // namespace lumen::report
