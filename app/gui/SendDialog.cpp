#include "SendDialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QLabel>
#include <QPushButton>
#include <QVBoxLayout>

namespace lumen::gui {

namespace {
QString qs(const std::string& s) { return QString::fromStdString(s); }
}  // namespace

SendDialog::SendDialog(std::vector<Choice> choices, QWidget* parent) : QDialog(parent), choices_(std::move(choices)) {
  setWindowTitle("Send to node");
  node_ = new QComboBox(this);
  node_->setObjectName("SendNode");
  what_ = new QComboBox(this);
  what_->setObjectName("SendWhat");
  for (const auto& c : choices_) what_->addItem(c.label);
  compress_ = new QComboBox(this);
  compress_->setObjectName("SendCompression");
  // The data values are lumen-cli's --compress names.
  compress_->addItem("As stored (no re-encoding)", QString());
  compress_->addItem("JPEG-LS lossless", "jpeg-ls");
  compress_->addItem("JPEG 2000 lossless", "jpeg2000");
  compress_->addItem("Deflate", "deflate");
  compress_->setToolTip("Lossless: the pixel values arrive bit for bit. A file that cannot be re-encoded losslessly "
                        "(a lossy source) is not sent, and is named.");
  auto* form = new QFormLayout;
  form->addRow("Node", node_);
  form->addRow("Send", what_);
  form->addRow("Transfer syntax", compress_);
  status_ = new QLabel(this);
  status_->setObjectName("SendStatus");
  status_->setWordWrap(true);
  auto* buttons = new QDialogButtonBox(this);
  send_ = buttons->addButton("Send", QDialogButtonBox::AcceptRole);
  send_->setObjectName("SendButton");
  buttons->addButton(QDialogButtonBox::Cancel);
  connect(buttons, &QDialogButtonBox::accepted, this, [this] { send(); });
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(form);
  layout->addWidget(status_);
  layout->addWidget(buttons);
  resize(560, 220);
  reloadNodes();
}

bool SendDialog::reloadNodes() {
  nodes_.clear();
  node_->clear();
  auto configured = web::configuredNodes(30);
  if (!configured) {
    status_->setText(qs(configured.error().toString()));
  } else {
    nodes_ = std::move(*configured);
    for (const auto& n : nodes_) node_->addItem(qs(web::describe(n)), qs(n.name()));
    status_->setText(nodes_.empty() ? "No nodes configured: add one in File > Query / Retrieve > Nodes..., or with "
                                      "`lumen-cli nodes add`."
                                    : QString());
  }
  send_->setEnabled(!nodes_.empty() && !choices_.empty());
  return !nodes_.empty();
}

bool SendDialog::selectNode(const QString& name) {
  const int i = node_->findData(name);
  if (i >= 0) node_->setCurrentIndex(i);
  return i >= 0;
}

bool SendDialog::selectChoice(int index) {
  if (index < 0 || index >= what_->count()) return false;
  what_->setCurrentIndex(index);
  return true;
}

bool SendDialog::selectCompression(const QString& syntax) {
  const int i = compress_->findData(syntax);
  if (i >= 0) compress_->setCurrentIndex(i);
  return i >= 0;
}

bool SendDialog::send() {
  const int n = node_->currentIndex(), w = what_->currentIndex();
  if (n < 0 || n >= static_cast<int>(nodes_.size()) || w < 0 || w >= static_cast<int>(choices_.size())) {
    status_->setText(nodes_.empty() ? status_->text() : "Nothing to send.");
    return false;
  }
  std::optional<dicom::LosslessSyntax> compress;
  if (const QString name = compress_->currentData().toString(); !name.isEmpty()) {
    dicom::LosslessSyntax s{};
    if (!dicom::parseLosslessSyntax(name.toStdString(), s)) {
      status_->setText("Unknown transfer syntax: " + name);
      return false;
    }
    compress = s;
  }
  const Choice& c = choices_[static_cast<std::size_t>(w)];
  emit sendRequested(nodes_[static_cast<std::size_t>(n)], c.files, compress, c.label);
  accept();
  return true;
}

}  // namespace lumen::gui
