#pragma once
// The Findings panel: the measurements of the series in the active view, with their values
// and labels. Clicking one shows it (the view moves to its slice and plane); a label is
// edited in place; Delete removes the selected one; Export writes JSON or CSV.

#include <QWidget>

#include <memory>

#include "ViewModel.h"

class QLabel;
class QPushButton;
class QTableWidget;

namespace lumen::gui {

class MeasurementStore;

class FindingsPanel : public QWidget {
  Q_OBJECT
 public:
  FindingsPanel(MeasurementStore* store, QWidget* parent = nullptr);

  /// The series whose measurements are listed (the active view's); null: none.
  void setSeries(std::shared_ptr<LoadedSeries> series);
  const std::shared_ptr<LoadedSeries>& series() const { return series_; }
  /// Re-reads the list (the store changed).
  void refresh();
  void select(int id);
  int selected() const;

  /// Writes the measurements with their values to `path` (CSV when `csv`, else JSON);
  /// false with the reason in `error`.
  bool exportTo(const QString& path, bool csv, QString* error) const;

 signals:
  /// The reader chose a measurement in the list: show it.
  void jumpTo(int id);

 private:
  void exportAs(bool csv);

  MeasurementStore* store_;
  std::shared_ptr<LoadedSeries> series_;
  QTableWidget* table_ = nullptr;
  QLabel* note_ = nullptr;
  QPushButton* delete_ = nullptr;
  QPushButton* exportJson_ = nullptr;
  QPushButton* exportCsv_ = nullptr;
  bool filling_ = false;
};

}  // namespace lumen::gui
