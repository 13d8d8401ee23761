#pragma once
// Send to a node: a series or study from the database (images, or results Lumen made:
// SEG, SR, reports) to a configured DIMSE or DICOMweb node, as stored or re-encoded
// losslessly (JPEG-LS, JPEG 2000, deflate). The dialog only chooses; the window runs the
// transfer as a background job with progress and cancel.

#include <QDialog>
#include <QStringList>

#include <optional>
#include <vector>

#include "RemoteNode.h"

class QComboBox;
class QLabel;
class QPushButton;

namespace lumen::gui {

class SendDialog : public QDialog {
  Q_OBJECT
 public:
  struct Choice {
    QString label;  // what a person sees: "Series 3: Head 1.0 (CT, 163 files)"
    QStringList files;
  };
  SendDialog(std::vector<Choice> choices, QWidget* parent = nullptr);

  /// Reads the nodes file again; false, with the reason shown, when it names no node.
  bool reloadNodes();
  bool selectNode(const QString& name);
  bool selectChoice(int index);
  /// "" (as stored), "jpeg-ls", "jpeg2000" or "deflate"; false for anything else.
  bool selectCompression(const QString& syntax);

 public slots:
  /// Emits sendRequested for the current choice and closes; false when nothing can be sent.
  bool send();

 signals:
  void sendRequested(const lumen::web::RemoteNode& node, const QStringList& files,
                     std::optional<lumen::dicom::LosslessSyntax> compress, const QString& label);

 private:
  std::vector<Choice> choices_;
  std::vector<web::RemoteNode> nodes_;
  QComboBox* node_ = nullptr;
  QComboBox* what_ = nullptr;
  QComboBox* compress_ = nullptr;
  QPushButton* send_ = nullptr;
  QLabel* status_ = nullptr;
};

}  // namespace lumen::gui
