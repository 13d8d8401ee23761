#include "AiPanel.h"

#include <QCheckBox>
#include <QMessageBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QProgressBar>
#include <QPointer>
#include <QPushButton>
#include <QApplication>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "ReportContent.h"
#include "lumen/core/InstallPaths.h"
#include "lumen/core/LabelStatistics.h"
#include "lumen/models/Device.h"
#include "lumen/models/Trust.h"

#ifndef LUMEN_SHIPPED_MODELS
#define LUMEN_SHIPPED_MODELS ""
#endif

namespace lumen::gui {

namespace {

QString taskName(models::Task t) {
  switch (t) {
    case models::Task::Segmentation: return "segmentation";
    case models::Task::Classification: return "classification";
    case models::Task::Enhancement: return "enhancement";
  }
  return {};
}

std::filesystem::path shippedModels() { return shippedModelsDir(LUMEN_SHIPPED_MODELS); }

}  // namespace

AiPanel::AiPanel(AiHost* host, QWidget* parent) : QWidget(parent), host_(host) {
  setObjectName("AiPanel");
  setMinimumWidth(kAiPanelMinimumWidth);
  auto* l = new QVBoxLayout(this);
  l->setContentsMargins(6, 6, 6, 6);
  list_ = new QListWidget;
  list_->setObjectName("AiModelList");
  list_->setMaximumHeight(150);
  l->addWidget(list_);
  details_ = new QLabel;
  details_->setObjectName("AiModelDetails");
  details_->setWordWrap(true);
  details_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  l->addWidget(details_);

  auto* row = new QHBoxLayout;
  device_ = new QComboBox;
  device_->setObjectName("AiDevice");
  device_->addItem("Auto", "auto");
  device_->addItem("CPU", "cpu");
  // Probing CUDA initialises the driver (seconds on some machines): off the GUI thread.
  {
    QPointer<AiPanel> self(this);
    (void)QtConcurrent::run([self] {
      const bool cuda = static_cast<bool>(models::chooseDevice("cuda"));
      const QString description = QString::fromStdString(models::torchDescription());
      QMetaObject::invokeMethod(
          qApp,
          [self, cuda, description] {
            if (!self) return;
            if (cuda) self->device_->addItem("CUDA", "cuda");
            self->device_->setToolTip(description);
          },
          Qt::QueuedConnection);
    });
  }
  row->addWidget(new QLabel("Device"));
  row->addWidget(device_, 1);
  auto* rescan = new QPushButton("Rescan");
  rescan->setToolTip("Look for model bundles again (user folder, LUMEN_MODEL_PATH, shipped models)");
  row->addWidget(rescan);
  l->addLayout(row);
  // On a row of its own: the panel arrives after the window is laid out, and must fit the
  // dock's width then rather than widen it (which would resize, and re-render, every view).
  run_ = new QPushButton("Run on current series");
  run_->setObjectName("AiRun");
  l->addWidget(run_);
  // For a denoiser whose card compares it with a classical filter: which of the two the
  // card shows to be better at this series' noise, and the filter itself.
  advice_ = new QLabel;
  advice_->setObjectName("AiDenoiseAdvice");
  advice_->setWordWrap(true);
  advice_->setVisible(false);
  l->addWidget(advice_);
  classical_ = new QPushButton("Bilateral filter (ITK) instead");
  classical_->setObjectName("AiRunClassical");
  classical_->setToolTip("The classical edge-preserving filter, at the setting the model card found best for this noise");
  classical_->setVisible(false);
  l->addWidget(classical_);

  result_ = new QWidget;
  result_->setObjectName("AiResult");
  resultLayout_ = new QVBoxLayout(result_);
  resultLayout_->setContentsMargins(0, 4, 0, 0);
  l->addWidget(result_);
  l->addStretch(1);
  auto* note = new QLabel("Research models: results are for review, not for diagnosis.");
  note->setWordWrap(true);
  note->setStyleSheet("color: #a0a0a8;");
  l->addWidget(note);

  connect(list_, &QListWidget::currentRowChanged, this, [this] { showDetails(); });
  connect(run_, &QPushButton::clicked, this, [this] { runSelected(); });
  connect(classical_, &QPushButton::clicked, this, [this] { runClassical(); });
  host_->watchCurrentSeries(this, [this] { seriesChanged(); });
  connect(rescan, &QPushButton::clicked, this, [this] { refresh(); });
  refresh();
}

AiPanel::~AiPanel() { cancel_.cancel(); }

// The advice is about the series on screen; a derived one (a denoised result) keeps the
// advice about its source.
void AiPanel::seriesChanged() {
  if (!card_ || busy_) return;  // after a run, finish() looks again
  const auto shown = host_->currentSeries();
  if (shown && shown->derived) return;
  if (shown != advisedSeries_.lock()) updateAdvice();
}

void AiPanel::refresh() {
  if (discovering_) return;
  discovering_ = true;
  run_->setEnabled(false);
  classical_->setEnabled(false);
  details_->setText("Looking for model bundles...");
  // Reading bundles hashes every model.ts (hundreds of MB for large models): a worker.
  QPointer<AiPanel> self(this);
  (void)QtConcurrent::run([self] {
    auto entries = models::discoverBundles(models::modelSearchPath(shippedModels()));
    auto shared = std::make_shared<std::vector<models::BundleEntry>>(std::move(entries));
    QMetaObject::invokeMethod(
        qApp,
        [self, shared] {
          if (self) self->showModels(std::move(*shared));
        },
        Qt::QueuedConnection);
  });
}

void AiPanel::showModels(std::vector<models::BundleEntry> entries) {
  discovering_ = false;
  const QString current = list_->currentItem() ? list_->currentItem()->data(Qt::UserRole).toString() : QString();
  list_->clear();
  bundles_.clear();
  int unusable = 0;
  for (auto& e : entries) {
    if (!e.bundle) {
      // One bad folder says why and does not keep the others from loading.
      ++unusable;
      host_->addMessage(QString("AI: model folder %1 unusable: %2").arg(QString::fromStdString(e.dir.string()), QString::fromStdString(e.error)));
      continue;
    }
    const auto& b = *e.bundle;
    bundles_.push_back(b);
    auto* item = new QListWidgetItem(QString("%1  (%2%3)")
                                         .arg(QString::fromStdString(b.displayName()), taskName(b.task),
                                              b.input.modality.empty() ? QString() : ", " + QString::fromStdString(b.input.modality)));
    item->setData(Qt::UserRole, QString::fromStdString(b.name));
    item->setToolTip(QString::fromStdString(b.description));
    list_->addItem(item);
    if (QString::fromStdString(b.name) == current) list_->setCurrentItem(item);
  }
  if (!list_->currentItem() && list_->count() > 0) list_->setCurrentRow(0);
  if (bundles_.empty())
    details_->setText("No model bundles found. Put MONAI bundles in the user model folder or LUMEN_MODEL_PATH.");
  else if (unusable > 0)
    host_->addMessage(QString("AI: %1 model folder(s) could not be used (reasons above)").arg(unusable));
  run_->setEnabled(!bundles_.empty() && !busy_);
  classical_->setEnabled(!busy_);
  Q_EMIT modelsListed();
  if (!pendingRun_.isEmpty()) {
    const QString name = std::exchange(pendingRun_, QString());
    if (!runModel(name)) Q_EMIT runFinished(false, "model " + name + " did not start (see Messages)");
  }
}

bool AiPanel::confirmTrust(const models::Bundle& bundle) {
  auto store = models::TrustStore::load();
  if (!store) {
    host_->addMessage("AI: error: " + QString::fromStdString(store.error().toString()));
    return false;
  }
  const auto state = models::trustOf(bundle.root.string(), bundle.modelSha256, *store, shippedModels());
  if (state == models::TrustState::Shipped || state == models::TrustState::Trusted) return true;
  const QString name = QString::fromStdString(bundle.displayName());
  if (!askToTrust_ && state == models::TrustState::NotTrusted) {
    host_->addMessage("AI: " + name + " is not trusted (a bundle runs code inside Lumen): trust it in the AI panel or with "
                      "lumen-cli models --trust " + QString::fromStdString(bundle.name));
    return false;
  }
  if (state == models::TrustState::Modified) {
    host_->addMessage("AI: error: " + name + ": this shipped model does not match the SHA-256 Lumen was built with "
                      "(the installation was changed); it is not run");
    return false;
  }
  QMessageBox box(QMessageBox::Warning, "Trust this model?",
                  QString("%1 is not one of the models shipped with Lumen, and you have not trusted it before.\n\n"
                          "A model bundle is code: it runs inside Lumen with your rights. Run it only if you trust "
                          "where it comes from.\n\nFolder: %2\nSHA-256: %3")
                      .arg(name, QString::fromStdString(bundle.root.string()), QString::fromStdString(bundle.modelSha256)),
                  QMessageBox::Yes | QMessageBox::Cancel, this);
  box.setObjectName("TrustModelQuestion");
  box.button(QMessageBox::Yes)->setText("Trust and run");
  box.setDefaultButton(QMessageBox::Cancel);
  if (box.exec() != QMessageBox::Yes) {
    host_->addMessage("AI: " + name + " not run (not trusted)");
    return false;
  }
  if (auto st = store->add({bundle.modelSha256, bundle.name, bundle.root.string()}); !st) {
    host_->addMessage("AI: error: " + QString::fromStdString(st.error().toString()));
    return false;
  }
  host_->addMessage("AI: trusted " + name + " (SHA-256 " + QString::fromStdString(bundle.modelSha256) + ")");
  return true;
}

void AiPanel::showDetails() {
  const int i = list_->currentRow();
  if (i < 0 || i >= static_cast<int>(bundles_.size())) {
    updateAdvice();  // no card without a model
    return;
  }
  const auto& b = bundles_[static_cast<std::size_t>(i)];
  QString labels;
  const auto& est = b.extras.estimate;
  const int estimateColumn = est && !b.output.channelDef.empty() ? b.output.channelDef.rbegin()->first : -1;
  for (const auto& [k, v] : b.output.channelDef)
    if (k != estimateColumn)  // the last column is the estimate, not a class
      labels += QString("%1%2").arg(labels.isEmpty() ? "" : ", ", QString::fromStdString(v).toHtmlEscaped());
  if (est)
    labels += QString("<br>Measures: %1 (%2-%3 %4)")
                  .arg(QString::fromStdString(est->name).toHtmlEscaped())
                  .arg(est->lo)
                  .arg(est->hi)
                  .arg(QString::fromStdString(est->unit).toHtmlEscaped());
  const QString disclaimer = b.extras.disclaimer.empty() ? QString()
                                                         : "<br><i>" + QString::fromStdString(b.extras.disclaimer).toHtmlEscaped() + "</i>";
  details_->setText(QString("<b>%1</b> %2<br>%3<br>%4: %5%6<br><small>sha256 %7</small>")
                        .arg(QString::fromStdString(b.displayName()).toHtmlEscaped(), QString::fromStdString(b.version).toHtmlEscaped(),
                             QString::fromStdString(b.description).toHtmlEscaped(),
                             b.task == models::Task::Classification ? "Classes" : "Output", labels, disclaimer,
                             QString::fromStdString(b.modelSha256.substr(0, 16))));
  updateAdvice();
}

std::shared_ptr<LoadedSeries> AiPanel::seriesToRun(const QString& what) {
  std::shared_ptr<LoadedSeries> series = host_->currentSeries();
  if (!series || !series->volume) {
    host_->addMessage("AI: open a series first, and let it load completely");
    return nullptr;
  }
  if (series->isColor()) {
    host_->addMessage("AI: " + what + " needs a greyscale series");
    return nullptr;
  }
  return series;
}

void AiPanel::post(const QPointer<AiPanel>& self, std::function<void(AiPanel&)> fn) {
  QMetaObject::invokeMethod(
      qApp, [self, fn = std::move(fn)] { if (self) fn(*self); }, Qt::QueuedConnection);
}

Progress AiPanel::jobProgress(const QPointer<AiPanel>& self) {
  return Progress([self](double f, std::string_view m) {
    post(self, [f, msg = QString::fromUtf8(m.data(), static_cast<int>(m.size()))](AiPanel& p) { p.host_->taskProgress(p.job_, f, msg); });
  });
}

bool AiPanel::runModel(const QString& name) {
  if (discovering_) {  // runs once the list is there (showModels)
    if (busy()) return false;
    pendingRun_ = name;
    return true;
  }
  for (int i = 0; i < list_->count(); ++i)
    if (list_->item(i)->data(Qt::UserRole).toString() == name) {
      list_->setCurrentRow(i);
      if (busy_) return false;
      runSelected();
      return busy_;
    }
  host_->addMessage("AI: no model named " + name);
  lastRunOk_ = false;
  return false;
}

void AiPanel::clearResult() {
  while (QLayoutItem* it = resultLayout_->takeAt(0)) {
    if (it->widget()) it->widget()->deleteLater();
    delete it;
  }
}

void AiPanel::runSelected() {
  const int i = list_->currentRow();
  if (busy_ || i < 0 || i >= static_cast<int>(bundles_.size())) return;
  lastRunOk_ = false;  // until this run ends well
  const models::Bundle bundle = bundles_[static_cast<std::size_t>(i)];
  std::shared_ptr<LoadedSeries> series = seriesToRun(QString::fromStdString(bundle.displayName()));
  if (!series) return;
  if (!confirmTrust(bundle)) return;
  auto store = models::TrustStore::load();
  if (!store) return;
  const std::string modality = series->info.series.modality;
  if (!bundle.extras.modalityFilter.empty() && !modality.empty() && modality != bundle.extras.modalityFilter)
    host_->addMessage(QString("AI: note: %1 is meant for %2 series, this one is %3")
                          .arg(QString::fromStdString(bundle.displayName()), QString::fromStdString(bundle.extras.modalityFilter),
                               QString::fromStdString(modality)));
  busy_ = true;
  run_->setEnabled(false);
  classical_->setEnabled(false);
  cancel_ = CancelToken{};
  const CancelToken cancel = cancel_;
  job_ = host_->beginTask("Running " + QString::fromStdString(bundle.displayName()), [cancel] { cancel.cancel(); });

  models::InferenceOptions options;
  options.device = device_->currentData().toString().toStdString();
  options.saliency = true;
  options.trustedSha256 = store->trustedHashes();  // the engine checks the bytes it loads
  const std::string key = bundle.root.string() + "|" + options.device;
  auto engines = engines_;
  QPointer<AiPanel> self(this);
  (void)QtConcurrent::run([self, engines, bundle, options, key, series, cancel] {
    Result<models::InferenceResult> result = Error(ErrorCode::Cancelled, "cancelled");
    try {
      models::Engine engine;
      {
        std::lock_guard<std::mutex> lock(engines->mutex);
        auto it = engines->byKey.find(key);
        if (it == engines->byKey.end()) {
          post(self, [](AiPanel& p) { p.host_->taskProgress(p.job_, NAN, "Loading the model"); });
          auto loaded = models::Engine::load(bundle, options);
          if (!loaded) {
            result = loaded.error();
            post(self, [bundle, series, r = std::make_shared<Result<models::InferenceResult>>(std::move(result))](AiPanel& p) mutable {
              p.finish(bundle, series, std::move(*r));
            });
            return;
          }
          it = engines->byKey.emplace(key, std::move(*loaded)).first;
        }
        engine = it->second;
      }
      result = engine.run(*series->volume, jobProgress(self), cancel);
    } catch (const std::exception& e) {
      result = Error(ErrorCode::Model, std::string("inference failed: ") + e.what());
    }
    post(self, [bundle, series, r = std::make_shared<Result<models::InferenceResult>>(std::move(result))](AiPanel& p) mutable {
      p.finish(bundle, series, std::move(*r));
    });
  });
}

void AiPanel::showEnhanced(const std::shared_ptr<LoadedSeries>& input, Volume voxels, const QString& name,
                           const QString& derivation) {
  auto shared = std::make_shared<Volume>(std::move(voxels));
  auto derived = host_->showDerivedSeries(*input, shared, QString("%1 (%2)").arg(QString::fromStdString(input->info.series.description), name));
  auto* original = new QCheckBox("Show the original");
  original->setObjectName("AiShowOriginal");
  connect(original, &QCheckBox::toggled, this, [this, input, derived](bool on) { host_->showSeries(on ? input : derived); });
  resultLayout_->addWidget(original);
  // Kept as a DICOM series of the study: browsable, sendable, citable by its UIDs.
  auto* store = new QPushButton("Store as a DICOM series of the study");
  store->setObjectName("AiStoreDerived");
  store->setEnabled(input->segReference != nullptr);
  if (!input->segReference) store->setToolTip("Only a DICOM series has a study to store it in");
  connect(store, &QPushButton::clicked, this, [this, store, input, shared, derived, derivation] {
    store->setEnabled(false);  // once: a second click would store a second copy
    host_->storeDerivedSeries(input, shared, QString::fromStdString(derived->info.series.description), derivation);
  });
  resultLayout_->addWidget(store);
}

void AiPanel::finish(const models::Bundle& bundle, std::shared_ptr<LoadedSeries> input, Result<models::InferenceResult> r) {
  busy_ = false;
  // Another series may have come on screen during the run: once this result is shown.
  QMetaObject::invokeMethod(this, &AiPanel::seriesChanged, Qt::QueuedConnection);
  run_->setEnabled(true);
  classical_->setEnabled(true);
  const int job = std::exchange(job_, -1);
  const QString name = QString::fromStdString(bundle.displayName());
  if (!r) {
    const bool cancelled = r.error().code == ErrorCode::Cancelled;
    const QString msg = QString::fromStdString(r.error().toString());
    host_->addMessage(cancelled ? "AI: " + name + " cancelled" : "AI: error: " + msg);
    host_->endTask(job, cancelled ? name + " cancelled" : name + " failed");
    Q_EMIT runFinished(false, msg);
    return;
  }
  lastRunOk_ = true;
  models::InferenceResult& res = *r;
  for (const auto& l : res.log) host_->addMessage("AI: " + name + ": " + QString::fromStdString(l));
  clearResult();
  auto* title = new QLabel(QString("<b>%1</b> on %2 in %3 s").arg(name.toHtmlEscaped(), QString::fromStdString(res.device))
                               .arg(res.seconds, 0, 'f', 1));
  title->setObjectName("AiResultTitle");
  resultLayout_->addWidget(title);

  if (res.task == models::Task::Segmentation) {
    auto labels = std::make_shared<Volume>(std::move(res.output));
    std::vector<AiLabel> names;
    for (const auto& [value, label] : res.labelNames) {
      AiLabel a;
      a.value = value;
      a.name = label;
      if (auto c = bundle.extras.labelColors.find(value); c != bundle.extras.labelColors.end()) a.color = c->second;
      names.push_back(a);
    }
    // Volumes per label (or per channel mask: they may overlap), in mL.
    const auto nameOf = [&](int value) {
      auto it = res.labelNames.find(value);
      return it != res.labelNames.end() ? QString::fromStdString(it->second).toHtmlEscaped() : QString::number(value);
    };
    QString text;
    std::size_t present = 0;
    // With each label, how unsure the network was over it (mean normalised entropy, 0..1).
    const auto unsure = [&](int value) {
      auto it = res.labelUncertainty.find(value);
      return it == res.labelUncertainty.end() ? QString() : QString(", uncertainty %1").arg(it->second, 0, 'f', 3);
    };
    if (res.channelMasks.empty()) {
      for (const auto& st : labelStatistics(*labels)) {
        text += QString("%1: %2 mL%3<br>").arg(nameOf(st.label)).arg(st.volumeMl, 0, 'f', 1).arg(unsure(st.label));
        ++present;
      }
    } else {
      for (std::size_t c = 0; c < res.channelMasks.size(); ++c)
        for (const auto& st : labelStatistics(res.channelMasks[c])) {
          const int value = static_cast<int>(c) + 1;
          text += QString("%1: %2 mL%3<br>").arg(nameOf(value)).arg(st.volumeMl, 0, 'f', 1).arg(unsure(value));
          ++present;
        }
      text += "<small>Regions may overlap; each voxel shows the smallest region that holds it.</small>";
    }
    auto* vols = new QLabel(present == 0 ? "No voxel was labelled." : text);
    vols->setObjectName("AiLabelVolumes");
    resultLayout_->addWidget(vols);
    host_->showLabelMap(labels, names, name, {res.model, res.version, res.sha256});
    if (!res.uncertainty.empty()) {
      // Where the network hesitated (normalised entropy of its class probabilities), in
      // place of the labels while ticked.
      auto map = std::make_shared<Volume>(std::move(res.uncertainty));
      auto* show = new QCheckBox("Show where the model is unsure (uncertainty)");
      show->setObjectName("AiShowUncertainty");
      const LabelProvenance provenance{res.model, res.version, res.sha256};
      connect(show, &QCheckBox::toggled, this, [this, map, labels, names, name, provenance](bool on) {
        if (on) host_->showHeatMap(map, name + " uncertainty", "uncertainty");
        else host_->showLabelMap(labels, names, name, provenance);
      });
      resultLayout_->addWidget(show);
    }
    host_->endTask(job, QString("%1: %2 label(s)").arg(name).arg(present));
  } else if (res.task == models::Task::Enhancement) {
    auto converted = models::inInputType(std::move(res.output), res.task, input->volume->pixelType());
    if (!converted) {
      host_->addMessage("AI: error: " + QString::fromStdString(converted.error().toString()));
      host_->endTask(job, name + " failed");
      lastRunOk_ = false;
      Q_EMIT runFinished(false, QString::fromStdString(converted.error().toString()));
      return;
    }
    showEnhanced(input, std::move(*converted), name,
                 QString("Made by the AI model %1 %2 (SHA-256 %3)")
                     .arg(QString::fromStdString(res.model), QString::fromStdString(res.version), QString::fromStdString(res.sha256)));
    host_->endTask(job, name + ": enhanced series shown");
  } else {
    const int top = res.predictedClass();
    const std::string detail = models::classificationDetail(res);
    if (!detail.empty()) {
      // The model's estimate, or why it gives no class (then no bars: they would be a guess).
      QString text = QString::fromStdString(detail);
      if (top >= 0 && res.estimate)
        text += QString(" (the model reads %1-%2 %3)")
                    .arg(res.estimate->lo)
                    .arg(res.estimate->hi)
                    .arg(QString::fromStdString(res.estimate->unit));
      auto* words = new QLabel(text);
      words->setObjectName(top < 0 ? "AiNotGraded" : "AiEstimate");
      words->setWordWrap(true);
      if (top < 0) words->setStyleSheet("font-weight: bold;");
      resultLayout_->addWidget(words);
    }
    if (top >= 0) {  // no class: bars would be a guess
      auto* grid = new QWidget;
      grid->setObjectName("AiProbabilities");
      auto* g = new QVBoxLayout(grid);
      g->setContentsMargins(0, 0, 0, 0);
      for (std::size_t c = 0; c < res.probabilities.size(); ++c) {
        auto* line = new QHBoxLayout;
        auto* label = new QLabel(QString::fromStdString(res.classNames[c]));
        label->setMinimumWidth(90);
        if (static_cast<int>(c) == top) label->setStyleSheet("font-weight: bold;");
        auto* bar = new QProgressBar;
        bar->setRange(0, 1000);
        bar->setValue(static_cast<int>(std::lround(res.probabilities[c] * 1000)));
        bar->setFormat(QString("%1").arg(res.probabilities[c], 0, 'f', 3));
        bar->setTextVisible(true);
        line->addWidget(label);
        line->addWidget(bar, 1);
        g->addLayout(line);
      }
      resultLayout_->addWidget(grid);
    }
    const QString predicted = top < 0 ? QString() : QString::fromStdString(res.classNames[static_cast<std::size_t>(top)]);
    if (!res.saliency.empty()) {
      auto map = std::make_shared<Volume>(std::move(res.saliency));
      auto* show = new QCheckBox(res.estimate ? "Show what the estimate rests on (saliency)" : "Show what the decision rests on (saliency)");
      show->setObjectName("AiShowSaliency");
      connect(show, &QCheckBox::toggled, this, [this, map, name](bool on) {
        if (on) host_->showHeatMap(map, name + " saliency", "saliency");
        else host_->clearOverlay();
      });
      resultLayout_->addWidget(show);
    }
    if (const auto& s = bundle.extras.suggestion;
        s && std::find(s->whenClasses.begin(), s->whenClasses.end(), predicted.toStdString()) != s->whenClasses.end()) {
      auto* suggest = new QPushButton(QString::fromStdString(s->text.empty() ? "Run " + s->model : s->text));
      suggest->setObjectName("AiSuggestion");
      const QString model = QString::fromStdString(s->model);
      connect(suggest, &QPushButton::clicked, this, [this, model] { runModel(model); });
      resultLayout_->addWidget(suggest);
    }
    AiClassification ac{res.model, res.version, res.sha256, res.device, predicted.toStdString(), bundle.extras.disclaimer, {}, detail};
    for (std::size_t c = 0; c < res.probabilities.size(); ++c) ac.probabilities.emplace_back(res.classNames[c], res.probabilities[c]);
    host_->classified(*input, ac);
    host_->endTask(job, name + ": " + QString::fromStdString(report::classificationResult(ac.predicted, ac.probabilities, detail)));
  }
  Q_EMIT runFinished(true, {});
}

}  // namespace lumen::gui

extern "C" __attribute__((visibility("default"))) QWidget* lumen_gui_ai_create_panel(lumen::gui::AiHost* host, QWidget* parent) {
  return new lumen::gui::AiPanel(host, parent);
}
