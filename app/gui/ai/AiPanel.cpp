#include "AiPanel.h"

#include <QCheckBox>
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

#include "lumen/models/Device.h"

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

std::filesystem::path shippedModels() {
  // Next to an installed executable first, then the source tree the build came from.
  if (const char* p = std::getenv("LUMEN_SHIPPED_MODELS"); p && *p) return p;
  return LUMEN_SHIPPED_MODELS;
}

}  // namespace

AiPanel::AiPanel(AiHost* host, QWidget* parent) : QWidget(parent), host_(host) {
  setObjectName("AiPanel");
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
  const auto cuda = models::chooseDevice("cuda");
  if (cuda) device_->addItem("CUDA", "cuda");
  device_->setToolTip(QString::fromStdString(models::torchDescription()));
  row->addWidget(new QLabel("Device"));
  row->addWidget(device_, 1);
  run_ = new QPushButton("Run on current series");
  run_->setObjectName("AiRun");
  row->addWidget(run_);
  auto* rescan = new QPushButton("Rescan");
  rescan->setToolTip("Look for model bundles again (user folder, LUMEN_MODEL_PATH, shipped models)");
  row->addWidget(rescan);
  l->addLayout(row);

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
  connect(rescan, &QPushButton::clicked, this, [this] { refresh(); });
  refresh();
}

AiPanel::~AiPanel() { cancel_.cancel(); }

void AiPanel::refresh() {
  const QString current = list_->currentItem() ? list_->currentItem()->data(Qt::UserRole).toString() : QString();
  list_->clear();
  bundles_.clear();
  for (const auto& e : models::discoverBundles(models::modelSearchPath(shippedModels()))) {
    if (!e.bundle) {
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
  run_->setEnabled(!bundles_.empty() && !busy_);
}

void AiPanel::showDetails() {
  const int i = list_->currentRow();
  if (i < 0 || i >= static_cast<int>(bundles_.size())) return;
  const auto& b = bundles_[static_cast<std::size_t>(i)];
  QString labels;
  for (const auto& [k, v] : b.output.channelDef) labels += QString("%1%2").arg(labels.isEmpty() ? "" : ", ", QString::fromStdString(v));
  const QString disclaimer = b.extras.disclaimer.empty() ? QString()
                                                         : "<br><i>" + QString::fromStdString(b.extras.disclaimer).toHtmlEscaped() + "</i>";
  details_->setText(QString("<b>%1</b> %2<br>%3<br>%4: %5%6<br><small>sha256 %7</small>")
                        .arg(QString::fromStdString(b.displayName()).toHtmlEscaped(), QString::fromStdString(b.version).toHtmlEscaped(),
                             QString::fromStdString(b.description).toHtmlEscaped(),
                             b.task == models::Task::Classification ? "Classes" : "Output", labels.toHtmlEscaped(), disclaimer,
                             QString::fromStdString(b.modelSha256.substr(0, 16))));
}

bool AiPanel::runModel(const QString& name) {
  for (int i = 0; i < list_->count(); ++i)
    if (list_->item(i)->data(Qt::UserRole).toString() == name) {
      list_->setCurrentRow(i);
      if (busy_) return false;
      runSelected();
      return busy_;
    }
  host_->addMessage("AI: no model named " + name);
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
  std::shared_ptr<LoadedSeries> series = host_->currentSeries();
  if (!series || !series->volume) {
    host_->addMessage("AI: open a series first");
    return;
  }
  const models::Bundle bundle = bundles_[static_cast<std::size_t>(i)];
  if (series->isColor()) {
    host_->addMessage("AI: " + QString::fromStdString(bundle.displayName()) + " needs a greyscale series");
    return;
  }
  const std::string modality = series->info.series.modality;
  if (!bundle.extras.modalityFilter.empty() && !modality.empty() && modality != bundle.extras.modalityFilter)
    host_->addMessage(QString("AI: note: %1 is meant for %2 series, this one is %3")
                          .arg(QString::fromStdString(bundle.displayName()), QString::fromStdString(bundle.extras.modalityFilter),
                               QString::fromStdString(modality)));
  busy_ = true;
  run_->setEnabled(false);
  cancel_ = CancelToken{};
  const CancelToken cancel = cancel_;
  host_->beginTask("Running " + QString::fromStdString(bundle.displayName()), [cancel] { cancel.cancel(); });

  models::InferenceOptions options;
  options.device = device_->currentData().toString().toStdString();
  options.saliency = true;
  const std::string key = bundle.root.string() + "|" + options.device;
  auto engines = engines_;
  QPointer<AiPanel> self(this);
  (void)QtConcurrent::run([self, engines, bundle, options, key, series, cancel] {
    // Results go back to the GUI thread, and only to a panel that still exists.
    auto post = [self](auto fn) {
      QMetaObject::invokeMethod(
          qApp, [self, fn]() mutable { if (self) fn(*self); }, Qt::QueuedConnection);
    };
    Result<models::InferenceResult> result = Error(ErrorCode::Cancelled, "cancelled");
    try {
      models::Engine engine;
      {
        std::lock_guard<std::mutex> lock(engines->mutex);
        auto it = engines->byKey.find(key);
        if (it == engines->byKey.end()) {
          post([](AiPanel& p) { p.host_->taskProgress(NAN, "Loading the model"); });
          auto loaded = models::Engine::load(bundle, options);
          if (!loaded) {
            result = loaded.error();
            post([bundle, series, r = std::make_shared<Result<models::InferenceResult>>(std::move(result))](AiPanel& p) mutable {
              p.finish(bundle, series, std::move(*r));
            });
            return;
          }
          it = engines->byKey.emplace(key, std::move(*loaded)).first;
        }
        engine = it->second;
      }
      const Progress progress([post](double f, std::string_view m) {
        post([f, msg = QString::fromUtf8(m.data(), static_cast<int>(m.size()))](AiPanel& p) { p.host_->taskProgress(f, msg); });
      });
      result = engine.run(*series->volume, progress, cancel);
    } catch (const std::exception& e) {
      result = Error(ErrorCode::Model, std::string("inference failed: ") + e.what());
    }
    post([bundle, series, r = std::make_shared<Result<models::InferenceResult>>(std::move(result))](AiPanel& p) mutable {
      p.finish(bundle, series, std::move(*r));
    });
  });
}

void AiPanel::finish(const models::Bundle& bundle, std::shared_ptr<LoadedSeries> input, Result<models::InferenceResult> r) {
  busy_ = false;
  run_->setEnabled(true);
  const QString name = QString::fromStdString(bundle.displayName());
  if (!r) {
    const bool cancelled = r.error().code == ErrorCode::Cancelled;
    const QString msg = QString::fromStdString(r.error().toString());
    host_->addMessage(cancelled ? "AI: " + name + " cancelled" : "AI: error: " + msg);
    host_->endTask(cancelled ? name + " cancelled" : name + " failed");
    Q_EMIT runFinished(false, msg);
    return;
  }
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
    for (const auto& [value, label] : bundle.labels()) {
      AiLabel a;
      a.value = value;
      a.name = label;
      if (auto c = bundle.extras.labelColors.find(value); c != bundle.extras.labelColors.end()) a.color = c->second;
      names.push_back(a);
    }
    // Volumes per label (mm^3 -> mL).
    std::map<int, std::size_t> counts;
    visitScalarType(labels->pixelType(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* d = labels->template data<T>();
      for (std::size_t v = 0; v < labels->voxelCount(); ++v)
        if (d[v] != 0) ++counts[static_cast<int>(d[v])];
    });
    const auto& sp = labels->geometry().spacingMm;
    QString text;
    for (const auto& [value, n] : counts) {
      auto it = std::find_if(names.begin(), names.end(), [value = value](const AiLabel& a) { return a.value == value; });
      text += QString("%1: %2 mL<br>")
                  .arg(it != names.end() ? QString::fromStdString(it->name).toHtmlEscaped() : QString::number(value))
                  .arg(static_cast<double>(n) * sp.x * sp.y * sp.z / 1000.0, 0, 'f', 1);
    }
    auto* vols = new QLabel(text.isEmpty() ? "No voxel was labelled." : text);
    vols->setObjectName("AiLabelVolumes");
    resultLayout_->addWidget(vols);
    host_->showLabelMap(labels, names, name);
    host_->endTask(QString("%1: %2 label(s)").arg(name).arg(counts.size()));
  } else if (res.task == models::Task::Enhancement) {
    auto voxels = std::make_shared<Volume>();
    const PixelType inType = input->volume->pixelType();
    if (inType == PixelType::Int16 || inType == PixelType::UInt16 || inType == PixelType::UInt8) {
      auto c = res.output.convertTo(inType);  // back to the input's type (integer HU)
      if (c) *voxels = std::move(*c);
    }
    if (voxels->empty()) *voxels = std::move(res.output);
    auto derived = host_->showDerivedSeries(*input, voxels, QString("%1 (%2)").arg(QString::fromStdString(input->info.series.description), name));
    auto* original = new QCheckBox("Show the original");
    original->setObjectName("AiShowOriginal");
    connect(original, &QCheckBox::toggled, this, [this, input, derived](bool on) { host_->showSeries(on ? input : derived); });
    resultLayout_->addWidget(original);
    host_->endTask(name + ": enhanced series shown");
  } else {
    const int top = res.predictedClass();
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
    const QString predicted = QString::fromStdString(res.classNames[static_cast<std::size_t>(top)]);
    if (!res.saliency.empty()) {
      auto map = std::make_shared<Volume>(std::move(res.saliency));
      auto* show = new QCheckBox("Show what the decision rests on (saliency)");
      show->setObjectName("AiShowSaliency");
      connect(show, &QCheckBox::toggled, this, [this, map, name](bool on) {
        if (on) host_->showHeatMap(map, name + " saliency");
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
    host_->endTask(QString("%1: %2 (p = %3)").arg(name, predicted).arg(res.probabilities[static_cast<std::size_t>(top)], 0, 'f', 2));
  }
  Q_EMIT runFinished(true, {});
}

}  // namespace lumen::gui

extern "C" __attribute__((visibility("default"))) QWidget* lumen_gui_ai_create_panel(lumen::gui::AiHost* host, QWidget* parent) {
  return new lumen::gui::AiPanel(host, parent);
}
