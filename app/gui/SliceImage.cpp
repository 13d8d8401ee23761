#include "SliceImage.h"

#include <QPainter>
#include <QStringList>

#include <algorithm>
#include <cmath>

#include "lumen/imaging/DicomScanner.h"
#include "lumen/imaging/VolumeLoader.h"
#include "lumen/imaging/VolumePlanner.h"

namespace lumen::gui {

QImage sliceImage(const Volume& v, std::size_t k, const WindowLevel& wl, bool invert) {
  const auto& s = v.size();
  if (v.empty() || k >= s[2]) return {};
  const int w = static_cast<int>(s[0]), h = static_cast<int>(s[1]);
  if (v.pixelType() == PixelType::RGB8) {
    QImage img(w, h, QImage::Format_RGB888);
    const Rgb8* src = v.slice<Rgb8>(k);
    for (int j = 0; j < h; ++j) std::memcpy(img.scanLine(j), src + static_cast<std::size_t>(j) * s[0], s[0] * 3);
    return img;
  }
  QImage img(w, h, QImage::Format_Grayscale8);
  const double lo = wl.center - wl.width / 2.0, scale = 255.0 / std::max(1e-6, wl.width);
  visitScalarType(v.pixelType(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = v.slice<T>(k);
    for (int j = 0; j < h; ++j) {
      uchar* line = img.scanLine(j);
      for (int i = 0; i < w; ++i) {
        double g = (static_cast<double>(src[static_cast<std::size_t>(j) * s[0] + static_cast<std::size_t>(i)]) - lo) * scale;
        g = std::clamp(g, 0.0, 255.0);
        line[i] = static_cast<uchar>(std::lround(invert ? 255.0 - g : g));
      }
    }
  });
  return img;
}

QImage seriesThumbnail(const QStringList& files, int size) {
  if (files.isEmpty()) return {};
  const QString middle = files[files.size() / 2];
  auto scan = dicom::scanInputs({middle.toStdString()}, {});
  if (!scan || scan->files.empty()) return {};
  auto plans = dicom::planVolumes(*scan);
  if (plans.empty()) return {};
  const auto& plan = plans.front();
  auto v = dicom::loadVolume(*scan, dicom::slicePlan(plan, plan.slices.size() / 2));
  if (!v) return {};
  LoadedSeries s;
  s.info = plan.info;
  s.volume = std::make_shared<Volume>(std::move(v.value()));
  computeStatistics(s);
  QImage img = sliceImage(*s.volume, 0, defaultWindow(s));
  if (img.isNull()) return {};
  // Square, physically proportioned, on black.
  const double sx = s.volume->geometry().spacingMm.x * img.width();
  const double sy = s.volume->geometry().spacingMm.y * img.height();
  QImage scaled = img.scaled(static_cast<int>(size * std::min(1.0, sx / sy)), static_cast<int>(size * std::min(1.0, sy / sx)),
                             Qt::IgnoreAspectRatio, Qt::SmoothTransformation);
  QImage out(size, size, QImage::Format_RGB888);
  out.fill(Qt::black);
  QPainter p(&out);
  p.drawImage((size - scaled.width()) / 2, (size - scaled.height()) / 2, scaled);
  return out;
}

}  // namespace lumen::gui
