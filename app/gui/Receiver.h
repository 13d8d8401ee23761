#pragma once
// The workstation's storage listener: studies a PACS sends (C-STORE, or a C-MOVE to this
// AE title) are filed into the study database while the window is open, each instance
// durable before it is acknowledged. Off unless the user turns it on (File > Receive
// studies); it listens as the local node of nodes.json says (AE title, port, allow-list,
// TLS), the same settings `lumen-cli listen` uses.

#include <QObject>
#include <QString>
#include <filesystem>
#include <memory>

namespace lumen::db {
class StudyDatabase;
}
namespace lumen::net {
class InstanceFiler;
class StorageServer;
}  // namespace lumen::net

namespace lumen::gui {

class Receiver : public QObject {
  Q_OBJECT
 public:
  explicit Receiver(std::filesystem::path dataDir, QObject* parent = nullptr);
  ~Receiver() override;  // stops (see stop())

  /// Starts listening; false with the reason (port taken, bad nodes.json, no database).
  bool start(QString* error);
  /// Takes no new associations; those still running finish on a pool thread (their
  /// instances are filed), so the window never waits for a sender. The port is free once
  /// they have (QThreadPool::globalInstance()->waitForDone() waits for that).
  void stop();
  bool running() const { return server_ != nullptr; }
  /// "Receiving as LUMEN on port 11112 (allow-list)" while running.
  QString describe() const { return description_; }
  /// Instances filed since start().
  quint64 received() const { return received_; }

 signals:
  /// An instance is in the database (on the GUI thread).
  void instanceReceived(const QString& studyUid);

 private:
  std::filesystem::path dataDir_;
  std::unique_ptr<db::StudyDatabase> db_;
  std::unique_ptr<net::InstanceFiler> filer_;
  std::unique_ptr<net::StorageServer> server_;
  QString description_;
  quint64 received_ = 0;
  quint64 session_ = 0;  // which start() an arriving instance belongs to
};

}  // namespace lumen::gui
