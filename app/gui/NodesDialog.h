#pragma once
// The remote nodes, edited as `lumen-cli nodes` edits them (the same file): add a DIMSE or
// a DICOMweb node, remove one, check that one answers. Passwords and tokens are typed in
// password fields and never shown again.

#include <QDialog>
#include <QFutureWatcher>

#include "lumen/core/Result.h"
#include "lumen/imaging/Nodes.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPushButton;
class QSpinBox;
class QStackedWidget;

namespace lumen::gui {

class NodesDialog : public QDialog {
  Q_OBJECT

 public:
  explicit NodesDialog(QWidget* parent = nullptr);
  ~NodesDialog() override;

 public slots:
  /// Adds the node the form describes and saves the file; false (reason shown) when the
  /// form is incomplete or invalid, or the file cannot be written.
  bool addNode();
  void removeSelected();
  /// Saves this workstation's AE title, port and allow-list (what nodes must know it by).
  bool saveLocal();
  /// C-ECHO or a QIDO-RS request to the selected node, in the background.
  void testSelected();

 signals:
  void nodesChanged();
  void testFinished(bool ok, const QString& message);

 private:
  void reload();
  void say(const QString& message);  // in the status line
  bool refuse(const QString& message);  // shows why, returns false

  net::NodeConfig config_;
  QListWidget* list_ = nullptr;
  QComboBox* kind_ = nullptr;
  QStackedWidget* forms_ = nullptr;
  QLineEdit* name_ = nullptr;
  QLineEdit* aeTitle_ = nullptr;
  QLineEdit* host_ = nullptr;
  QSpinBox* port_ = nullptr;
  QLineEdit* tlsCa_ = nullptr;
  QLineEdit* tlsCert_ = nullptr;
  QLineEdit* tlsKey_ = nullptr;
  QLineEdit* url_ = nullptr;
  QComboBox* auth_ = nullptr;
  QLineEdit* user_ = nullptr;
  QLineEdit* secret_ = nullptr;
  QLineEdit* caFile_ = nullptr;
  QLineEdit* localAe_ = nullptr;
  QSpinBox* localPort_ = nullptr;
  QLineEdit* localBind_ = nullptr;  // empty: every interface
  QLineEdit* localAllow_ = nullptr;
  QLineEdit* localTlsCert_ = nullptr;  // all three empty: the listener speaks plain DICOM
  QLineEdit* localTlsKey_ = nullptr;
  QLineEdit* localTlsCa_ = nullptr;
  QPushButton* test_ = nullptr;
  QLabel* status_ = nullptr;
  QFutureWatcher<Status> watcher_;
};

}  // namespace lumen::gui
