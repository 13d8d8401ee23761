// GUI tests: The AI panel: models run on the series on screen, estimates, advice, trust.

#include "GuiTest.h"

// The AI panel (a plug-in loaded after start-up) runs models on the series in view: a
// segmentation becomes a coloured overlay with its volume, an enhancement a derived series
// to compare with the original at the same slice, a classification probabilities with a
// saliency map and the bundle's suggestion; a run can be cancelled.
void GuiTest::aiPanelRunsModelsOnTheCurrentSeries() {
  LUMEN_SKIP_WITHOUT_AI();
  auto [w, panel, finished] = openAi(kSample);
  QVERIFY(w);
  SliceView* v = w->grid()->activeSliceView();
  const auto original = v->series();

  // Segmentation: label 1 where the CT is above 300 HU, drawn in the bundle's colour.
  QVERIFY2(run("gui_segment"), qPrintable(w->messages().join("\n")));
  QTest::qWait(100);
  const auto o = w->labelPanel()->overlay();
  QVERIFY(o);
  QCOMPARE(static_cast<int>(o->entries.size()), 1);
  QCOMPARE(QString::fromStdString(o->entries[0].name), QString("bone"));
  QVERIFY(sameGrid(o->labels->geometry(), original->volume->geometry()));
  const Volume& ct = *original->volume;
  std::size_t agree = 0;
  for (std::size_t i = 0; i < ct.voxelCount(); ++i)
    agree += (ct.data<std::int16_t>()[i] > 300) == (o->labels->data<std::uint8_t>()[i] == 1);
  QVERIFY2(agree > ct.voxelCount() * 999 / 1000, qPrintable(QString::number(agree)));
  const QImage img = v->grabFramebuffer().convertToFormat(QImage::Format_RGB888);
  int green = 0;
  for (int y = 0; y < img.height(); y += 4)
    for (int x = 0; x < img.width(); x += 4) green += qGreen(img.pixel(x, y)) > qRed(img.pixel(x, y)) + 40;
  QVERIFY2(green > 200, qPrintable(QString("%1 green samples").arg(green)));
  auto* volumes = panel->findChild<QLabel*>("AiLabelVolumes");
  QVERIFY(volumes && volumes->text().contains("bone:") && volumes->text().contains("mL"));
  QVERIFY2(volumes->text().contains("uncertainty 0."), qPrintable(volumes->text()));
  // The uncertainty in place of the labels: the test network's logits (0.5 - x, x - 0.5),
  // x = (HU + 100) / 800 clipped, give an entropy of 1 at 300 HU (band 8 of the heat
  // overlay) and 0.840 in air (x = 0: band 1 + (0.840 - 0.2) / 0.1 = 7).
  auto* unsure = panel->findChild<QCheckBox*>("AiShowUncertainty");
  QVERIFY(unsure);
  unsure->setChecked(true);
  const auto heat = w->labelPanel()->overlay();
  QVERIFY(heat && heat != o);
  QVERIFY(QString::fromStdString(heat->entries.front().name).startsWith("uncertainty"));
  int checkedAir = 0, checkedEdge = 0;
  for (std::size_t i = 0; i < ct.voxelCount(); i += 7) {
    const int hu = ct.data<std::int16_t>()[i], band = heat->labels->data<std::uint8_t>()[i];
    if (hu <= -900 && checkedAir < 50) {
      QCOMPARE(band, 7);
      ++checkedAir;
    } else if (hu >= 295 && hu <= 305 && checkedEdge < 50) {
      QCOMPARE(band, 8);
      ++checkedEdge;
    }
  }
  QVERIFY(checkedAir > 10 && checkedEdge > 10);
  unsure->setChecked(false);  // the labels again
  QCOMPARE(QString::fromStdString(w->labelPanel()->overlay()->entries.front().name), QString("bone"));

  // Enhancement: a derived series replaces the original in place (same slice), and back.
  v->setSliceIndex(7);
  QVERIFY(run("gui_enhance"));
  QTest::qWait(100);
  QVERIFY(v->series() != original);
  QCOMPARE(v->sliceIndex(), 7);
  QVERIFY(QString::fromStdString(v->series()->info.series.description).contains("Identity enhancement (test)"));
  QCOMPARE(v->series()->volume->pixelType(), PixelType::Int16);  // the input's type
  QCOMPARE(v->series()->volume->scalarAt(200, 300, 7), original->volume->scalarAt(200, 300, 7));
  auto* showOriginal = panel->findChild<QCheckBox*>("AiShowOriginal");
  QVERIFY(showOriginal);
  showOriginal->setChecked(true);
  QCOMPARE(v->series(), original);
  QCOMPARE(v->sliceIndex(), 7);
  showOriginal->setChecked(false);
  // Stored as a derived DICOM series of the study: in the database and the browser, each
  // instance naming its source, the voxels read back as shown.
  const auto enhanced = v->series();
  auto* store = panel->findChild<QPushButton*>("AiStoreDerived");
  QVERIFY(store && store->isEnabled());
  QSignalSpy stored(w, &MainWindow::derivedSeriesStored);
  QTest::mouseClick(store, Qt::LeftButton);
  QVERIFY(!store->isEnabled());  // once
  QVERIFY(stored.wait(60000));
  QVERIFY2(stored.first().at(0).toBool(), qPrintable(stored.first().at(1).toString()));
  QVERIFY(stored.first().at(1).toString().contains("(32 images) as a new series of its study"));
  {
    auto db = db::StudyDatabase::open(dataDir_->path().toStdString());
    QVERIFY(db);
    auto studies = (*db)->studies();
    QVERIFY(studies && studies->size() == 1);
    auto series = (*db)->series(studies->front().id);
    QVERIFY(series && series->size() == 1);
    QCOMPARE(series->front().instanceCount, 32);
    QVERIFY(series->front().info.seriesInstanceUid != original->info.series.seriesInstanceUid);
    auto rows = (*db)->instances(series->front().id);
    QVERIFY(rows && rows->size() == 32);
    auto info = dicom::readFileInfo(rows->front().path);
    QVERIFY(info);
    QVERIFY(info->imageType.size() >= 2);
    QCOMPARE(QString::fromStdString(info->imageType[0] + "\\" + info->imageType[1]), QString("DERIVED\\SECONDARY"));
    QFile file(QString::fromStdString(rows->front().path));
    QVERIFY(file.open(QIODevice::ReadOnly));
    QVERIFY(file.readAll().contains("Made by the AI model gui_enhance"));  // its Derivation Description
    const Volume back = loadDicom(QString::fromStdString(std::filesystem::path(rows->front().path).parent_path().string()));
    QCOMPARE(back.byteSize(), enhanced->volume->byteSize());
    QVERIFY(std::memcmp(back.bytes(), enhanced->volume->bytes(), back.byteSize()) == 0);
  }
  QTRY_COMPARE_WITH_TIMEOUT(w->browser()->studyCount(), 1, 5000);

  // Classification: probabilities, a saliency overlay, the suggested follow-up model.
  QVERIFY(run("classifier2d"));
  auto* probs = panel->findChild<QWidget*>("AiProbabilities");
  QVERIFY(probs);
  QCOMPARE(static_cast<int>(probs->findChildren<QProgressBar*>().size()), 2);
  auto* saliency = panel->findChild<QCheckBox*>("AiShowSaliency");
  QVERIFY(saliency);
  saliency->setChecked(true);
  QVERIFY(w->labelPanel()->overlay());
  QVERIFY(QString::fromStdString(w->labelPanel()->overlay()->entries.front().name).startsWith("saliency"));
  auto* suggestion = panel->findChild<QPushButton*>("AiSuggestion");
  QVERIFY(suggestion);
  QCOMPARE(suggestion->text(), QString("Enhance this series"));
  QTest::qWait(100);
  w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/ai-panel.png");  // for a person to look at
  finished.clear();
  suggestion->click();
  QVERIFY(finished.wait(kRunGuardMs));
  QVERIFY(finished.first().at(0).toBool());

  // Cancel: the run stops and says so; nothing is replaced.
  const auto before = v->series();
  bool started = false;
  finished.clear();
  QMetaObject::invokeMethod(panel, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, "gui_enhance"));
  QVERIFY(started);
  auto* cancel = w->findChildren<QToolButton*>().last();
  for (QToolButton* b : w->findChildren<QToolButton*>())
    if (b->text() == "Cancel") cancel = b;
  QVERIFY(cancel->isVisible());
  cancel->click();
  QVERIFY(finished.wait(kRunGuardMs));
  QVERIFY(!finished.first().at(0).toBool());
  QCOMPARE(v->series(), before);
  QVERIFY(w->messages().join("\n").contains("cancelled"));
}

// A classifier with an estimate (the CT dose grader's kind): the panel shows the estimate
// with the range the model knows next to the class; outside that range it shows why there
// is no class, and no probabilities (they would be a guess).
void GuiTest::aiPanelShowsTheEstimateAndNoGuessOutsideItsRange() {
  LUMEN_SKIP_WITHOUT_AI();
  auto [w, panel, finished] = openAi(kSample);
  QVERIFY(w);
  // gui_grader reads 100 x the SD of each slice scaled by 0.4 / 2000: the sample's
  // slices, whose HU vary by some hundreds, read 3-30.
  QVERIFY2(run("gui_grader"), qPrintable(w->messages().join("\n")));
  auto* estimate = panel->findChild<QLabel*>("AiEstimate");
  QVERIFY(estimate);
  QVERIFY(!panel->findChild<QLabel*>("AiNotGraded"));
  const Volume& ct = *w->grid()->activeSliceView()->series()->volume;
  const std::size_t perSlice = ct.geometry().size[0] * ct.geometry().size[1];
  double logSum = 0;
  for (std::size_t k = 0; k < ct.geometry().size[2]; ++k) {
    double s = 0, s2 = 0;
    for (std::size_t i = 0; i < perSlice; ++i) {
      const double x = ct.data<std::int16_t>()[k * perSlice + i] * 0.4 / 2000.0;
      s += x;
      s2 += x * x;
    }
    const double mean = s / static_cast<double>(perSlice);
    logSum += std::log(std::sqrt(s2 / static_cast<double>(perSlice) - mean * mean) * 100);
  }
  const double expected = std::exp(logSum / static_cast<double>(ct.geometry().size[2]));
  QVERIFY2(expected > 3 && expected < 30, qPrintable(QString::number(expected)));
  QCOMPARE(estimate->text(), QString("noise SD %1 HU (the model reads 3-30 HU)").arg(expected, 0, 'g', 3));
  QVERIFY(panel->findChild<QWidget*>("AiProbabilities"));

  // grader2d reads the same slices unscaled: thousands, far above its 3-30.
  QVERIFY2(run("grader2d"), qPrintable(w->messages().join("\n")));
  QTRY_VERIFY(!panel->findChild<QLabel*>("AiEstimate"));  // the first result, deleted later
  auto* notGraded = panel->findChild<QLabel*>("AiNotGraded");
  QVERIFY(notGraded);
  QVERIFY2(notGraded->text().startsWith("not graded: outside the range the model knows (3-30 HU): noise SD about "),
           qPrintable(notGraded->text()));
  QVERIFY(!panel->findChild<QWidget*>("AiProbabilities"));
  QVERIFY(!panel->findChild<QPushButton*>("AiSuggestion"));
  QTest::qWait(100);
  w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/ai-not-graded.png");  // for a person to look at
  bool inStatusBar = false;  // the job's end, as the status bar shows it
  for (QLabel* l : w->statusBar()->findChildren<QLabel*>())
    inStatusBar |= l->text().startsWith("grader2d: not graded: outside the range the model knows");
  QVERIFY(inStatusBar);
}

// A denoiser whose card compares it with the bilateral filter: the panel measures the
// series' noise, recommends what the card found better at that noise (gui_enhance's test
// card: the filter, at its 40 HU level), and runs the filter with the card's setting.
void GuiTest::aiPanelRecommendsADenoiserAndRunsTheClassicalFilter() {
  LUMEN_SKIP_WITHOUT_AI();
  auto [w, panel, finished] = openAi(kSample);
  QVERIFY(w);
  SliceView* v = w->grid()->activeSliceView();
  const auto original = v->series();
  const auto estimate = imaging::estimateNoiseSd(*original->volume);
  QVERIFY2(estimate, estimate ? "" : estimate.error().message.c_str());
  QVERIFY2(*estimate > 30 && *estimate < 70, qPrintable(QString::number(*estimate)));  // the sinus scan's bone kernel

  auto* list = panel->findChild<QListWidget*>("AiModelList");
  auto* advice = panel->findChild<QLabel*>("AiDenoiseAdvice");
  auto* classical = panel->findChild<QPushButton*>("AiRunClassical");
  auto* runButton = panel->findChild<QPushButton*>("AiRun");
  QVERIFY(list && advice && classical && runButton);
  QSignalSpy advised(panel, SIGNAL(adviceShown()));
  auto select = [&](const QString& name) {
    for (int i = 0; i < list->count(); ++i)
      if (list->item(i)->data(Qt::UserRole).toString() == name) list->setCurrentRow(i);
  };
  select("gui_segment");  // no card: no advice, no filter
  QVERIFY(!advice->isVisibleTo(panel) && !classical->isVisibleTo(panel));
  select("gui_enhance");
  QVERIFY2(advised.wait(60000), qPrintable(advice->text()));
  QVERIFY(advice->isVisibleTo(panel) && classical->isVisibleTo(panel));
  QVERIFY2(advice->text().contains(QString("about %1 HU").arg(*estimate, 0, 'f', 1)), qPrintable(advice->text()));
  QVERIFY2(advice->text().contains("the network at 38.0 dB and the bilateral filter at 39.5 dB"), qPrintable(advice->text()));
  QVERIFY(advice->text().contains("the bilateral filter is</b> recommended"));
  QVERIFY2(classical->text().endsWith("(recommended)"), qPrintable(classical->text()));
  QVERIFY(!runButton->text().contains("recommended"));
  // The same card measured at 1 mm pixels says nothing about the sample's 0.31 mm ones.
  advised.clear();
  select("gui_enhance_1mm");
  QVERIFY(advised.wait(60000));
  QVERIFY2(advice->text().contains("measured at 1.00 mm pixels and this series has 0.31 mm ones"), qPrintable(advice->text()));
  QVERIFY(!classical->text().contains("recommended") && !runButton->text().contains("recommended"));
  advised.clear();
  select("gui_enhance");
  QVERIFY(advised.wait(60000));
  QVERIFY(classical->text().endsWith("(recommended)"));

  // The filter at the card's 40 HU setting: 2 mm, range 1.5 x the level's true SD (50 HU),
  // scaled by the series' reading over the level's (40 HU).
  finished.clear();
  QVERIFY(classical->isEnabled());
  QTest::mouseClick(classical, Qt::LeftButton);
  QVERIFY(finished.wait(kRunGuardMs));
  QVERIFY2(finished.first().at(0).toBool(), qPrintable(finished.first().at(1).toString()));
  QTest::qWait(50);
  const auto filtered = v->series();
  QVERIFY(filtered != original);
  QVERIFY(QString::fromStdString(filtered->info.series.description).contains("bilateral filter"));
  QCOMPARE(filtered->volume->pixelType(), PixelType::Int16);
  auto expected = imaging::bilateralDenoise(*original->volume, 2.0, 1.5 * 50.0 * *estimate / 40.0);
  QVERIFY(expected);
  std::size_t compared = 0;
  for (std::size_t i = 0; i < expected->voxelCount(); i += 97, ++compared) {
    const long e = std::clamp(std::lround(expected->data<float>()[i]), -32768L, 32767L);
    QCOMPARE(static_cast<long>(filtered->volume->data<std::int16_t>()[i]), e);
  }
  QVERIFY(compared > 10000);
  const auto after = imaging::estimateNoiseSd(*filtered->volume);
  QVERIFY2(after && *after < 0.6 * *estimate, qPrintable(after ? QString::number(*after) : QString()));
  auto* showOriginal = panel->findChild<QCheckBox*>("AiShowOriginal");
  QVERIFY(showOriginal);
  showOriginal->setChecked(true);
  QCOMPARE(v->series(), original);

  // Another series on screen: the advice follows it (the ramp phantom has no soft tissue),
  // told by the window as the load ends, not found later by looking.
  advised.clear();
  QString adviceAtLoad;
  // (While its first slice is shown alone the series is not complete: "Open a CT series",
  // an advice too; the one that counts comes after the load.)
  auto atLoad = connect(w, &MainWindow::seriesLoaded, this, [&] {
    adviceAtLoad = advice->text();
    advised.clear();
  });
  QVERIFY(load(w, {kCorpus + "/ramp/axial-shuffled"}));
  disconnect(atLoad);
  QCOMPARE(adviceAtLoad, QString("Measuring the noise of the series..."));
  QVERIFY(!advised.isEmpty() || advised.wait(10000));  // the ramp is measured in moments
  QVERIFY2(advice->text().startsWith("No recommendation for this series") && advice->text().contains("soft tissue"),
           qPrintable(advice->text()));
}

// The AI panel never runs on a series that is still loading, and each job ends on its own:
// an import finishing does not end a load in progress.
void GuiTest::jobsAreTrackedApartAndModelsWaitForTheWholeSeries() {
  LUMEN_SKIP_WITHOUT_AI();
  LUMEN_SKIP_UNLESS_FULL_CT_RUN();
  const QString full = QStringLiteral(LUMEN_FULL_CT_DIR);
  QVERIFY2(QDir(full).exists(), qPrintable("the full CT is needed here: " + full));
  MainWindow* w = openWindow();
  QSignalSpy ready(w, &MainWindow::aiReady);
  QVERIFY(ready.wait(30000));
  QWidget* panel = w->aiPanel();
  QVERIFY(panel);
  QSignalSpy listed(panel, SIGNAL(modelsListed()));
  QVERIFY(listed.wait(30000));
  QSignalSpy first(w, &MainWindow::firstImageShown);
  QSignalSpy loaded(w, &MainWindow::seriesLoaded);
  w->openPaths({full});
  StudyBrowser* b = w->browser();
  QSignalSpy imported(b, &StudyBrowser::importFinished);
  b->importPaths({kSample}, false);
  QCOMPARE(w->runningJobs(), 2);
  // While the series is partial: no model runs on it.
  QTRY_VERIFY_WITH_TIMEOUT(w->grid()->activeSliceView()->hasSeries() || !loaded.isEmpty(), 30000);
  if (loaded.isEmpty()) {
    QVERIFY(!w->grid()->activeSliceView()->series()->complete);
    bool started = true;
    QMetaObject::invokeMethod(panel, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, "gui_segment"));
    QVERIFY(!started);
    QVERIFY(w->messages().join("\n").contains("load completely"));
  }
  QTRY_VERIFY_WITH_TIMEOUT(!imported.isEmpty(), 30000);
  if (loaded.isEmpty()) QVERIFY2(w->loading(), "the import's end ended the load too");
  QTRY_VERIFY_WITH_TIMEOUT(!loaded.isEmpty(), 60000);
  QVERIFY(!w->loading());
  QCOMPARE(w->runningJobs(), 0);
  QVERIFY(w->grid()->activeSliceView()->series()->complete);
  QSignalSpy finished(panel, SIGNAL(runFinished(bool, QString)));
  bool started = false;
  QMetaObject::invokeMethod(panel, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, "gui_segment"));
  QVERIFY(started);
  QVERIFY(finished.wait(kRunGuardMs));
  QVERIFY(finished.first().at(0).toBool());
}

// Model folders are read off the GUI thread (hashing a large model.ts takes seconds), and
// a malformed bundle is a message while the others load.
void GuiTest::modelFoldersAreReadInTheBackgroundAndBadOnesReported() {
  LUMEN_SKIP_WITHOUT_AI();
  MainWindow* w = openWindow();
  QSignalSpy ready(w, &MainWindow::aiReady);
  QVERIFY(ready.wait(30000));
  QWidget* panel = w->aiPanel();
  QVERIFY(panel);
  bool discovering = false;
  QMetaObject::invokeMethod(panel, "discovering", Q_RETURN_ARG(bool, discovering));
  QVERIFY2(discovering, "the panel read the model folders before returning to the event loop");
  QSignalSpy listed(panel, SIGNAL(modelsListed()));
  QVERIFY(listed.wait(30000));
  auto* list = panel->findChild<QListWidget*>("AiModelList");
  QVERIFY(list);
  QVERIFY2(list->count() >= 10, qPrintable(QString::number(list->count())));
  const QString messages = w->messages().join("\n");
  QVERIFY2(messages.contains("bad_label_colors") && messages.contains("label_colors#1"), qPrintable(messages));
  QVERIFY2(messages.contains("bad_pixdim_type") && messages.contains("pixdim"), qPrintable(messages));
}

// A bundle is code: one neither shipped nor trusted asks first; "Trust and run" remembers
// its SHA-256, Cancel runs nothing.
void GuiTest::untrustedModelsAskFirst() {
  LUMEN_SKIP_WITHOUT_AI();
  auto [w, panel, finished] = openAi(kCorpus + "/ramp/axial-shuffled");  // small: this test is about trust
  QVERIFY(w);
  const auto answer = [](const QString& button) {
    QTimer::singleShot(200, [button] {
      auto* box = qobject_cast<QMessageBox*>(QApplication::activeModalWidget());
      if (!box || box->objectName() != "TrustModelQuestion") return;
      for (QAbstractButton* b : box->buttons())
        if (b->text() == button) b->click();
    });
  };
  answer("Cancel");
  bool started = true;
  QMetaObject::invokeMethod(panel, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, "pointwise3d"));
  QVERIFY(!started);
  QVERIFY(w->messages().join("\n").contains("not run (not trusted)"));
  answer("Trust and run");
  QMetaObject::invokeMethod(panel, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, "pointwise3d"));
  QVERIFY(started);
  QVERIFY2(finished.wait(kRunGuardMs), qPrintable(w->messages().mid(w->messages().size() - 5).join("\n")));
  QVERIFY2(finished.first().at(0).toBool(), qPrintable(w->messages().join("\n")));
  QFile list(qEnvironmentVariable("LUMEN_CONFIG_DIR") + "/trusted-models.json");
  QVERIFY(list.open(QIODevice::ReadOnly));
  const auto sha = Sha256::hexOfFile(qEnvironmentVariable("LUMEN_MODEL_PATH").toStdString() + "/pointwise3d/models/model.ts");
  QVERIFY(list.readAll().contains(QByteArray::fromStdString(*sha)));
  // Trusted now: runs without a question (none is answered this time).
  finished.clear();
  QMetaObject::invokeMethod(panel, "runModel", Q_RETURN_ARG(bool, started), Q_ARG(QString, "pointwise3d"));
  QVERIFY(started);
  QVERIFY(finished.wait(kRunGuardMs));
  QVERIFY(finished.first().at(0).toBool());
}
