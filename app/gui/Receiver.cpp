#include "Receiver.h"

#include <QtConcurrent/QtConcurrentRun>

#include "lumen/imaging/Dimse.h"
#include "lumen/imaging/Nodes.h"
#include "lumen/imaging/StudyDatabase.h"

namespace lumen::gui {

Receiver::Receiver(std::filesystem::path dataDir, QObject* parent) : QObject(parent), dataDir_(std::move(dataDir)) {}

Receiver::~Receiver() { stop(); }

bool Receiver::start(QString* error) {
  if (running()) return true;
  const auto failWith = [&](const std::string& why) {
    if (error) *error = QString::fromStdString(why);
    stop();
    return false;
  };
  auto cfg = net::loadNodes(net::defaultNodesFile());
  if (!cfg) return failWith(cfg.error().toString());
  auto db = db::StudyDatabase::open(dataDir_);
  if (!db) return failWith(db.error().toString());
  db_ = std::move(db.value());
  filer_ = std::make_unique<net::InstanceFiler>(*db_);
  // Called on the filer's committing thread. stop() removes it before this object can go;
  // an instance of an earlier session that is delivered late is not counted in this one.
  const quint64 session = ++session_;
  received_ = 0;
  filer_->setListener([this, session](const dicom::FileInfo& f) {
    const QString study = QString::fromStdString(f.study.studyInstanceUid);
    QMetaObject::invokeMethod(
        this,
        [this, session, study] {
          if (session != session_) return;
          ++received_;
          emit instanceReceived(study);
        },
        Qt::QueuedConnection);
  });
  auto server = net::StorageServer::start(cfg->local, *filer_);
  if (!server) return failWith(server.error().toString());
  server_ = std::move(server.value());
  description_ = QString("Receiving as %1 on %2port %3%4%5")
                     .arg(QString::fromStdString(cfg->local.aeTitle))
                     .arg(cfg->local.bindAddress.empty() ? QString() : QString::fromStdString(cfg->local.bindAddress + " "))
                     .arg(cfg->local.port)
                     .arg(cfg->local.tls ? " (TLS)" : "")
                     .arg(cfg->local.allowedAe.empty() ? "" : " (allow-list)");
  return true;
}

void Receiver::stop() {
  ++session_;
  description_.clear();
  if (filer_) filer_->setListener({});  // nothing reaches this object from now on
  // Associations still running finish (their instances are filed, durably) on a pool
  // thread: the window does not wait for a PACS that is still sending.
  struct Parts {
    std::unique_ptr<db::StudyDatabase> db;
    std::unique_ptr<net::InstanceFiler> filer;
    std::unique_ptr<net::StorageServer> server;
  };
  auto parts = std::make_shared<Parts>(Parts{std::move(db_), std::move(filer_), std::move(server_)});
  if (!parts->server && !parts->filer && !parts->db) return;
  (void)QtConcurrent::run([parts] {
    parts->server.reset();  // associations end first, then the filer commits what it has
    parts->filer.reset();
    parts->db.reset();
  });
}

}  // namespace lumen::gui
