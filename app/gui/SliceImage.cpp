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

QImage resultThumbnail(const QString& modality, int size) {
  struct Kind {
    const char* modality;
    const char* title;
    const char* words;
    QColor colour;
  };
  static const Kind kinds[] = {{"SEG", "SEG", "segmentation", QColor(70, 160, 90)},
                               {"SR", "SR", "structured report", QColor(80, 130, 200)},
                               {"DOC", "PDF", "report", QColor(200, 90, 70)},
                               {"RTSTRUCT", "RT", "structure set", QColor(190, 150, 60)},
                               {"PR", "PR", "presentation state", QColor(150, 110, 190)},
                               {"KO", "KO", "key images", QColor(150, 110, 190)}};
  const auto it = std::find_if(std::begin(kinds), std::end(kinds), [&](const Kind& k) { return modality == k.modality; });
  if (it == std::end(kinds)) return {};
  QImage out(size, size, QImage::Format_RGB888);
  out.fill(QColor(30, 30, 34));
  QPainter p(&out);
  p.setRenderHint(QPainter::Antialiasing);
  p.setPen(QPen(it->colour, std::max(2, size / 32)));
  p.drawRoundedRect(QRectF(size * 0.08, size * 0.08, size * 0.84, size * 0.84), size * 0.08, size * 0.08);
  QFont big = p.font();
  big.setBold(true);
  big.setPixelSize(size / 4);
  p.setFont(big);
  p.setPen(Qt::white);
  p.drawText(QRect(0, size / 5, size, size / 3), Qt::AlignCenter, it->title);
  QFont small = p.font();
  small.setBold(false);
  small.setPixelSize(std::max(8, size / 9));
  p.setFont(small);
  p.setPen(it->colour.lighter(140));
  p.drawText(QRect(size / 10, size / 2, size * 8 / 10, size * 4 / 10), Qt::AlignHCenter | Qt::AlignTop | Qt::TextWordWrap,
             it->words);
  return out;
}

}  // namespace lumen::gui
