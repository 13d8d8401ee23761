#pragma once
// Export de-identified: the study on screen (or its series, when the study is not in the
// database) through DICOM PS3.15's Basic Profile (imaging/Deidentify) into a folder, off the
// GUI thread with progress and cancel; what could not be exported is listed by file.

#include <QDialog>
#include <QStringList>

#include <memory>
#include <string>

#include "lumen/core/Progress.h"

class QCheckBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;

namespace lumen::gui {

class DeidDialog : public QDialog {
  Q_OBJECT
 public:
  /// `inputs`: the files (or folders) to export; `what`: how the dialog names them.
  DeidDialog(QStringList inputs, const QString& what, QWidget* parent = nullptr);
  ~DeidDialog() override;

  void setKeyFile(const QString& path);
  void setOutputFolder(const QString& path);
  /// An option by its lumen-cli name (retain-longitudinal-modified-dates, ...); false when unknown.
  bool setOption(const std::string& name, bool on);
  void setAllowBurnedIn(bool on);
  /// Starts the export; false (with the reason shown) when the key or folder is missing.
  bool start();
  bool running() const { return running_; }
  QString resultText() const;

 signals:
  void exportFinished(int deidentified, int refused, int failed);

 private:
  QStringList inputs_;
  QLineEdit* key_ = nullptr;
  QLineEdit* out_ = nullptr;
  std::vector<std::pair<std::string, QCheckBox*>> options_;
  QCheckBox* burnedIn_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QPlainTextEdit* result_ = nullptr;
  QPushButton* export_ = nullptr;
  QPushButton* cancel_ = nullptr;
  bool running_ = false;
  CancelToken cancelToken_;
};

}  // namespace lumen::gui
