#include "DenoiseAdvice.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <algorithm>
#include <cmath>

namespace lumen::gui {

std::optional<DenoiseCard> readDenoiseCard(const QString& bundleRoot, QString* error) {
  QFile f(bundleRoot + "/docs/metrics.json");
  if (!f.exists() || !f.open(QIODevice::ReadOnly)) return std::nullopt;
  QJsonParseError pe;
  const QJsonObject root = QJsonDocument::fromJson(f.readAll(), &pe).object();
  if (pe.error != QJsonParseError::NoError) {
    if (error) *error = f.fileName() + ": " + pe.errorString();
    return std::nullopt;
  }
  const QJsonObject settings = root.value("classical_settings").toObject();
  DenoiseCard card;
  card.pixelMm = root.value("pixel_mm").toDouble();
  // The whole held-out scan when it was evaluated, else the quick (CI) slices.
  for (const char* evaluation : {"full", "quick"}) {
    const QJsonObject levels = root.value(evaluation).toObject();
    for (auto it = levels.begin(); it != levels.end(); ++it) {
      const QJsonObject l = it.value().toObject();
      const QJsonArray bilateral = settings.value(it.key()).toObject().value("bilateral").toArray();
      const QJsonValue network = l.value("network").toObject().value("psnr"), filter = l.value("bilateral").toObject().value("psnr");
      if (!l.value("estimated_sd_hu").isDouble() || !network.isDouble() || !filter.isDouble() || bilateral.size() != 2) continue;
      CardLevel c;
      c.estimatedSd = l.value("estimated_sd_hu").toDouble();
      c.trueSd = l.value("measured_sd_hu").toDouble();
      c.networkPsnr = network.toDouble();
      c.classicalPsnr = filter.toDouble();
      c.domainMm = bilateral[0].toDouble();
      c.rangeSds = bilateral[1].toDouble();
      if (c.estimatedSd > 0 && c.trueSd > 0 && c.domainMm > 0 && c.rangeSds > 0) card.levels.push_back(c);
    }
    if (!card.levels.empty()) {
      card.evaluation = evaluation;
      break;
    }
  }
  if (card.levels.empty()) {
    if (error && (root.contains("full") || root.contains("quick")))
      *error = f.fileName() + ": no noise level with a bilateral-filter comparison";
    return std::nullopt;
  }
  std::sort(card.levels.begin(), card.levels.end(),
            [](const CardLevel& a, const CardLevel& b) { return a.estimatedSd < b.estimatedSd; });
  return card;
}

DenoiseAdvice adviseDenoising(const DenoiseCard& card, double estimatedSd, double pixelMm) {
  DenoiseAdvice a;
  const auto& ls = card.levels;
  // Nearest on a log scale: noise levels are a ladder of ratios.
  const auto nearest = std::min_element(ls.begin(), ls.end(), [&](const CardLevel& x, const CardLevel& y) {
    return std::abs(std::log(x.estimatedSd / estimatedSd)) < std::abs(std::log(y.estimatedSd / estimatedSd));
  });
  a.level = *nearest;
  a.gainDb = a.level.networkPsnr - a.level.classicalPsnr;
  a.networkBetter = a.gainDb > 0;
  // The level's true SD scaled by how far the series' reading is from the level's reading.
  a.rangeHu = a.level.rangeSds * a.level.trueSd * estimatedSd / a.level.estimatedSd;
  // Half a step beyond either end of the ladder still counts as covered.
  const double lo = ls.front().estimatedSd, hi = ls.back().estimatedSd;
  const double margin = ls.size() > 1 ? std::sqrt(ls[1].estimatedSd / lo) : 1.2;
  const double marginHi = ls.size() > 1 ? std::sqrt(hi / ls[ls.size() - 2].estimatedSd) : 1.2;
  a.inRange = estimatedSd >= lo / margin && estimatedSd <= hi * marginHi;
  const QString noise = QString("Noise in soft tissue: about %1 HU (estimated).").arg(estimatedSd, 0, 'f', 1);
  // Within a factor of 1.3 of the card's pixel size.
  if (card.pixelMm > 0 && pixelMm > 0 && std::abs(std::log(pixelMm / card.pixelMm)) > std::log(1.3)) {
    a.inRange = false;
    a.text = noise + QString(" The model card was measured at %1 mm pixels and this series has %2 mm ones, where noise "
                             "has another grain: neither is recommended; compare both with the original.")
                         .arg(card.pixelMm, 0, 'f', 2)
                         .arg(pixelMm, 0, 'f', 2);
    return a;
  }
  if (!a.inRange) {
    a.text = noise + QString(" The model card measured %1 to %2 HU (as estimated); this series is outside that range, "
                             "so neither is recommended: compare both with the original.")
                         .arg(lo, 0, 'f', 1)
                         .arg(hi, 0, 'f', 1);
    return a;
  }
  a.text = noise + QString(" At that noise the model card (%1 held-out evaluation) measured the network at %2 dB and "
                           "the bilateral filter at %3 dB PSNR: <b>%4</b> recommended.")
                       .arg(card.evaluation)
                       .arg(a.level.networkPsnr, 0, 'f', 1)
                       .arg(a.level.classicalPsnr, 0, 'f', 1)
                       .arg(a.networkBetter ? "the network is" : "the bilateral filter is");
  return a;
}

}  // namespace lumen::gui
