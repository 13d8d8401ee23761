// MainWindow: what leaves the workstation as results (the report dialog, the de-identified
// export, sending to a node) and the AI classifications kept for the reports.

#include <QCoreApplication>
#include <QFileInfo>
#include <QPointer>
#include <QSettings>
#include <QThread>
#include <QtConcurrent/QtConcurrent>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <atomic>

#include "DeidDialog.h"
#include "MainWindow.h"
#include "MeasurementStore.h"
#include "LabelPanel.h"
#include "RemoteNode.h"
#include "ReportDialog.h"
#include "SendDialog.h"
#include "SliceView.h"
#include "StudyBrowser.h"
#include "ViewportGrid.h"
#include "lumen/imaging/Denoise.h"
#include "lumen/imaging/DerivedSeries.h"
#include "lumen/imaging/DicomScanner.h"
#include "lumen/imaging/StudyDatabase.h"
#include "lumen/imaging/VolumePlanner.h"

namespace lumen::gui {

void MainWindow::classified(const LoadedSeries& input, const AiClassification& result) {
  auto& list = classifications_[input.info.series.seriesInstanceUid];
  list.erase(std::remove_if(list.begin(), list.end(), [&](const AiClassification& c) { return c.model == result.model; }),
             list.end());
  list.push_back(result);
}

DeidDialog* MainWindow::showDeidDialog() {
  auto s = currentSeries();
  if (!s || s->info.files.empty()) {
    addMessage("note: open a DICOM series to export it de-identified");
    return nullptr;
  }
  QStringList files = browser_->filesOfStudy(s->info.study.studyInstanceUid);
  QString what = QString::fromStdString("study " + (s->info.study.description.empty() ? s->info.study.date : s->info.study.description));
  if (files.isEmpty()) {  // not in the database: the series as loaded
    for (const auto& f : s->info.files) files << QString::fromStdString(f);
    what = QString::fromStdString("series " + s->info.series.description);
  }
  auto* d = new DeidDialog(files, what, this);
  d->setAttribute(Qt::WA_DeleteOnClose);
  d->show();
  return d;
}

ReportDialog* MainWindow::showReportDialog() {
  auto s = currentSeries();
  if (!s) {
    addMessage("note: open a series to report on");
    return nullptr;
  }
  ReportDialog::Inputs in;
  in.series = s;
  int n = 0;
  for (const auto& m : measurements_->listFor(*s)->items()) {
    ++n;
    QString value = QString::fromStdString(measurements_->describe(*s, m)).replace('\n', ", ");
    in.measurements.push_back({m.text.empty() ? std::string(toString(m.kind)) + " " + std::to_string(n) : m.text,
                               toString(m.kind), value.toStdString()});
  }
  if (labels_->editing() && labels_->editSeries() == s && labels_->overlay()) {
    for (const auto& lm : labels_->measures()) {
      std::string name = "label " + std::to_string(lm.label);
      for (const auto& e : labels_->overlay()->entries)
        if (e.value == lm.label) name = e.name;
      in.segments.push_back({name, "label map",
                             QString("%1 mL, mean %2 SD %3 %4")
                                 .arg(lm.volumeMl, 0, 'f', 2)
                                 .arg(lm.mean, 0, 'f', 1)
                                 .arg(lm.sd, 0, 'f', 1)
                                 .arg(QString::fromStdString(s->info.units))
                                 .trimmed()
                                 .toStdString()});
    }
  }
  if (auto it = classifications_.find(s->info.series.seriesInstanceUid); it != classifications_.end())
    for (const auto& c : it->second) {
      in.ai.push_back({c.model, c.version, c.sha256, c.device, report::classificationResult(c.predicted, c.probabilities, c.detail),
                       c.disclaimer});
    }
  in.grabView = [this] {
    SliceView* v = grid_->activeSliceView();
    return v ? v->grabFramebuffer() : QImage();
  };
  in.viewCaption = [this] {
    SliceView* v = grid_->activeSliceView();
    if (!v || !v->hasSeries()) return QString();
    return QString("%1, image %2").arg(QString::fromStdString(v->series()->info.series.description)).arg(v->sliceIndex() + 1);
  };
  const std::filesystem::path dataDir =
      options_.dataDir.isEmpty() ? db::StudyDatabase::defaultDataDir() : std::filesystem::path(options_.dataDir.toStdString());
  in.reportsDir = QString::fromStdString((dataDir / "reports").string());
  if (options_.rememberSettings) {
    QSettings st;
    in.institution = st.value("report/institution").toString();
    in.logo = st.value("report/logo").toString();
    in.reader = st.value("report/reader").toString();
  }
  auto* d = new ReportDialog(std::move(in), this);
  d->setAttribute(Qt::WA_DeleteOnClose);
  connect(d, &ReportDialog::message, this, &MainWindow::addMessage);
  // The Encapsulated PDF is a series of the study: into the database, shown in the browser.
  connect(d, &ReportDialog::stored, this, [this](const QString& f) { browser_->importPaths({f}, false); });
  connect(d, &QDialog::finished, this, [this, d] {
    if (!options_.rememberSettings) return;
    QSettings st;
    st.setValue("report/institution", d->institution());
    st.setValue("report/logo", d->logo());
    st.setValue("report/reader", d->reader());
  });
  d->show();
  return d;
}

void MainWindow::saveLabelMap(const QString& path) {
  // One save at a time: two writes finishing out of order would leave the older voxels.
  for (const auto& [id, job] : jobs_)
    if (job.kind == JobKind::Save) {
      addMessage("note: the label map is still being saved; save again when that has finished");
      emit labelMapSaved(false, path);
      return;
    }
  QString error;
  auto prepared = labels_->prepareSave(path, &error);
  if (!prepared) {
    addMessage("error: " + error);
    emit labelMapSaved(false, path);
    return;
  }
  auto save = std::make_shared<LabelPanel::PendingSave>(std::move(*prepared));
  // No cancel: the file appears whole or not at all, and a save is short.
  const int job = beginJob(JobKind::Save, "Saving " + QFileInfo(path).fileName(), {});
  QPointer<MainWindow> self(this);
  (void)QtConcurrent::run([self, job, save] {
    auto outcome = std::make_shared<Result<std::vector<std::string>>>(save->write());
    QMetaObject::invokeMethod(
        self,
        [self, job, save, outcome] {
          if (!self) return;
          QString why;
          const bool ok = self->labels_->finishSave(*save, *outcome, &why);
          if (!ok) self->addMessage("error: " + why);
          self->endTask(job, ok ? "Saved " + save->path : "Not saved: " + why);
          emit self->labelMapSaved(ok, save->path);
        },
        Qt::QueuedConnection);
  });
}

SendDialog* MainWindow::showSendDialog() {
  std::vector<SendDialog::Choice> choices;
  auto count = [](const QStringList& f) { return QString(" (%1 file%2)").arg(f.size()).arg(f.size() == 1 ? "" : "s"); };
  if (auto sel = browser_->selectedSeries()) {
    const QStringList files = browser_->filesOfSeries(sel->info.seriesInstanceUid);
    if (!files.isEmpty())
      choices.push_back({QString("Selected series: %1 %2 %3")
                                 .arg(QString::fromStdString(sel->info.modality))
                                 .arg(sel->info.seriesNumber)
                                 .arg(QString::fromStdString(sel->info.description)) +
                             count(files),
                         files});
  }
  if (auto s = currentSeries(); s && !s->info.files.empty()) {
    QStringList files = browser_->filesOfSeries(s->info.series.seriesInstanceUid);
    if (files.isEmpty())  // not in the database: the files it was loaded from
      for (const auto& f : s->info.files) files << QString::fromStdString(f);
    choices.push_back({"Series on screen: " + QString::fromStdString(s->info.series.description) + count(files), files});
    const QStringList study = browser_->filesOfStudy(s->info.study.studyInstanceUid);
    if (!study.isEmpty())
      choices.push_back({"Its whole study, with the results of it: " + QString::fromStdString(s->info.study.description) +
                             count(study),
                         study});
  }
  if (choices.empty()) {
    addMessage("note: open a DICOM series, or select one in the browser, to send it");
    return nullptr;
  }
  auto* d = new SendDialog(std::move(choices), this);
  d->setAttribute(Qt::WA_DeleteOnClose);
  connect(d, &SendDialog::sendRequested, this,
          [this](const web::RemoteNode& node, const QStringList& files, std::optional<dicom::LosslessSyntax> compress,
                 const QString& label) { sendFiles(node, files, compress, label); });
  d->show();
  return d;
}

void MainWindow::sendFiles(const web::RemoteNode& node, const QStringList& files,
                           std::optional<dicom::LosslessSyntax> compress, const QString& label) {
  CancelToken cancel;
  const QString to = QString::fromStdString(node.name());
  const int job = beginJob(JobKind::Send, "Sending to " + to, [cancel] { cancel.cancel(); });
  std::vector<std::filesystem::path> paths;
  for (const auto& f : files) paths.emplace_back(f.toStdString());
  QPointer<MainWindow> self(this);
  // The encoding leaves one core to the window.
  const int threads = std::max(1, QThread::idealThreadCount() - 1);
  (void)QtConcurrent::run([self, job, node, paths, compress, cancel, label, to, threads] {
    Progress progress([self, job](double f, std::string_view m) {
      const QString text = QString::fromUtf8(m.data(), static_cast<int>(m.size()));
      QMetaObject::invokeMethod(self, [self, job, f, text] { if (self) self->taskProgress(job, f, text); }, Qt::QueuedConnection);
    });
    auto r = compress ? web::sendCompressed(node, paths, *compress, threads, progress, cancel)
                      : web::send(node, paths, progress, cancel);
    const bool ok = r && r->failed == 0;
    const int sent = r ? static_cast<int>(r->stored) : 0;
    QStringList problems;
    QString summary;
    if (!r) {
      summary = "Sending " + label + " to " + to + " failed: " + QString::fromStdString(r.error().toString());
    } else {
      summary = QString("Sent %1 file(s) to %2%3").arg(r->stored).arg(to).arg(compress ? QString(" as ") + dicom::toString(*compress) : QString());
      if (r->failed) summary += QString(", %1 not sent").arg(r->failed);
      for (const auto& p : r->problems) problems << QString::fromStdString(p);
    }
    QMetaObject::invokeMethod(
        self,
        [self, job, ok, sent, summary, problems] {
          if (!self) return;
          for (const auto& p : problems) self->addMessage(p);
          self->addMessage(summary);
          self->endTask(job, summary);
          emit self->sendFinished(ok, sent, summary);
        },
        Qt::QueuedConnection);
  });
}

AiHost::ClassicalTools MainWindow::classicalTools() const {
  return {&imaging::estimateNoiseSd, &imaging::bilateralDenoise};
}

void MainWindow::storeDerivedSeries(std::shared_ptr<const LoadedSeries> from, std::shared_ptr<const Volume> voxels,
                                    const QString& description, const QString& derivation) {
  const int job = beginJob(JobKind::Store, "Storing " + description, {});
  const std::filesystem::path dir = browser_->dataDir();
  QPointer<MainWindow> self(this);
  (void)QtConcurrent::run([self, job, from, voxels, description, derivation, dir] {
    namespace fs = std::filesystem;
    std::vector<std::string> notes;
    // The source instances again (the viewer keeps voxels, not headers), then the series
    // written beside the store and taken into it as a series of the study.
    auto stored = [&]() -> Result<std::size_t> {
      std::vector<fs::path> inputs;
      std::stringstream ss(from->source);
      for (std::string part; std::getline(ss, part, ';');)
        if (!part.empty()) inputs.emplace_back(part);
      auto scan = dicom::scanInputs(inputs, {});
      if (!scan) return scan.error();
      const auto plans = dicom::planVolumes(*scan);
      const dicom::VolumePlan* plan = nullptr;
      for (const auto& p : plans)
        if (p.info.series.seriesInstanceUid == from->info.series.seriesInstanceUid && sameGrid(p.geometry, voxels->geometry()))
          plan = &p;
      if (!plan) return Error(ErrorCode::NotFound, "the source series is no longer where it was read from", from->source);
      dicom::DerivedSeriesOptions o;
      o.seriesDescription = description.toStdString();
      o.derivationDescription = (derivation + " in Lumen " + LUMEN_VERSION).toStdString();
      static std::atomic<int> counter{0};
      const fs::path staging = dir / "staging" / ("derived-" + std::to_string(QCoreApplication::applicationPid()) + "-" +
                                                  std::to_string(++counter));
      auto w = dicom::writeDerivedSeries(*voxels, *scan, *plan, o, staging);
      if (!w) return w.error();
      notes = w->notes;
      Status st = Error(ErrorCode::Database, "no study database");
      if (auto db = db::StudyDatabase::open(dir); !db) st = db.error();
      else st = (*db)->storeResults(w->files);
      std::error_code ec;
      fs::remove_all(staging, ec);
      if (!st) return st.error();
      return w->files.size();
    }();
    const bool ok = static_cast<bool>(stored);
    const QString summary = ok ? QString("Stored %1 (%2 images) as a new series of its study").arg(description).arg(*stored)
                               : "Not stored: " + QString::fromStdString(stored.error().toString());
    QMetaObject::invokeMethod(
        self,
        [self, job, ok, summary, notes] {
          if (!self) return;
          for (const auto& n : notes) self->addMessage("note: " + QString::fromStdString(n));
          self->addMessage(summary);
          self->endTask(job, summary);
          self->browser_->liveRefresh();
          emit self->derivedSeriesStored(ok, summary);
        },
        Qt::QueuedConnection);
  });
}

}  // namespace lumen::gui
