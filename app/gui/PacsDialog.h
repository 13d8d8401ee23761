#pragma once
// Query / Retrieve: search a configured node (DIMSE C-FIND or DICOMweb QIDO-RS) for
// studies, and ask the window to fetch one into the study database (C-GET or WADO-RS) as a
// background job with progress and cancel. The nodes are the ones `lumen-cli nodes` keeps
// (~/.config/lumen/nodes.json).

#include <QDialog>
#include <QFutureWatcher>
#include <QPointer>
#include <QThreadPool>

#include <optional>
#include <string>
#include <vector>

#include "RemoteNode.h"
#include "lumen/core/Progress.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QTableWidget;

namespace lumen::gui {

struct PacsSearch {
  bool ok = false;
  QString error;
  std::vector<net::QueryMatch> matches;
};

class PacsDialog : public QDialog {
  Q_OBJECT

 public:
  explicit PacsDialog(QWidget* parent = nullptr);
  ~PacsDialog() override;

  /// Reads the nodes file again (it may have changed since); false, with the reason shown
  /// in the dialog, when it cannot be read or names no node.
  bool reloadNodes();
  int matchCount() const;

 public slots:
  void search();
  /// Stops the search in progress: the dialog is free at once (a C-FIND is sent a C-CANCEL,
  /// a QIDO-RS request is aborted; a node that does not answer at all is left to time out
  /// on its own, its answer unused).
  void stopSearch();
  void retrieveSelected();

 signals:
  /// The search ended: the number of studies found, or -1 when it failed.
  void searchFinished(int matches);
  void retrieveRequested(const lumen::web::RemoteNode& node, const QString& studyUid, const QString& label);

 private:
  void showResults(const PacsSearch& result);
  void clearResults();
  void updateButtons();
  bool searching() const { return !watcher_.isNull(); }

  std::vector<web::RemoteNode> nodes_;
  QComboBox* node_ = nullptr;
  QLineEdit* patientName_ = nullptr;
  QLineEdit* patientId_ = nullptr;
  QLineEdit* studyDate_ = nullptr;
  QLineEdit* modality_ = nullptr;
  QLineEdit* accession_ = nullptr;
  QPushButton* searchButton_ = nullptr;
  QPushButton* stopButton_ = nullptr;
  QPushButton* retrieveButton_ = nullptr;
  QTableWidget* table_ = nullptr;
  QLabel* status_ = nullptr;
  /// Searches run on threads of their own: a stopped search against a silent node may
  /// block for the node's timeout, and must not hold the threads loading and retrieving use.
  QThreadPool pool_;
  QPointer<QFutureWatcher<PacsSearch>> watcher_;  // the search in progress, null when none
  CancelToken cancel_;
  std::vector<net::QueryMatch> matches_;
  web::RemoteNode searched_;  // the node the results came from: what Retrieve fetches from
};

}  // namespace lumen::gui
