// GUI tests: Reports (PDF, SR) and de-identified export, as a reader sees them.

#include "GuiTest.h"

// Unsaved label edits are never lost silently: clearing the map keeps them in the
// autosave (and says so), a new window offers them back, saving to a file retires it.
// The report dialog: findings typed, the view as shown taken as a key image, a PDF whose
// text and pictures are what the reader chose, stored in the study as Encapsulated PDF.
void GuiTest::reportDialogMakesThePdfAReaderSees() {
  MainWindow* w = openWindow();
  QSignalSpy imported(w->browser(), &StudyBrowser::importFinished);
  w->browser()->importPaths({kCorpus + "/phantom/box"}, false);
  QVERIFY(imported.wait(30000));
  QVERIFY(load(w, {kCorpus + "/phantom/box"}));
  SliceView* v = w->grid()->activeSliceView();
  v->setSliceIndex(12);  // z = 0
  w->setMeasureTool(MeasureTool::Distance);
  dragMouse(v, v->widgetPos({-10, 0, 0}), v->widgetPos({20, 0, 0}));
  w->setMeasureTool(MeasureTool::None);
  QCOMPARE(measurementsOf(w, v).size(), std::size_t(1));
  QTest::qWait(100);
  // A classifier's answer on this series (as the AI panel hands it over) is in the report.
  w->classified(*v->series(), {"dose_grader", "2.0", std::string(64, 'e'), "cpu", "high",
                               "Research use only: trained on simulated noise.", {{"low", 0.1}, {"high", 0.9}}, "noise SD 21.5 HU"});
  ReportDialog* d = w->showReportDialog();
  QVERIFY(d);
  d->setInstitution("Lumen Test Hospital", "");
  d->setReader("Doe^Jane");
  d->setFindings("A box of uniform density.");
  d->setImpression("Phantom as expected.");
  d->addCurrentView();
  QCOMPARE(d->keyImageCount(), 1);
  QTest::qWait(500);  // the preview follows the typing
  QVERIFY(d->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-report-dialog.png"));  // for a person to look at
  auto* preview = d->findChild<QTextBrowser*>("ReportPreview");
  QVERIFY(preview->toPlainText().contains("A box of uniform density."));
  QVERIFY(preview->toPlainText().contains("30.0 mm"));

  const QString pdf = dataDir_->path() + "/report.pdf";
  QSignalSpy stored(d, &ReportDialog::stored);
  imported.clear();
  QString error;
  QVERIFY2(d->savePdf(pdf, &error), qPrintable(error));
  QCOMPARE(stored.count(), 1);
  QVERIFY(imported.wait(30000));
  QVERIFY2(imported.at(0).at(1).toStringList().isEmpty(), qPrintable(imported.at(0).at(1).toStringList().join("; ")));
  QProcess text;
  text.start("pdftotext", {"-layout", pdf, "-"});
  QVERIFY(text.waitForFinished(30000));
  const QString t = QString::fromUtf8(text.readAllStandardOutput());
  for (const char* want : {"Lumen Test Hospital", "PHANTOM, RAMP", "A box of uniform density.", "Phantom as expected.",
                           "30.0 mm", "Doe, Jane", "image 13", "dose_grader", "high (p = 0.90); noise SD 21.5 HU",
                           "Research use only: trained on simulated noise."})
    QVERIFY2(t.contains(want), want);
  // The key image is the view as shown: the yellowish measurement line is in the PDF's pixels.
  QProcess pages;
  pages.start("pdftoppm", {"-png", "-r", "100", pdf, dataDir_->path() + "/report-page"});
  QVERIFY(pages.waitForFinished(30000));
  int coloured = 0;
  for (const QString& f : QDir(dataDir_->path()).entryList({"report-page*.png"})) {
    const QImage page(dataDir_->path() + "/" + f);
    for (int y = 0; y < page.height(); ++y)
      for (int x = 0; x < page.width(); ++x) {
        const QColor c = page.pixelColor(x, y);
        coloured += std::abs(c.red() - c.green()) + std::abs(c.green() - c.blue()) > 60;
      }
  }
  QVERIFY2(coloured > 20, qPrintable(QString::number(coloured)));
  d->close();
}

// Reports are results too: a structured report and an Encapsulated PDF open again in
// the workstation (as a browser double-click opens them), the SR as text with its
// measurement, the PDF page by page, and Save PDF... gives the same bytes back.
void GuiTest::reportsOpenAgainInTheWorkstation() {
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kCorpus + "/phantom/box"}));
  const auto series = w->grid()->activeSliceView()->series();
  QVERIFY(series->segReference);
  dicom::SrInput in;
  in.images = *series->segReference;
  in.units = "HU";
  Measurement m;
  m.kind = MeasurementKind::Distance;
  m.points = {{-10, 0, 0}, {20, 0, 0}};
  m.text = "box width";
  in.measurements.push_back({m, std::nullopt});
  const QString sr = dataDir_->path() + "/sr.dcm";
  auto written = dicom::writeMeasurementReport(in, sr.toStdString());
  QVERIFY2(written, written ? "" : written.error().toString().c_str());

  QByteArray pdfBytes;
  {
    QBuffer buffer(&pdfBytes);
    buffer.open(QIODevice::WriteOnly);
    QPdfWriter writer(&buffer);
    QPainter p(&writer);
    p.drawText(QPointF(200, 200), "First page");
    writer.newPage();
    p.drawText(QPointF(200, 200), "Second page");
  }
  const QString doc = dataDir_->path() + "/report-pdf.dcm";
  dicom::EncapsulatedPdfOptions po;
  auto stored = dicom::writeEncapsulatedPdf(pdfBytes.toStdString(), series->info.files.front(), po, doc.toStdString());
  QVERIFY2(stored, stored ? "" : stored.error().toString().c_str());

  QVERIFY(ResultViewer::handles(sr));
  QVERIFY(ResultViewer::handles(doc));
  QVERIFY(!ResultViewer::handles(QString::fromStdString(series->info.files.front())));
  w->openPaths({sr});
  w->openPaths({doc});
  const auto viewers = w->findChildren<ResultViewer*>();
  QCOMPARE(viewers.size(), 2);
  ResultViewer* text = viewers[0]->pageCount() == 0 ? viewers[0] : viewers[1];
  ResultViewer* pages = text == viewers[0] ? viewers[1] : viewers[0];
  QVERIFY2(text->text().contains("box width"), qPrintable(text->text().left(2000)));
  QVERIFY(text->text().contains("30 mm") || text->text().contains("30 [mm]") || text->text().contains("30 millimeter"));
  QCOMPARE(pages->pageCount(), 2);
  const QString out = dataDir_->path() + "/back.pdf";
  QString error;
  QVERIFY2(pages->savePdf(out, &error), qPrintable(error));
  QFile back(out);
  QVERIFY(back.open(QIODevice::ReadOnly));
  QCOMPARE(back.readAll(), pdfBytes);
  QVERIFY(QTest::qWaitForWindowExposed(pages));
  QTest::qWait(300);
  const QString work = QStringLiteral(LUMEN_TEST_WORK_DIR);
  QVERIFY(text->grab().save(work + "/gui-sr-viewer.png"));  // for a person to look at
  const QImage shown = pages->grab().toImage();
  QVERIFY(shown.save(work + "/gui-pdf-viewer.png"));
  int white = 0, ink = 0;  // a white page with black text on it: the PDF was drawn
  for (int y = 0; y < shown.height(); ++y)
    for (int x = 0; x < shown.width(); ++x) {
      const int g = qGray(shown.pixel(x, y));
      white += g > 250;
      ink += g < 60 && shown.pixelColor(x, y).saturation() < 30 && x > 20 && x < shown.width() - 40 && y < 200;
    }
  QVERIFY2(white > shown.width() * shown.height() / 3, qPrintable(QString::number(white)));
  QVERIFY2(ink > 10, qPrintable(QString::number(ink)));
  // Not a report: said so, nothing opened.
  const QString bogus = dataDir_->path() + "/bogus.dcm";
  QFile f(bogus);
  QVERIFY(f.open(QIODevice::WriteOnly));
  f.write(QByteArray(300, 'x'));
  f.close();
  QVERIFY(!ResultViewer::handles(bogus));
  QVERIFY(!ResultViewer::open(bogus, w, &error));
  QVERIFY(error.contains("bogus.dcm"));
}

// Export de-identified from the workstation: the whole study in the database, off the
// GUI thread, into a folder with the log; no original name or UID in what was written.
void GuiTest::deidentifiedExportOfTheStudyOnScreen() {
  MainWindow* w = openWindow();
  QSignalSpy imported(w->browser(), &StudyBrowser::importFinished);
  w->browser()->importPaths({kCorpus + "/phantom/box"}, false);
  QVERIFY(imported.wait(30000));
  QVERIFY(load(w, {kCorpus + "/phantom/box"}));
  DeidDialog* d = w->showDeidDialog();
  QVERIFY(d);
  QVERIFY(!d->start());  // no key, no folder: said so, nothing started
  QVERIFY(d->resultText().contains("project key"));
  const QString key = dataDir_->path() + "/project.key";
  QVERIFY(deid::Key::create(key.toStdString()));
  const QString out = dataDir_->path() + "/export";
  d->setKeyFile(key);
  d->setOutputFolder(out);
  QVERIFY(d->setOption("retain-patient-characteristics", true));
  QVERIFY(!d->setOption("no-such-option", true));
  QSignalSpy done(d, &DeidDialog::exportFinished);
  QVERIFY(d->start());
  QVERIFY(d->running());
  QVERIFY(done.wait(60000));
  QCOMPARE(done.at(0).at(0).toInt(), 24);  // every slice of the study
  QCOMPARE(done.at(0).at(2).toInt(), 0);
  QVERIFY(QFile::exists(out + "/deidentification-log.tsv"));
  QVERIFY(d->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-deid-dialog.png"));  // for a person to look at
  const auto series = w->grid()->activeSliceView()->series();
  int files = 0;
  for (QDirIterator it(out, {"*.dcm"}, QDir::Files, QDirIterator::Subdirectories); it.hasNext();) {
    QFile f(it.next());
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QByteArray bytes = f.readAll();
    for (const std::string& secret : {series->info.patient.name, series->info.patient.patientId,
                                      series->info.study.studyInstanceUid, series->info.series.seriesInstanceUid})
      QVERIFY2(!bytes.contains(QByteArray::fromStdString(secret)), secret.c_str());
    ++files;
  }
  QCOMPARE(files, 24);
  d->close();
}
