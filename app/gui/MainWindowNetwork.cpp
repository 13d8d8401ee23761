// MainWindow's network side: Query / Retrieve, receiving, and a series that is shown while
// it is still arriving (it grows in place as its instances come in).
#include <algorithm>
#include <utility>

#include <QAction>
#include <QLabel>
#include <QPointer>
#include <QTimer>
#include <QtConcurrent/QtConcurrentRun>

#include "MainWindow.h"
#include "PacsDialog.h"
#include "Receiver.h"
#include "RemoteNode.h"
#include "SeriesLoader.h"
#include "SliceView.h"
#include "StudyBrowser.h"
#include "lumen/imaging/StudyDatabase.h"

namespace lumen::gui {

PacsDialog* MainWindow::showPacsDialog() {
  if (!pacs_) {
    pacs_ = new PacsDialog(this);
    connect(pacs_, &PacsDialog::retrieveRequested, this,
            [this](const web::RemoteNode& node, const QString& uid, const QString& label) { retrieveStudy(node, uid, label); });
  } else {
    pacs_->reloadNodes();
  }
  pacs_->show();
  pacs_->raise();
  return pacs_;
}

void MainWindow::scheduleLiveRefresh() {
  if (!liveRefresh_->isActive()) liveRefresh_->start();  // not restarted: a steady stream still shows
}

bool MainWindow::setReceiving(bool on, QString* error) {
  wantReceiving_ = on;  // remembered as asked for, even when the port is taken today
  if (!on) {
    if (receiver_) receiver_->stop();
    receiveLabel_->hide();
    if (receiveAction_) receiveAction_->setChecked(false);
    return true;
  }
  if (!receiver_) {
    receiver_ = new Receiver(browser_->dataDir(), this);
    connect(receiver_, &Receiver::instanceReceived, this, [this](const QString& study) {
      receiveLabel_->setText(QString("%1: %2 received").arg(receiver_->describe()).arg(receiver_->received()));
      instanceReceived(study.toStdString());
      scheduleLiveRefresh();
    });
  }
  QString why;
  const bool ok = receiver_->start(&why);
  if (receiveAction_) receiveAction_->setChecked(ok);
  if (!ok) {
    addMessage("Cannot receive studies: " + why);
    statusText_->setText("Cannot receive studies (see Messages)");
    receiveLabel_->hide();
    if (error) *error = why;
    return false;
  }
  receiveLabel_->setText(receiver_->describe());
  receiveLabel_->show();
  addMessage(receiver_->describe());
  return true;
}

void MainWindow::retrieveStudy(const web::RemoteNode& node, const QString& studyUid, const QString& label) {
  CancelToken cancel;
  const int job = beginJob(JobKind::Retrieve, "Retrieving " + label, [cancel] { cancel.cancel(); });
  const std::filesystem::path dir = browser_->dataDir();
  const std::string uid = studyUid.toStdString();
  ++retrieving_[uid];
  QPointer<MainWindow> self(this);
  (void)QtConcurrent::run([self, job, node, uid, dir, cancel] {
    // The worker's own database connection: SQLite connections belong to one thread.
    Progress progress([self, job](double f, std::string_view m) {
      const QString text = QString::fromUtf8(m.data(), static_cast<int>(m.size()));
      QMetaObject::invokeMethod(
          self,
          [self, job, f, text] {
            if (!self) return;
            self->taskProgress(job, f, text);
            self->scheduleLiveRefresh();  // the study is listed while it arrives
          },
          Qt::QueuedConnection);
    });
    Result<net::TransferReport> r = net::TransferReport{};
    if (auto db = db::StudyDatabase::open(dir); !db) r = db.error();
    else r = web::retrieve(node, uid, "", **db, progress, cancel);
    const bool ok = r && r->failed == 0;
    const int stored = r ? static_cast<int>(r->stored) : 0;
    QStringList problems;
    QString summary;
    if (!r) {
      summary = "Retrieve failed: " + QString::fromStdString(r.error().toString());
    } else {
      summary = QString("Retrieved %1 instance(s)").arg(r->stored);
      if (r->failed) summary += QString(", %1 failed (retrieving again fetches them)").arg(r->failed);
      for (const auto& p : r->problems) problems << QString::fromStdString(p);
    }
    QMetaObject::invokeMethod(
        self,
        [self, job, ok, stored, summary, problems, uid] {
          if (!self) return;
          if (auto it = self->retrieving_.find(uid); it != self->retrieving_.end() && --it->second <= 0)
            self->retrieving_.erase(it);
          if (self->follow_ && self->follow_->studyUid == uid && !ok) self->follow_->retrieveFailed = true;
          for (const auto& p : problems) self->addMessage(p);
          self->addMessage(summary);
          self->endTask(job, summary);
          self->browser_->refresh();
          self->followArrivals();  // a series shown while it arrived gets its last instances
          emit self->retrieveFinished(ok, stored, summary);
        },
        Qt::QueuedConnection);
  });
}


bool MainWindow::arriving(const std::string& studyUid) const {
  if (retrieving_.count(studyUid)) return true;
  const auto it = received_.find(studyUid);
  return it != received_.end() && it->second.elapsed() < kReceiveQuietMs;
}

void MainWindow::instanceReceived(const std::string& studyUid) {
  received_[studyUid].start();
  if (follow_) return;
  // A series on screen whose study is arriving at the listener grows like a retrieved one.
  for (int i = 0; i < 4; ++i)
    if (auto* v = grid_->sliceView(i); v && v->series() && !v->series()->derived &&
                                       v->series()->info.study.studyInstanceUid == studyUid &&
                                       !v->series()->info.series.seriesInstanceUid.empty()) {
      const auto& s = v->series();
      s->complete = false;
      follow_ = Follow{};
      follow_->seriesUid = s->info.series.seriesInstanceUid;
      follow_->studyUid = studyUid;
      follow_->label = QString::fromStdString(s->info.series.modality + " " + s->info.series.description).trimmed();
      follow_->viewport = i;
      follow_->shown = 0;  // the next load reads exactly the series' instances in the database
      follow_->last = s;
      currentSeriesMayHaveChanged();  // no longer complete: nothing computes on it until reloaded
      return;
    }
}

std::vector<std::shared_ptr<LoadedSeries>> MainWindow::shownAs(const std::string& seriesUid) const {
  std::vector<std::shared_ptr<LoadedSeries>> out;
  for (int i = 0; i < 4; ++i)
    if (auto* v = grid_->sliceView(i); v && v->series() && !v->series()->derived &&
                                       v->series()->info.series.seriesInstanceUid == seriesUid &&
                                       std::find(out.begin(), out.end(), v->series()) == out.end())
      out.push_back(v->series());
  return out;
}

void MainWindow::finishFollow(int instances, bool notes) {
  if (notes)
    for (const auto& n : follow_->notes) addMessage(n);
  statusText_->setText(follow_->retrieveFailed
                           ? QString("%1: the retrieve ended early; %2 instance(s) shown (see Messages)").arg(follow_->label).arg(instances)
                           : QString("%1: all %2 instance(s) received").arg(follow_->label).arg(instances));
  follow_.reset();
}

void MainWindow::followArrivals() {
  if (!follow_) return;
  // One look later at most is pending: ticks come every 0.3 s while instances arrive.
  auto later = [this](int ms) {
    if (std::exchange(follow_->recheck, true)) return;
    QTimer::singleShot(std::max(1, ms), this, [this] {
      if (!follow_) return;
      follow_->recheck = false;
      followArrivals();
    });
  };
  if (loadJob_ >= 0) return later(300);  // after the load in progress (the reader's, or a reload)
  if (shownAs(follow_->seriesUid).empty()) {  // closed, or another series opened in its place
    follow_.reset();
    return;
  }
  const bool done = !arriving(follow_->studyUid);
  const QStringList files = browser_->filesOfSeries(follow_->seriesUid);
  if (files.size() <= follow_->shown) {
    if (!done) {
      // A retrieve's end calls this; the listener's quiet time has to be waited for.
      if (!retrieving_.count(follow_->studyUid)) later(kReceiveQuietMs / 3);
      return;
    }
    // Nothing came after the last load: what it made is the whole series.
    if (auto last = follow_->last.lock()) {
      last->complete = true;
      grid_->settleSeries(last);
      syncFindings();
      emit seriesLoaded(last);
    }
    finishFollow(follow_->shown, true);
    return;
  }
  // At most one reload every 1.5 s while instances stream in (each decodes the whole
  // series again); the end of the arrival brings the last one at once.
  if (!done && follow_->since.isValid() && follow_->since.elapsed() < 1500)
    return later(1500 - static_cast<int>(follow_->since.elapsed()));
  startLoad(files, follow_->viewport, true);
}

}  // namespace lumen::gui
