#pragma once
// Which denoiser to use for a series: the AI model or the classical filter offered next to
// it (ITK's bilateral), as the model's card measured them on held-out CT at a ladder of noise
// levels (docs/metrics.json, written by models/training/eval_denoiser.py). The series is
// placed on the ladder by its noise, read with the same estimator the card used.

#include <QString>

#include <optional>
#include <vector>

namespace lumen::gui {

struct CardLevel {
  double estimatedSd = 0;   // what the noise estimator reads at this level (HU)
  double trueSd = 0;        // the level's true noise SD in soft tissue (HU)
  double networkPsnr = 0;   // dB, over the head against the noise-free reference
  double classicalPsnr = 0; // the bilateral filter at its best setting for this level
  double domainMm = 0;      // that setting
  double rangeSds = 0;      // its range width in units of the true noise SD
};

struct DenoiseCard {
  std::vector<CardLevel> levels;  // by increasing noise
  QString evaluation;             // which evaluation the numbers are from ("full" or "quick")
  double pixelMm = 0;             // the evaluation's in-plane pixel size (0: not recorded)
};

/// The card of the bundle at `bundleRoot`, or nullopt when it has none with a classical
/// comparison (`error` says why when the file exists but cannot be used).
std::optional<DenoiseCard> readDenoiseCard(const QString& bundleRoot, QString* error = nullptr);

struct DenoiseAdvice {
  bool inRange = false;      // the series' noise lies within the card's ladder, at pixels like the card's
  bool networkBetter = false;
  double gainDb = 0;         // network minus classical PSNR at the nearest level
  CardLevel level;           // the nearest level (its settings are used either way)
  double rangeHu = 0;        // the bilateral filter's range width for this series
  QString text;              // for the panel
};

/// Advice for a series whose noise estimate is `estimatedSd` HU and whose in-plane pixels
/// measure `pixelMm` (noise of one SD has another grain at another pixel size, so a card
/// measured at 1 mm says nothing about 0.3 mm pixels: no recommendation beyond a factor of
/// 1.3 either way).
DenoiseAdvice adviseDenoising(const DenoiseCard& card, double estimatedSd, double pixelMm);

}  // namespace lumen::gui
