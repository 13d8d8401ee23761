#pragma once
// Overlay controls: the labels of the current label map with their colour and
// visibility, one opacity for all, load and clear.

#include <QWidget>

#include <memory>

#include "ViewModel.h"

class QListWidget;
class QSlider;
class QLabel;

namespace lumen::gui {

class LabelPanel : public QWidget {
  Q_OBJECT
 public:
  explicit LabelPanel(QWidget* parent = nullptr);
  void setOverlay(std::shared_ptr<LabelOverlay> overlay);
  const std::shared_ptr<LabelOverlay>& overlay() const { return overlay_; }

 signals:
  void loadRequested();
  void clearRequested();
  /// Visibility, colour or opacity changed.
  void appearanceChanged();

 private:
  std::shared_ptr<LabelOverlay> overlay_;
  QListWidget* list_ = nullptr;
  QSlider* opacity_ = nullptr;
  QLabel* source_ = nullptr;
};

}  // namespace lumen::gui
