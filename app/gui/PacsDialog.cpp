#include "PacsDialog.h"

#include <QComboBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSignalBlocker>
#include <QTableWidget>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrent>

#include "DicomWeb.h"
#include "NodesDialog.h"
#include "StudyBrowser.h"

namespace lumen::gui {

namespace {
QString qs(const std::string& s) { return QString::fromStdString(s); }

PacsSearch searchNode(const web::RemoteNode& node, const net::QueryFilter& filter, const CancelToken& cancel) {
  PacsSearch out;
  auto r = web::query(node, filter, cancel);
  if (!r) {
    out.error = qs(r.error().toString());
    return out;
  }
  out.ok = true;
  out.matches = std::move(*r);
  return out;
}
}  // namespace


PacsDialog::PacsDialog(QWidget* parent) : QDialog(parent) {
  setWindowTitle("Query / Retrieve");
  pool_.setMaxThreadCount(4);
  auto* form = new QFormLayout;
  node_ = new QComboBox(this);
  node_->setObjectName("node");
  patientName_ = new QLineEdit(this);
  patientName_->setObjectName("patientName");
  patientName_->setPlaceholderText("DOE^JOHN, DOE*");
  patientId_ = new QLineEdit(this);
  patientId_->setObjectName("patientId");
  studyDate_ = new QLineEdit(this);
  studyDate_->setObjectName("studyDate");
  studyDate_->setPlaceholderText("YYYYMMDD, or a range YYYYMMDD-YYYYMMDD");
  modality_ = new QLineEdit(this);
  modality_->setObjectName("modality");
  modality_->setPlaceholderText("CT, MR, ...");
  accession_ = new QLineEdit(this);
  accession_->setObjectName("accession");
  form->addRow("Node", node_);
  form->addRow("Patient name", patientName_);
  form->addRow("Patient ID", patientId_);
  form->addRow("Study date", studyDate_);
  form->addRow("Modality", modality_);
  form->addRow("Accession", accession_);

  searchButton_ = new QPushButton("Search", this);
  searchButton_->setObjectName("search");
  searchButton_->setDefault(true);
  stopButton_ = new QPushButton("Stop", this);
  stopButton_->setObjectName("stopSearch");
  stopButton_->setEnabled(false);
  auto* nodesButton = new QPushButton("Nodes...", this);
  nodesButton->setObjectName("editNodes");
  retrieveButton_ = new QPushButton("Retrieve", this);
  retrieveButton_->setObjectName("retrieve");
  table_ = new QTableWidget(0, 8, this);
  table_->setObjectName("results");
  table_->setHorizontalHeaderLabels({"Date", "Patient", "Patient ID", "Modalities", "Description", "Accession",
                                     "Series", "Instances"});
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->verticalHeader()->hide();
  status_ = new QLabel(this);
  status_->setObjectName("status");
  status_->setWordWrap(true);

  auto* buttons = new QHBoxLayout;
  buttons->addWidget(searchButton_);
  buttons->addWidget(stopButton_);
  buttons->addWidget(nodesButton);
  buttons->addStretch();
  buttons->addWidget(retrieveButton_);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(form);
  layout->addLayout(buttons);
  layout->addWidget(table_, 1);
  layout->addWidget(status_);
  resize(900, 560);

  connect(searchButton_, &QPushButton::clicked, this, &PacsDialog::search);
  connect(stopButton_, &QPushButton::clicked, this, &PacsDialog::stopSearch);
  connect(nodesButton, &QPushButton::clicked, this, [this] {
    auto* d = findChild<NodesDialog*>();
    if (!d) {
      d = new NodesDialog(this);
      connect(d, &NodesDialog::nodesChanged, this, &PacsDialog::reloadNodes);
    }
    d->show();
    d->raise();
  });
  connect(retrieveButton_, &QPushButton::clicked, this, &PacsDialog::retrieveSelected);
  connect(table_, &QTableWidget::itemSelectionChanged, this, &PacsDialog::updateButtons);
  connect(table_, &QTableWidget::cellDoubleClicked, this, &PacsDialog::retrieveSelected);
  // Results are of the node they came from: another node, no results.
  connect(node_, &QComboBox::currentIndexChanged, this, [this] { clearResults(); });
  reloadNodes();
}

// A search still running is told to stop; the pool waits for it (a DIMSE node that
// never answers holds it until its timeout). It holds copies of what it needs.
PacsDialog::~PacsDialog() { cancel_.cancel(); }

void PacsDialog::clearResults() {
  if (searching()) return;  // showResults replaces them
  matches_.clear();
  table_->setRowCount(0);
  updateButtons();
}

bool PacsDialog::reloadNodes() {
  const QSignalBlocker quiet(node_);
  clearResults();
  nodes_.clear();
  node_->clear();
  auto configured = web::configuredNodes(30);
  if (!configured) {
    status_->setText(qs(configured.error().toString()));
    updateButtons();
    return false;
  }
  nodes_ = std::move(*configured);
  for (const auto& n : nodes_) node_->addItem(qs(web::describe(n)));
  if (nodes_.empty())
    status_->setText("No nodes configured: add one with Nodes..., or `lumen-cli nodes add`.");
  else
    status_->clear();
  updateButtons();
  return !nodes_.empty();
}

int PacsDialog::matchCount() const { return static_cast<int>(matches_.size()); }

void PacsDialog::updateButtons() {
  const bool busy = searching();
  searchButton_->setEnabled(!busy && !nodes_.empty());
  stopButton_->setEnabled(busy);
  retrieveButton_->setEnabled(!busy && table_->currentRow() >= 0 && !table_->selectedItems().isEmpty());
}

void PacsDialog::search() {
  const int i = node_->currentIndex();
  if (i < 0 || i >= static_cast<int>(nodes_.size()) || searching()) return;
  net::QueryFilter f;
  f.level = net::QueryLevel::Study;
  f.patientName = patientName_->text().trimmed().toStdString();
  f.patientId = patientId_->text().trimmed().toStdString();
  f.studyDate = studyDate_->text().trimmed().toStdString();
  f.modality = modality_->text().trimmed().toUpper().toStdString();
  f.accession = accession_->text().trimmed().toStdString();
  const web::RemoteNode node = nodes_[static_cast<std::size_t>(i)];
  searched_ = node;
  status_->setText("Searching " + qs(web::describe(node)) + "...");
  table_->setRowCount(0);
  matches_.clear();
  cancel_ = CancelToken{};
  auto* w = new QFutureWatcher<PacsSearch>(this);
  watcher_ = w;
  connect(w, &QFutureWatcher<PacsSearch>::finished, this, [this, w] {
    w->deleteLater();
    if (w != watcher_) return;  // stopped: the reader has moved on
    watcher_ = nullptr;
    showResults(w->result());
  });
  const CancelToken cancel = cancel_;
  w->setFuture(QtConcurrent::run(&pool_, [node, f, cancel] { return searchNode(node, f, cancel); }));
  updateButtons();
}

void PacsDialog::stopSearch() {
  if (!searching()) return;
  cancel_.cancel();
  watcher_ = nullptr;
  status_->setText("Search stopped.");
  updateButtons();
  emit searchFinished(-1);
}

void PacsDialog::showResults(const PacsSearch& result) {
  if (!result.ok) {
    status_->setText(result.error);
    updateButtons();
    emit searchFinished(-1);
    return;
  }
  matches_ = result.matches;
  table_->setRowCount(static_cast<int>(matches_.size()));
  for (int r = 0; r < table_->rowCount(); ++r) {
    const auto& m = matches_[static_cast<std::size_t>(r)];
    const QStringList cells = {prettyDate(m.studyDate),
                               prettyName(m.patientName),
                               qs(m.patientId),
                               qs(m.modalities).replace('\\', ", "),
                               qs(m.studyDescription),
                               qs(m.accession),
                               m.seriesCount >= 0 ? QString::number(m.seriesCount) : QString(),
                               m.instanceCount >= 0 ? QString::number(m.instanceCount) : QString()};
    for (int c = 0; c < cells.size(); ++c) {
      auto* item = new QTableWidgetItem(cells[c]);
      if (c == 0) item->setData(Qt::UserRole, qs(m.studyUid));
      table_->setItem(r, c, item);
    }
  }
  table_->resizeColumnsToContents();
  status_->setText(matches_.empty() ? "No study matches." : QString("%1 study(ies).").arg(matches_.size()));
  updateButtons();
  emit searchFinished(static_cast<int>(matches_.size()));
}

void PacsDialog::retrieveSelected() {
  const int row = table_->currentRow();
  if (row < 0 || row >= static_cast<int>(matches_.size()) || searching()) return;
  const auto& m = matches_[static_cast<std::size_t>(row)];
  // No patient name: the label goes to the status bar and the messages, which a reader may
  // show while the window hides patient identity.
  QString label = m.studyDescription.empty() ? QString("study") : qs(m.studyDescription);
  if (!m.studyDate.empty()) label += " of " + prettyDate(m.studyDate);
  emit retrieveRequested(searched_, qs(m.studyUid), label.trimmed());
  status_->setText("Retrieving " + label.trimmed() + " into the study database (see the status bar).");
}

}  // namespace lumen::gui
