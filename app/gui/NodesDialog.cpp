#include "NodesDialog.h"

#include <QComboBox>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QSpinBox>
#include <QStackedWidget>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrent>

#include <filesystem>

#include "RemoteNode.h"

namespace lumen::gui {

namespace {
QString qs(const std::string& s) { return QString::fromStdString(s); }
std::string text(const QLineEdit* e) { return e->text().trimmed().toStdString(); }
std::string absolute(const std::string& f) { return f.empty() ? f : std::filesystem::absolute(f).string(); }

QLineEdit* field(QWidget* parent, const char* name, const QString& hint = {}) {
  auto* e = new QLineEdit(parent);
  e->setObjectName(name);
  e->setPlaceholderText(hint);
  return e;
}
}  // namespace

NodesDialog::NodesDialog(QWidget* parent) : QDialog(parent) {
  setWindowTitle("DICOM nodes");
  list_ = new QListWidget(this);
  list_->setObjectName("nodes");

  kind_ = new QComboBox(this);
  kind_->setObjectName("kind");
  kind_->addItems({"DIMSE (PACS, modality)", "DICOMweb"});
  name_ = field(this, "name", "what to call it");

  auto* dimse = new QWidget(this);
  auto* df = new QFormLayout(dimse);
  aeTitle_ = field(dimse, "aeTitle", "its AE title");
  host_ = field(dimse, "host", "host name or address");
  port_ = new QSpinBox(dimse);
  port_->setObjectName("port");
  port_->setRange(1, 65535);
  port_->setValue(104);
  tlsCa_ = field(dimse, "tlsCa", "DICOM TLS: the CA that signed its certificate (PEM)");
  tlsCert_ = field(dimse, "tlsCert", "DICOM TLS: Lumen's certificate, if it wants one");
  tlsKey_ = field(dimse, "tlsKey", "DICOM TLS: its private key (PEM)");
  df->addRow("AE title", aeTitle_);
  df->addRow("Host", host_);
  df->addRow("Port", port_);
  df->addRow("TLS CA", tlsCa_);
  df->addRow("TLS certificate", tlsCert_);
  df->addRow("TLS key", tlsKey_);

  auto* web = new QWidget(this);
  auto* wf = new QFormLayout(web);
  url_ = field(web, "url", "https://host/dicom-web");
  auth_ = new QComboBox(web);
  auth_->setObjectName("auth");
  auth_->addItems({"none", "basic", "bearer"});
  user_ = field(web, "user", "basic: user name");
  secret_ = field(web, "secret", "basic: password; bearer: token");
  secret_->setEchoMode(QLineEdit::Password);
  caFile_ = field(web, "caFile", "a private CA to trust (PEM)");
  wf->addRow("Base URL", url_);
  wf->addRow("Authentication", auth_);
  wf->addRow("User", user_);
  wf->addRow("Password / token", secret_);
  wf->addRow("CA file", caFile_);

  forms_ = new QStackedWidget(this);
  forms_->addWidget(dimse);
  forms_->addWidget(web);
  connect(kind_, &QComboBox::currentIndexChanged, forms_, &QStackedWidget::setCurrentIndex);

  auto* top = new QFormLayout;
  top->addRow("Kind", kind_);
  top->addRow("Name", name_);
  auto* add = new QPushButton("Add", this);
  add->setObjectName("add");
  auto* remove = new QPushButton("Remove", this);
  remove->setObjectName("remove");
  test_ = new QPushButton("Test", this);
  test_->setObjectName("test");
  status_ = new QLabel(this);
  status_->setObjectName("status");
  status_->setWordWrap(true);

  auto* listButtons = new QHBoxLayout;
  listButtons->addWidget(test_);
  listButtons->addWidget(remove);
  listButtons->addStretch();
  auto* left = new QVBoxLayout;
  left->addWidget(list_, 1);
  left->addLayout(listButtons);
  auto* right = new QVBoxLayout;
  right->addLayout(top);
  right->addWidget(forms_);
  right->addWidget(add, 0, Qt::AlignRight);
  right->addStretch();
  auto* columns = new QHBoxLayout;
  columns->addLayout(left, 1);
  columns->addLayout(right, 1);
  // This workstation, as the nodes know it: the calling AE title of every query and
  // retrieve, and what `lumen-cli listen` answers to.
  localAe_ = field(this, "localAe", "LUMEN");
  localPort_ = new QSpinBox(this);
  localPort_->setObjectName("localPort");
  localPort_->setRange(1, 65535);
  localBind_ = field(this, "localBind", "every interface");
  localBind_->setToolTip("The IPv4 address the listener accepts connections on, such as 127.0.0.1; empty: every interface");
  localAllow_ = field(this, "localAllow", "any calling AE title");
  auto* saveLocal = new QPushButton("Save", this);
  saveLocal->setObjectName("saveLocal");
  auto* local = new QHBoxLayout;
  local->addWidget(new QLabel("This workstation: AE title", this));
  local->addWidget(localAe_);
  local->addWidget(new QLabel("port", this));
  local->addWidget(localPort_);
  local->addWidget(new QLabel("on", this));
  local->addWidget(localBind_);
  local->addWidget(new QLabel("accepts only", this));
  local->addWidget(localAllow_, 1);
  local->addWidget(saveLocal);
  // The listener's DICOM TLS (File > Receive studies, lumen-cli listen): on with a
  // certificate and its key; with a CA, callers must show a certificate it signed.
  localTlsCert_ = field(this, "localTlsCert", "listen with DICOM TLS: certificate (PEM)");
  localTlsKey_ = field(this, "localTlsKey", "its private key (PEM, unencrypted)");
  localTlsCa_ = field(this, "localTlsCa", "optional: callers' CA (PEM)");
  auto* localTls = new QHBoxLayout;
  localTls->addWidget(new QLabel("DICOM TLS", this));
  localTls->addWidget(localTlsCert_, 1);
  localTls->addWidget(localTlsKey_, 1);
  localTls->addWidget(localTlsCa_, 1);

  auto* layout = new QVBoxLayout(this);
  layout->addLayout(columns, 1);
  layout->addLayout(local);
  layout->addLayout(localTls);
  layout->addWidget(status_);
  resize(860, 460);

  connect(add, &QPushButton::clicked, this, &NodesDialog::addNode);
  connect(remove, &QPushButton::clicked, this, &NodesDialog::removeSelected);
  connect(saveLocal, &QPushButton::clicked, this, &NodesDialog::saveLocal);
  connect(test_, &QPushButton::clicked, this, &NodesDialog::testSelected);
  connect(&watcher_, &QFutureWatcher<Status>::finished, this, [this] {
    const Status s = watcher_.result();
    test_->setEnabled(true);
    const QString m = s ? QString("The node answers.") : qs(s.error().toString());
    say(m);
    emit testFinished(static_cast<bool>(s), m);
  });
  reload();
}

NodesDialog::~NodesDialog() { watcher_.waitForFinished(); }

void NodesDialog::say(const QString& message) { status_->setText(message); }

bool NodesDialog::refuse(const QString& message) {
  say(message);
  return false;
}

void NodesDialog::reload() {
  list_->clear();
  auto cfg = net::loadNodes(net::defaultNodesFile());
  if (!cfg) {
    say(qs(cfg.error().toString()));
    return;
  }
  config_ = std::move(*cfg);
  localAe_->setText(qs(config_.local.aeTitle));
  localPort_->setValue(config_.local.port);
  localBind_->setText(qs(config_.local.bindAddress));
  QStringList allow;
  for (const auto& a : config_.local.allowedAe) allow << qs(a);
  localAllow_->setText(allow.join(", "));
  localTlsCert_->setText(config_.local.tls ? qs(config_.local.tls->certFile) : QString());
  localTlsKey_->setText(config_.local.tls ? qs(config_.local.tls->keyFile) : QString());
  localTlsCa_->setText(config_.local.tls ? qs(config_.local.tls->caFile) : QString());
  for (const auto& n : config_.dimse)
    list_->addItem(qs(n.name + "  DIMSE " + n.aeTitle + "@" + n.host + ":" + std::to_string(n.port)) +
                   (n.tls ? "  (TLS)" : ""));
  for (const auto& n : config_.web)  // credentials are not shown
    list_->addItem(qs(n.name + "  DICOMweb " + n.baseUrl) + (n.auth.empty() ? "" : qs("  (" + n.auth + ")")));
}

bool NodesDialog::addNode() {
  // Read again: `lumen-cli nodes` may have changed the file since.
  auto cfg = net::loadNodes(net::defaultNodesFile());
  if (!cfg) return refuse(qs(cfg.error().toString()));
  const std::string name = text(name_);
  if (name.empty()) return refuse("Give the node a name.");
  if (cfg->findDimse(name) || cfg->findWeb(name)) return refuse("A node named " + qs(name) + " exists.");
  if (kind_->currentIndex() == 0) {
    net::DimseNode n{name, text(aeTitle_), text(host_), port_->value(), std::nullopt};
    if (auto why = net::checkAeTitle(n.aeTitle); !why.empty()) return refuse("AE title: " + qs(why));
    if (n.host.empty()) return refuse("Give the node's host.");
    if (!tlsCa_->text().isEmpty() || !tlsCert_->text().isEmpty() || !tlsKey_->text().isEmpty()) {
      n.tls = net::TlsFiles{absolute(text(tlsCa_)), absolute(text(tlsCert_)), absolute(text(tlsKey_))};
      if (auto why = net::checkTlsFiles(*n.tls, false); !why.empty()) return refuse("TLS: " + qs(why));
    }
    cfg->dimse.push_back(std::move(n));
  } else {
    net::WebNode w;
    w.name = name;
    w.baseUrl = text(url_);
    const QString auth = auth_->currentText();
    if (auth != "none") w.auth = auth.toStdString();
    if (auth == "basic") {
      w.username = text(user_);
      w.password = secret_->text().toStdString();
    } else if (auth == "bearer") {
      w.token = secret_->text().toStdString();
    }
    w.caFile = absolute(text(caFile_));
    if (auto why = net::checkWebNode(w); !why.empty()) return refuse(qs(why));
    cfg->web.push_back(std::move(w));
  }
  if (auto s = net::saveNodes(net::defaultNodesFile(), *cfg); !s) return refuse(qs(s.error().toString()));
  secret_->clear();
  say("Added " + qs(name) + ".");
  reload();
  emit nodesChanged();
  return true;
}

bool NodesDialog::saveLocal() {
  auto cfg = net::loadNodes(net::defaultNodesFile());
  if (!cfg) return refuse(qs(cfg.error().toString()));
  const std::string ae = text(localAe_);
  if (auto why = net::checkAeTitle(ae); !why.empty()) return refuse("AE title: " + qs(why));
  const std::string bind = text(localBind_);
  if (auto why = bind.empty() ? std::string() : net::checkBindAddress(bind); !why.empty())
    return refuse("Listen address " + qs(bind) + ": " + qs(why));
  std::vector<std::string> allow;
  for (const QString& a : localAllow_->text().split(',', Qt::SkipEmptyParts)) {
    const std::string t = a.trimmed().toStdString();
    if (t.empty()) continue;
    if (auto why = net::checkAeTitle(t); !why.empty()) return refuse("Accepts only " + qs(t) + ": " + qs(why));
    allow.push_back(t);
  }
  std::optional<net::TlsFiles> tls;
  if (!localTlsCert_->text().trimmed().isEmpty() || !localTlsKey_->text().trimmed().isEmpty() ||
      !localTlsCa_->text().trimmed().isEmpty()) {
    tls = net::TlsFiles{absolute(text(localTlsCa_)), absolute(text(localTlsCert_)), absolute(text(localTlsKey_))};
    if (auto why = net::checkTlsFiles(*tls, true); !why.empty()) return refuse("DICOM TLS: " + qs(why));
    for (const std::string& f : {tls->caFile, tls->certFile, tls->keyFile})
      if (!f.empty() && !QFileInfo(qs(f)).isReadable()) return refuse("DICOM TLS: cannot read " + qs(f));
  }
  cfg->local.aeTitle = ae;
  cfg->local.port = localPort_->value();
  cfg->local.bindAddress = bind == "0.0.0.0" ? "" : bind;
  cfg->local.allowedAe = allow;
  cfg->local.tls = tls;
  if (auto s = net::saveNodes(net::defaultNodesFile(), *cfg); !s) return refuse(qs(s.error().toString()));
  say(QString(tls ? "Saved (the listener speaks DICOM TLS only)." : "Saved (the listener speaks plain DICOM).") +
      " A running listener keeps its old settings until Receive studies is turned off and on.");
  reload();
  emit nodesChanged();
  return true;
}

void NodesDialog::removeSelected() {
  const int row = list_->currentRow();
  const int dimse = static_cast<int>(config_.dimse.size());
  if (row < 0 || row >= dimse + static_cast<int>(config_.web.size())) return;
  const std::string name = row < dimse ? config_.dimse[static_cast<std::size_t>(row)].name
                                       : config_.web[static_cast<std::size_t>(row - dimse)].name;
  auto cfg = net::loadNodes(net::defaultNodesFile());
  if (!cfg) {
    say(qs(cfg.error().toString()));
    return;
  }
  std::erase_if(cfg->dimse, [&](const auto& n) { return n.name == name; });
  std::erase_if(cfg->web, [&](const auto& n) { return n.name == name; });
  if (auto s = net::saveNodes(net::defaultNodesFile(), *cfg); !s) {
    say(qs(s.error().toString()));
    return;
  }
  say("Removed " + qs(name) + ".");
  reload();
  emit nodesChanged();
}

void NodesDialog::testSelected() {
  const int row = list_->currentRow();
  const int dimse = static_cast<int>(config_.dimse.size());
  if (row < 0 || row >= dimse + static_cast<int>(config_.web.size()) || watcher_.isRunning()) return;
  test_->setEnabled(false);
  say("Testing...");
  const web::RemoteNode n = row < dimse ? web::RemoteNode::of(config_.dimse[static_cast<std::size_t>(row)], config_.local, 10)
                                        : web::RemoteNode::of(config_.web[static_cast<std::size_t>(row - dimse)], config_.local, 10);
  watcher_.setFuture(QtConcurrent::run([n] { return web::check(n); }));
}

}  // namespace lumen::gui
