#include "LabelPanel.h"

#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPainter>
#include <QPushButton>
#include <QSlider>
#include <QVBoxLayout>

namespace lumen::gui {

namespace {
QIcon swatch(const Rgb8& c) {
  QPixmap p(14, 14);
  p.fill(QColor(c.r, c.g, c.b));
  return QIcon(p);
}
}  // namespace

LabelPanel::LabelPanel(QWidget* parent) : QWidget(parent) {
  auto* l = new QVBoxLayout(this);
  l->setContentsMargins(4, 4, 4, 4);
  source_ = new QLabel("No label map");
  source_->setWordWrap(true);
  l->addWidget(source_);
  list_ = new QListWidget;
  list_->setToolTip("Tick to show a label");
  l->addWidget(list_, 1);
  auto* row = new QHBoxLayout;
  row->addWidget(new QLabel("Opacity"));
  opacity_ = new QSlider(Qt::Horizontal);
  opacity_->setRange(0, 100);
  opacity_->setValue(45);
  row->addWidget(opacity_, 1);
  l->addLayout(row);
  auto* buttons = new QHBoxLayout;
  auto* load = new QPushButton("Load label map...");
  auto* clear = new QPushButton("Clear");
  buttons->addWidget(load);
  buttons->addWidget(clear);
  l->addLayout(buttons);
  connect(load, &QPushButton::clicked, this, &LabelPanel::loadRequested);
  connect(clear, &QPushButton::clicked, this, &LabelPanel::clearRequested);
  connect(opacity_, &QSlider::valueChanged, this, [this](int v) {
    if (!overlay_) return;
    overlay_->opacity = v / 100.0;
    emit appearanceChanged();
  });
  connect(list_, &QListWidget::itemChanged, this, [this](QListWidgetItem* item) {
    const int r = list_->row(item);
    if (!overlay_ || r < 0 || r >= static_cast<int>(overlay_->entries.size())) return;
    overlay_->entries[static_cast<std::size_t>(r)].visible = item->checkState() == Qt::Checked;
    emit appearanceChanged();
  });
  setOverlay(nullptr);
}

void LabelPanel::setOverlay(std::shared_ptr<LabelOverlay> overlay) {
  overlay_ = std::move(overlay);
  list_->blockSignals(true);
  list_->clear();
  if (overlay_) {
    source_->setText(QString("Label map: %1 (%2 label(s))")
                         .arg(QFileInfo(QString::fromStdString(overlay_->source)).fileName())
                         .arg(overlay_->entries.size()));
    for (const auto& e : overlay_->entries) {
      auto* item = new QListWidgetItem(swatch(e.color), QString::fromStdString(e.name));
      item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
      item->setCheckState(e.visible ? Qt::Checked : Qt::Unchecked);
      list_->addItem(item);
    }
    opacity_->setValue(static_cast<int>(overlay_->opacity * 100));
  } else {
    source_->setText("No label map. Load one (NIfTI, NRRD) to show it over the image.");
  }
  list_->blockSignals(false);
  opacity_->setEnabled(overlay_ != nullptr);
}

}  // namespace lumen::gui
