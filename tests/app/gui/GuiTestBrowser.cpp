// GUI tests: The study browser, loading in the background, bad input and settings.

#include "GuiTest.h"

void GuiTest::badInputGivesAReadableMessage() {
  QVERIFY2(QDir(kCorpus + "/bad").exists(), "test corpus missing: ctest builds it first (corpus_setup)");
  MainWindow* w = openWindow();
  QSignalSpy failed(w, &MainWindow::loadFailed);
  w->openPaths({kCorpus + "/bad/truncated-pixels.dcm"});
  QVERIFY(failed.wait(20000));
  const QString msg = failed.first().first().toString();
  QVERIFY2(msg.contains("truncated-pixels.dcm") && msg.contains("truncated"), qPrintable(msg));
  QVERIFY(!msg.contains('\n'));
  QVERIFY(w->messages().join("\n").contains("truncated-pixels.dcm"));
}

void GuiTest::loadingRunsInTheBackgroundAndCanBeCancelled() {
  MainWindow* w = openWindow();
  QSignalSpy failed(w, &MainWindow::loadFailed);
  QSignalSpy loaded(w, &MainWindow::seriesLoaded);
  w->openPaths({kSample});
  QVERIFY(w->loading());
  QCOMPARE(w->runningJobs(), 1);
  // Cancel in the same turn of the event loop: the worker cannot have read 32 files yet.
  auto* cancel = w->findChild<QToolButton*>();
  QVERIFY(cancel);
  QVERIFY(cancel->isVisible());
  cancel->click();
  QTRY_VERIFY_WITH_TIMEOUT(!failed.isEmpty() || !loaded.isEmpty(), 20000);
  QVERIFY2(loaded.isEmpty(), "the load finished although it was cancelled");
  QVERIFY2(failed.first().first().toString().contains("cancelled"), qPrintable(failed.first().first().toString()));
  QVERIFY(!w->loading());
  QCOMPARE(w->runningJobs(), 0);
  // The event loop kept running while the loader worked: a load of the same series now
  // completes with a timer firing meanwhile.
  bool ticked = false;
  QTimer::singleShot(1, [&] { ticked = true; });
  QVERIFY(load(w, {kSample}));
  QVERIFY(ticked);
}

void GuiTest::studyBrowserImportsAndSearches() {
  MainWindow* w = openWindow();
  StudyBrowser* b = w->browser();
  QSignalSpy done(b, &StudyBrowser::importFinished);
  b->importPaths({kSample}, false);
  QVERIFY(done.wait(30000));
  QVERIFY2(done.first().first().toString().contains("32 new"), qPrintable(done.first().first().toString()));
  QCOMPARE(b->studyCount(), 1);
  b->selectStudy(0);
  QCOMPARE(b->seriesCount(), 1);
  QCOMPARE(b->seriesFiles(0).size(), 32);
  b->setSearchText("nothing like this");
  QCOMPARE(b->studyCount(), 0);
  b->setSearchText("camitk");
  QCOMPARE(b->studyCount(), 1);
  // Opening a series from the browser loads it into the viewer.
  QSignalSpy loaded(w, &MainWindow::seriesLoaded);
  emit b->openSeries(b->seriesFiles(0));
  QVERIFY(loaded.wait(30000));
  QCOMPARE(w->grid()->activeSliceView()->sliceCount(), 32);
}

void GuiTest::droppingASeriesOnAViewportLoadsItThere() {
  MainWindow* w = openWindow();
  w->setLayoutMode(Layout::TwoByTwo);
  QTest::qWait(50);
  SliceView* target = w->grid()->sliceView(2);
  QWidget* frame = target->parentWidget();
  QStringList files;
  for (const auto& f : QDir(kSample).entryList(QDir::Files)) files << kSample + "/" + f;
  auto* mime = new QMimeData;
  mime->setData(kSeriesMimeType, files.join('\n').toUtf8());
  QSignalSpy loaded(w, &MainWindow::seriesLoaded);
  QSignalSpy failed(w, &MainWindow::loadFailed);
  // As a drag would: enter, then drop (Qt delivers a drop only to the drag's target).
  QDragEnterEvent enter(QPoint(20, 20), Qt::CopyAction, mime, Qt::LeftButton, Qt::NoModifier);
  QApplication::sendEvent(frame, &enter);
  QVERIFY(enter.isAccepted());
  QDropEvent drop(QPointF(20, 20), Qt::CopyAction, mime, Qt::LeftButton, Qt::NoModifier);
  QApplication::sendEvent(frame, &drop);
  QVERIFY(drop.isAccepted());
  for (int i = 0; i < 600 && loaded.isEmpty() && failed.isEmpty(); ++i) QTest::qWait(50);
  QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().first().toString()));
  QVERIFY(!loaded.isEmpty());
  QVERIFY(target->hasSeries());
  QVERIFY(!w->grid()->sliceView(0)->hasSeries());
  QCOMPARE(target->sliceCount(), 32);
  delete mime;
}

// Deleting asks first; an import that finishes while the question is open refreshes the
// list under it. The study asked about is the one removed, not the row's new occupant.
void GuiTest::deleteRemovesTheStudyAskedAboutEvenIfTheListChanged() {
  MainWindow* w = openWindow();
  StudyBrowser* b = w->browser();
  QSignalSpy done(b, &StudyBrowser::importFinished);
  b->importPaths({kSample}, false);
  QVERIFY(done.wait(30000));
  QCOMPARE(b->studyCount(), 1);
  b->selectStudy(0);
  done.clear();
  // The ramp phantom (a 2024 study, listed before the sample's) arrives meanwhile.
  b->importPaths({kCorpus + "/ramp/axial-shuffled"}, false);
  QTimer::singleShot(50, [&] {
    QTRY_VERIFY_WITH_TIMEOUT(!done.isEmpty(), 30000);
    for (int i = 0; i < 5; ++i) {  // churn the list so a stale row would point elsewhere
      b->setSearchText(i % 2 ? "" : "a");
      QTest::qWait(10);
    }
    b->setSearchText("");
    auto* box = qobject_cast<QMessageBox*>(QApplication::activeModalWidget());
    if (box && box->objectName() == "DeleteStudyQuestion") box->button(QMessageBox::Yes)->click();
  });
  b->deleteSelectedStudy();
  QCOMPARE(b->studyCount(), 1);
  auto db = db::StudyDatabase::open(dataDir_->path().toStdString());
  QVERIFY(db);
  auto studies = (*db)->studies();
  QVERIFY(studies && studies->size() == 1u);
  QCOMPARE(QString::fromStdString((*studies)[0].info.description), QString("Ramp phantom"));
}

// Closing the window while an import runs cancels it: the window does not wait for the
// import to finish (it used to, however long it took), and the cancelled batch is not
// half-written.
void GuiTest::closingDuringAnImportCancelsIt() {
  LUMEN_SKIP_UNLESS_FULL_CT_RUN();
  const QString full = QStringLiteral(LUMEN_FULL_CT_DIR);
  QVERIFY2(QDir(full).exists(), qPrintable("the full CT is needed here: " + full));
  MainWindow* w = openWindow();
  w->browser()->importPaths({full, kCorpus}, false);
  QCOMPARE(w->runningJobs(), 1);
  window_.reset();  // in the same turn of the event loop: the import has barely started
  auto db = db::StudyDatabase::open(dataDir_->path().toStdString());
  QVERIFY(db);
  auto studies = (*db)->studies();
  QVERIFY(studies);
  int instances = 0;
  for (const auto& st : *studies) instances += st.instanceCount;
  QVERIFY2(instances == 0, qPrintable(QString("%1 instances imported after the window closed").arg(instances)));
}

void GuiTest::settingsAreRemembered() {
  QStandardPaths::setTestModeEnabled(true);
  MainWindow::Options o;
  o.dataDir = dataDir_->path();
  o.rememberSettings = true;
  {
    MainWindow w(o);
    w.show();
    w.setLayoutMode(Layout::TwoByTwo);
    w.setHidePatient(true);
    w.close();
  }
  MainWindow w2(o);
  QCOMPARE(w2.grid()->layoutMode(), Layout::TwoByTwo);
  w2.setLayoutMode(Layout::One);
  w2.setHidePatient(false);
  w2.close();
}
