#include "SeriesLoader.h"

#include <QMetaObject>
#include <QtConcurrent/QtConcurrentRun>

#include <chrono>
#include <mutex>

#include "lumen/core/Log.h"
#include "lumen/imaging/DicomScanner.h"
#include "lumen/imaging/DicomSeg.h"
#include "lumen/imaging/ImageIO.h"
#include "lumen/imaging/VolumeLoader.h"
#include "lumen/imaging/VolumePlanner.h"

namespace lumen::gui {

SeriesLoader::SeriesLoader(QObject* parent) : QObject(parent) {
  qRegisterMetaType<std::shared_ptr<lumen::gui::LoadedSeries>>();
}

SeriesLoader::~SeriesLoader() {
  cancel();
  worker_.waitForFinished();  // the worker refers to this object until it ends
}

void SeriesLoader::cancel() { cancel_.cancel(); }

int SeriesLoader::start(const Request& request) {
  cancel();
  worker_.waitForFinished();
  cancel_ = CancelToken{};
  const int id = ++nextId_;
  busy_ = true;
  SeriesLoader* self = this;
  CancelToken cancel = cancel_;
  // The worker only emits signals (queued to this object's thread); it never touches
  // widgets.
  worker_ = QtConcurrent::run([self, request, id, cancel]() {
    auto emitLater = [&](auto fn) { fn(self); };
    Progress progress([&](double f, std::string_view m) {
      emitLater([&](SeriesLoader* s) { emit s->progress(id, f, QString::fromUtf8(m.data(), static_cast<int>(m.size()))); });
    });
    std::vector<std::filesystem::path> paths;
    for (const auto& p : request.paths) paths.emplace_back(p.toStdString());
    QStringList notes;

    // A single NIfTI / NRRD file is read directly; everything else is DICOM.
    if (paths.size() == 1 && io::formatFromPath(paths[0]) != io::ImageFormat::Unknown) {
      progress.unknown("Reading image");
      auto v = io::readImage(paths[0]);
      if (!v) {
        emitLater([&](SeriesLoader* s) { emit s->failed(id, QString::fromStdString(v.error().toString())); });
      } else {
        auto series = std::make_shared<LoadedSeries>();
        series->volume = std::make_shared<Volume>(std::move(v.value()));
        series->info.series.description = paths[0].filename().string();
        series->info.stackKind = series->volume->size()[2] > 1 ? StackKind::Spatial : StackKind::Single2D;
        series->source = paths[0].string();
        computeStatistics(*series);
        emitLater([&](SeriesLoader* s) {
          emit s->firstSliceReady(id, series);
          emit s->finished(id, series, notes);
        });
      }
      self->busy_ = false;
      return;
    }

    auto scan = dicom::scanInputs(paths, {}, progress.sub(0.0, 0.25), cancel);
    if (!scan) {
      emitLater([&](SeriesLoader* s) { emit s->failed(id, QString::fromStdString(scan.error().toString())); });
      self->busy_ = false;
      return;
    }
    std::vector<dicom::SkippedFile> skipped = scan->skipped;
    auto plans = dicom::planVolumes(*scan, &skipped);
    for (const auto& k : skipped) notes << QString::fromStdString("skipped " + k.path + ": " + k.reason);
    if (const auto* e = dicom::firstListingError(skipped))
      notes << QString::fromStdString("error: " + e->path + ": " + e->reason + "; this series may be incomplete");
    auto choice = dicom::chooseVolume(plans, request.seriesUid.toStdString(), request.volumeNumber,
                                      request.paths.join(", ").toStdString());
    if (!choice) {
      QString msg = plans.empty() && skipped.size() == 1
                        ? QString::fromStdString(skipped[0].path + ": " + skipped[0].reason)
                        : plans.empty() ? QString("No image volume found (%1 file(s) skipped)").arg(skipped.size())
                                        : QString::fromStdString(choice.error().toString());
      emitLater([&](SeriesLoader* s) { emit s->failed(id, msg); });
      self->busy_ = false;
      return;
    }
    const std::size_t chosen = choice->index;
    for (std::size_t c : choice->others)
      notes << QString::fromStdString("also found: " + plans[c].info.series.modality + " series " +
                                      std::to_string(plans[c].info.series.seriesNumber) +
                                      (plans[c].info.splitLabel.empty() ? "" : " [" + plans[c].info.splitLabel + "]"));
    const auto& plan = plans[chosen];
    for (const auto& w : plan.info.warnings) notes << QString::fromStdString("warning: " + w);

    auto series = std::make_shared<LoadedSeries>();
    series->info = plan.info;
    series->source = request.paths.join(";").toStdString();
    series->segReference = std::make_shared<const dicom::SegReference>(dicom::segReferenceOf(*scan, plan));
    series->complete = false;  // shown while loading; nothing computes on it
    std::mutex m;
    bool firstSent = false;
    auto lastTick = std::chrono::steady_clock::now();
    dicom::LoadOptions lo;
    lo.zeroFill = true;
    lo.onAllocated = [&](const Volume& v) {
      // Once the GUI holds the partial series, its volume is never replaced under it: a
      // reload as float32 (values beyond int16) reaches the GUI as the finished series.
      std::lock_guard<std::mutex> lock(m);
      if (!firstSent) series->volume = std::make_shared<Volume>(v.share());
    };
    lo.onSliceReady = [&](std::size_t k) {
      std::lock_guard<std::mutex> lock(m);
      if (!firstSent) {
        if (!series->volume) return;
        firstSent = true;
        // The first decoded slice gives the first picture its window.
        computeSliceStatistics(*series, k);
        emitLater([&](SeriesLoader* s) { emit s->firstSliceReady(id, series); });
        return;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now - lastTick > std::chrono::milliseconds(50)) {
        lastTick = now;
        emitLater([&](SeriesLoader* s) { emit s->slicesArrived(id); });
      }
    };
    auto v = dicom::loadVolume(*scan, plan, lo, progress.sub(0.25, 1.0), cancel);
    if (!v) {
      emitLater([&](SeriesLoader* s) { emit s->failed(id, QString::fromStdString(v.error().toString())); });
      self->busy_ = false;
      return;
    }
    // The final volume (the same buffer, unless it had to be reloaded as float).
    auto done = std::make_shared<LoadedSeries>();
    {
      std::lock_guard<std::mutex> lock(m);
      done->info = series->info;
      done->source = series->source;
      done->segReference = series->segReference;
    }
    done->volume = std::make_shared<Volume>(std::move(v.value()));
    done->complete = true;
    computeStatistics(*done);
    LUMEN_INFO("loaded series " << done->info.series.seriesInstanceUid << ": " << done->volume->size()[0] << "x"
                                << done->volume->size()[1] << "x" << done->volume->size()[2]);
    emitLater([&](SeriesLoader* s) { emit s->finished(id, done, notes); });
    self->busy_ = false;
  });
  return id;
}

}  // namespace lumen::gui
