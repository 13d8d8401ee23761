#include "Receiver.h"

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
  // Called on the filer's committing thread; the queued call is dropped if this object is
  // gone by then (the filer, and with it the thread, ends in stop() first anyway).
  filer_->setListener([this](const dicom::FileInfo&) {
    QMetaObject::invokeMethod(
        this,
        [this] {
          ++received_;
          emit instanceReceived();
        },
        Qt::QueuedConnection);
  });
  auto server = net::StorageServer::start(cfg->local, *filer_);
  if (!server) return failWith(server.error().toString());
  server_ = std::move(server.value());
  received_ = 0;
  description_ = QString("Receiving as %1 on port %2%3%4")
                     .arg(QString::fromStdString(cfg->local.aeTitle))
                     .arg(cfg->local.port)
                     .arg(cfg->local.tls ? " (TLS)" : "")
                     .arg(cfg->local.allowedAe.empty() ? "" : " (allow-list)");
  return true;
}

void Receiver::stop() {
  server_.reset();  // associations end first, then the filer commits what it has
  filer_.reset();
  db_.reset();
  description_.clear();
}

}  // namespace lumen::gui
