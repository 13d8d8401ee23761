// The AI panel's denoising advice: for a denoiser whose model card compares it with ITK's
// bilateral filter, the series' noise is measured off the GUI thread and the panel
// recommends what the card found better at that noise; the filter runs with the card's
// setting. (The rest of the panel: AiPanel.cpp.)

#include "AiPanel.h"

#include <QLabel>
#include <QListWidget>
#include <QPointer>
#include <QPushButton>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <utility>

namespace lumen::gui {

void AiPanel::updateAdvice() {
  const int seq = ++adviceSeq_;
  card_.reset();
  const int i = list_->currentRow();
  if (i >= 0 && i < static_cast<int>(bundles_.size()) && bundles_[static_cast<std::size_t>(i)].task == models::Task::Enhancement) {
    QString error;
    card_ = readDenoiseCard(QString::fromStdString(bundles_[static_cast<std::size_t>(i)].root.string()), &error);
    if (!error.isEmpty()) host_->addMessage("AI: " + error);
  }
  advice_->setVisible(card_.has_value());
  classical_->setVisible(card_.has_value());
  run_->setText("Run on current series");
  classical_->setText("Bilateral filter (ITK) instead");
  if (!card_) return;
  std::shared_ptr<LoadedSeries> series = host_->currentSeries();
  advisedSeries_ = series;
  if (!series || !series->volume || series->isColor()) {
    advice_->setText("Open a CT series: the model card then says whether the network or the bilateral filter does "
                     "better at its noise.");
    Q_EMIT adviceShown();
    return;
  }
  advice_->setText("Measuring the noise of the series...");
  const DenoiseCard card = *card_;
  const QString name = QString::fromStdString(series->info.series.description);
  QPointer<AiPanel> self(this);
  const AiHost::ClassicalTools tools = host_->classicalTools();
  const double pixel = series->volume->geometry().spacingMm.x;
  (void)QtConcurrent::run([self, tools, series, card, name, seq, pixel] {
    Result<double> est = Error(ErrorCode::Internal, "noise estimate failed");
    try {
      est = tools.estimateNoise(*series->volume);
    } catch (const std::exception& e) {
      est = Error(ErrorCode::OutOfMemory, std::string("noise estimate failed: ") + e.what());
    }
    auto shared = std::make_shared<Result<double>>(std::move(est));
    post(self, [shared, card, name, seq, pixel](AiPanel& p) {
      if (seq != p.adviceSeq_) return;
      if (!*shared)
        p.advice_->setText("No recommendation for this series: " + QString::fromStdString(shared->error().message));
      else
        p.showAdvice(adviseDenoising(card, **shared, pixel), name);
      Q_EMIT p.adviceShown();
    });
  });
}

void AiPanel::showAdvice(const DenoiseAdvice& a, const QString& series) {
  advice_->setText((series.isEmpty() ? QString() : "<i>" + series.toHtmlEscaped() + "</i>: ") + a.text);
  const bool network = a.inRange && a.networkBetter, classical = a.inRange && !a.networkBetter;
  run_->setText(network ? "Run on current series (recommended)" : "Run on current series");
  classical_->setText(QString("Bilateral filter (ITK, %1 mm, %2 HU)%3")
                          .arg(a.level.domainMm, 0, 'g', 3)
                          .arg(a.rangeHu, 0, 'f', 0)
                          .arg(classical ? " (recommended)" : " instead"));
}

bool AiPanel::runClassical() {
  if (busy_ || !card_) return false;
  lastRunOk_ = false;
  std::shared_ptr<LoadedSeries> series = seriesToRun("the bilateral filter");
  if (!series) return false;
  busy_ = true;
  run_->setEnabled(false);
  classical_->setEnabled(false);
  cancel_ = CancelToken{};
  const CancelToken cancel = cancel_;
  job_ = host_->beginTask("Bilateral filter", [cancel] { cancel.cancel(); });
  const DenoiseCard card = *card_;
  const int seq = ++adviceSeq_;  // the advice below replaces any estimate in flight
  QPointer<AiPanel> self(this);
  const AiHost::ClassicalTools tools = host_->classicalTools();
  const double pixel = series->volume->geometry().spacingMm.x;
  (void)QtConcurrent::run([self, tools, series, card, cancel, seq, pixel] {
    // Measured now, on the series it runs on (the one shown may have changed since the
    // advice was made).
    try {
      auto est = tools.estimateNoise(*series->volume);
      if (est && !(*est > 0)) est = Error(ErrorCode::InvalidArgument, "the series shows no noise to set the filter by");
      if (!est) {
        auto failed = std::make_shared<Result<Volume>>(est.error());
        post(self, [series, failed](AiPanel& p) { p.finishClassical(series, std::move(*failed), {}, 0); });
        return;
      }
      const DenoiseAdvice advice = adviseDenoising(card, *est, pixel);
      post(self, [advice, seq, name = QString::fromStdString(series->info.series.description)](AiPanel& p) {
        if (seq == p.adviceSeq_) p.showAdvice(advice, name);
      });
      auto r = tools.bilateralDenoise(*series->volume, advice.level.domainMm, advice.rangeHu, jobProgress(self), cancel);
      if (r) r = models::inInputType(std::move(*r), models::Task::Enhancement, series->volume->pixelType());
      auto shared = std::make_shared<Result<Volume>>(std::move(r));
      post(self, [series, shared, advice, sd = *est](AiPanel& p) { p.finishClassical(series, std::move(*shared), advice, sd); });
    } catch (const std::exception& e) {
      auto failed = std::make_shared<Result<Volume>>(Error(ErrorCode::OutOfMemory, std::string("bilateral filter failed: ") + e.what()));
      post(self, [series, failed](AiPanel& p) { p.finishClassical(series, std::move(*failed), {}, 0); });
    }
  });
  return true;
}

void AiPanel::finishClassical(std::shared_ptr<LoadedSeries> input, Result<Volume> r, const DenoiseAdvice& advice,
                              double estimatedSd) {
  busy_ = false;
  // Another series may have come on screen during the run: once this result is shown.
  QMetaObject::invokeMethod(this, &AiPanel::seriesChanged, Qt::QueuedConnection);
  run_->setEnabled(true);
  classical_->setEnabled(true);
  const int job = std::exchange(job_, -1);
  if (!r) {
    const bool cancelled = r.error().code == ErrorCode::Cancelled;
    const QString msg = QString::fromStdString(r.error().toString());
    host_->addMessage(cancelled ? "AI: bilateral filter cancelled" : "AI: error: bilateral filter: " + msg);
    if (advice_->text().endsWith("..."))  // its estimate replaced the advice's, and failed
      advice_->setText("No recommendation for this series: " + QString::fromStdString(r.error().message));
    host_->endTask(job, cancelled ? "Bilateral filter cancelled" : "Bilateral filter failed");
    Q_EMIT runFinished(false, msg);
    return;
  }
  lastRunOk_ = true;
  clearResult();
  const QString setting = QString("domain %1 mm, range %2 HU").arg(advice.level.domainMm, 0, 'g', 3).arg(advice.rangeHu, 0, 'f', 1);
  auto* title = new QLabel(QString("<b>Bilateral filter (ITK)</b>: %1, for noise of about %2 HU").arg(setting).arg(estimatedSd, 0, 'f', 1));
  title->setObjectName("AiResultTitle");
  title->setWordWrap(true);
  resultLayout_->addWidget(title);
  showEnhanced(input, std::move(*r), "bilateral filter",
               "Made by ITK's bilateral filter in Lumen, axial slices, " + setting +
                   (advice.inRange ? QString(" (the denoiser card's best setting for this noise)")
                                   : QString(" (the setting of the denoiser card's nearest noise level; this series lies "
                                             "outside what the card measured)")));
  host_->endTask(job, "Bilateral filter: filtered series shown");
  Q_EMIT runFinished(true, {});
}

}  // namespace lumen::gui
