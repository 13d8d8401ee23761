// GUI tests: Measurements and the segment editor: drawn, edited, undone, saved.

#include "GuiTest.h"

// A distance drawn with the mouse between two voxel centres measures their physical
// distance within half a voxel: on the real CT and on an oblique, anisotropic series.
void GuiTest::aDrawnDistanceIsThePhysicalDistance() {
  for (const QString& path : {kSample, kCorpus + "/ramp/oblique"}) {
    MainWindow* w = openWindow();
    QVERIFY(load(w, {path}));
    w->setMeasureTool(MeasureTool::Distance);
    SliceView* v = w->grid()->activeSliceView();
    while (mmPerPixelOf(v) > 0.1) v->zoomBy(1.25);  // whole pixels then err by < 0.08 mm
    QTest::qWait(50);
    const ImageGeometry& g = v->series()->volume->geometry();
    auto voxelNear = [&](double fx, double fy) {
      Vec3 ijk = g.lpsToIjk(v->worldAt({v->width() * fx, v->height() * fy}));
      for (std::size_t a = 0; a < 3; ++a) ijk[a] = std::round(ijk[a]);
      return g.ijkToLps(ijk);
    };
    const Vec3 a = voxelNear(0.3, 0.35), b = voxelNear(0.7, 0.6);
    dragMouse(v, v->widgetPos(a), v->widgetPos(b));
    const auto items = measurementsOf(w, v);
    QCOMPARE(items.size(), std::size_t(1));
    QCOMPARE(items[0].kind, MeasurementKind::Distance);
    const double halfVoxel = 0.5 * std::min(g.spacingMm.x, g.spacingMm.y);
    const double expected = (b - a).norm();
    QVERIFY2(expected > 5.0, qPrintable(QString::number(expected)));
    QVERIFY2(std::fabs(lengthMm(items[0]) - expected) < halfVoxel,
             qPrintable(QString("%1: drawn %2 mm, true %3 mm").arg(path).arg(lengthMm(items[0])).arg(expected)));
    // The view labels it with that length.
    const auto shown = v->shownMeasurements();
    QCOMPARE(shown.size(), std::size_t(1));
    QCOMPARE(QString::fromStdString(shown[0].text), QString::fromStdString(describe(items[0], nullptr, {})));
    window_.reset();
  }
}

// Each tool driven with the mouse on an anisotropic phantom (a 50 HU box in air, voxels
// 0.6 x 0.8 x 2.5 mm): ROI statistics are the phantom's values, areas and the angle are
// what was drawn; a distance along x shows in the axial and coronal MPR planes that
// contain it and not in the sagittal one.
void GuiTest::measurementToolsOnAPhantom() {
  QVERIFY2(QDir(kCorpus + "/phantom/box").exists(), "test corpus missing: ctest builds it first (corpus_setup)");
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kCorpus + "/phantom/box"}));
  SliceView* v = w->grid()->activeSliceView();
  const ImageGeometry& g = v->series()->volume->geometry();
  v->setSliceIndex(12);  // z = 0, through the box
  QTest::qWait(50);
  const double z = v->navigator().focal().z;
  QVERIFY2(std::fabs(z) < 1e-6, qPrintable(QString::number(z)));
  auto at = [&](double x, double y) { return v->widgetPos({x, y, z}); };
  const double px = mmPerPixelOf(v);
  QVERIFY2(px < 0.2, qPrintable(QString::number(px)));

  w->setMeasureTool(MeasureTool::Ellipse);
  dragMouse(v, at(-10, -8), at(10, 8));
  w->setMeasureTool(MeasureTool::Rectangle);
  dragMouse(v, at(-25, -5), at(-15, 5));
  w->setMeasureTool(MeasureTool::Polygon);
  clickMouse(v, at(0, 0));
  clickMouse(v, at(10, 0));
  clickMouse(v, at(0, 10), true);
  {  // a freehand circle, drawn in one stroke
    const QPointF c = pixel(at(6, -6));
    const double r = 6.0 / px;
    mouse(v, QEvent::MouseButtonPress, pixel(c + QPointF(r, 0)), Qt::LeftButton, Qt::LeftButton);
    for (int i = 1; i <= 72; ++i) {
      const double t = 2 * M_PI * i / 72;
      mouse(v, QEvent::MouseMove, pixel(c + QPointF(r * std::cos(t), r * std::sin(t))), Qt::NoButton, Qt::LeftButton);
    }
    mouse(v, QEvent::MouseButtonRelease, pixel(c + QPointF(r, 0)), Qt::LeftButton, Qt::NoButton);
  }
  w->setMeasureTool(MeasureTool::Angle);
  clickMouse(v, at(-10, 12));
  clickMouse(v, at(-18, 12));
  clickMouse(v, at(-18, 4));
  w->setMeasureTool(MeasureTool::Point);
  clickMouse(v, at(15, 10));
  w->setMeasureTool(MeasureTool::Distance);
  const double yRow = g.ijkToLps({0, 49, 0}).y;  // a voxel row: the coronal planes hold it exactly
  dragMouse(v, at(-12, yRow), at(12, yRow));

  const auto items = measurementsOf(w, v);
  QCOMPARE(items.size(), std::size_t(7));
  MeasurementStore* store = w->measurements();
  const LoadedSeries& s = *v->series();
  const double tol = 2 * px;  // whole-pixel input
  // Ellipse inside the box: 50 HU exactly, no spread; area pi*10*8.
  QCOMPARE(items[0].kind, MeasurementKind::Ellipse);
  const RoiStatistics* e = store->statistics(s, items[0]);
  QVERIFY(e);
  QVERIFY(e->onVoxels);
  QCOMPARE(e->mean, 50.0);
  QCOMPARE(e->sd, 0.0);
  QCOMPARE(e->min, 50.0);
  QCOMPARE(e->max, 50.0);
  QVERIFY2(std::fabs(e->areaMm2 - M_PI * 80) < M_PI * (10 + 8) * tol, qPrintable(QString::number(e->areaMm2)));
  QVERIFY2(std::fabs(static_cast<double>(e->samples) - M_PI * 80 / (0.6 * 0.8)) < 20, qPrintable(QString::number(e->samples)));
  // Rectangle across the box's edge at x = -20: air and box, half each.
  const RoiStatistics* r = store->statistics(s, items[1]);
  QVERIFY(r);
  QCOMPARE(r->min, -1000.0);
  QCOMPARE(r->max, 50.0);
  QVERIFY2(std::fabs(r->mean - (-475.0)) < 60, qPrintable(QString::number(r->mean)));
  QVERIFY2(std::fabs(r->areaMm2 - 100) < 20 * tol, qPrintable(QString::number(r->areaMm2)));
  // Polygon (clicked triangle) and freehand circle.
  QCOMPARE(items[2].kind, MeasurementKind::Polygon);
  QCOMPARE(items[2].points.size(), std::size_t(3));
  QVERIFY2(std::fabs(areaMm2(items[2]) - 50) < 30 * tol, qPrintable(QString::number(areaMm2(items[2]))));
  QCOMPARE(items[3].kind, MeasurementKind::Polygon);
  QVERIFY(items[3].points.size() > 30);
  QVERIFY2(std::fabs(areaMm2(items[3]) - M_PI * 36) < 0.03 * M_PI * 36, qPrintable(QString::number(areaMm2(items[3]))));
  QCOMPARE(store->statistics(s, items[3])->mean, 50.0);
  // A right angle, the point, and the distance.
  QCOMPARE(items[4].kind, MeasurementKind::Angle);
  QVERIFY2(std::fabs(angleDeg(items[4]) - 90) < 1, qPrintable(QString::number(angleDeg(items[4]))));
  QCOMPARE(items[5].kind, MeasurementKind::Point);
  QCOMPARE(items[6].kind, MeasurementKind::Distance);
  QVERIFY(std::fabs(lengthMm(items[6]) - 24) < 2 * tol);
  QCOMPARE(v->shownMeasurements().size(), std::size_t(7));
  QCOMPARE(w->findingsPanel()->findChild<QTableWidget*>("FindingsTable")->rowCount(), 7);
  // The phantom has a series UID: saved with it.
  QVERIFY(w->findingsPanel()->findChild<QLabel*>("FindingsNote")->text().startsWith("Saved"));
  w->setMeasureTool(MeasureTool::None);
  QTest::qWait(100);
  QVERIFY(w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-measurements.png"));  // for a person to look at

  // Another slice does not show them.
  v->scrollBy(2);
  QCOMPARE(v->shownMeasurements().size(), std::size_t(0));

  // MPR: clicking the distance in the Findings list puts the crosshair on it; the axial
  // and coronal planes contain it, the sagittal one does not.
  w->setLayoutMode(Layout::Mpr);
  QTest::qWait(100);
  auto* table = w->findingsPanel()->findChild<QTableWidget*>("FindingsTable");
  QCOMPARE(table->rowCount(), 7);
  QTest::mouseClick(table->viewport(), Qt::LeftButton, {}, table->visualItemRect(table->item(6, 2)).center());
  QTest::qWait(100);
  auto shows = [&](int view, int id) {
    for (const auto& m : w->grid()->sliceView(view)->shownMeasurements())
      if (m.id == id) return true;
    return false;
  };
  const int distanceId = items[6].id, ellipseId = items[0].id;
  QVERIFY(shows(0, distanceId));   // axial
  QVERIFY(shows(0, ellipseId));
  QVERIFY(shows(1, distanceId));   // coronal
  QVERIFY(!shows(1, ellipseId));
  QVERIFY(!shows(2, distanceId));  // sagittal
  QVERIFY(w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-measurements-mpr.png"));
}

// Edit a measurement by its handle, undo and redo, delete and undo, label it, jump back
// to it from the Findings list, export it, and find it again after a restart.
void GuiTest::measurementsAreEditedUndoneAndKept() {
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kSample}));
  SliceView* v = w->grid()->activeSliceView();
  const int slice = v->sliceIndex();
  const Vec3 f = v->navigator().focal();
  const Vec3 right = v->navigator().axes().right, up = v->navigator().axes().up;
  const Vec3 p = f - right * 20.0, q = f + right * 20.0, r = f + right * 20.0 + up * 30.0;
  w->setMeasureTool(MeasureTool::Distance);
  dragMouse(v, v->widgetPos(p), v->widgetPos(q));
  w->setMeasureTool(MeasureTool::None);
  QCOMPARE(measurementsOf(w, v).size(), std::size_t(1));
  const double first = lengthMm(measurementsOf(w, v)[0]);
  QVERIFY(std::fabs(first - 40) < 1);
  // The end at q dragged to r (the tool is off: handles still edit).
  dragMouse(v, v->widgetPos(q), v->widgetPos(r));
  const double edited = lengthMm(measurementsOf(w, v)[0]);
  QVERIFY2(std::fabs(edited - 50) < 1, qPrintable(QString::number(edited)));
  QVERIFY(w->undoMeasurement());
  QCOMPARE(lengthMm(measurementsOf(w, v)[0]), first);
  QVERIFY(w->redoMeasurement());
  QCOMPARE(lengthMm(measurementsOf(w, v)[0]), edited);
  // Selected by the edit: Delete removes it, undo brings it back.
  QCOMPARE(v->selectedMeasurement(), measurementsOf(w, v)[0].id);
  v->setFocus();
  QTest::keyClick(v, Qt::Key_Delete);
  QCOMPARE(measurementsOf(w, v).size(), std::size_t(0));
  QVERIFY(w->undoMeasurement());
  QCOMPARE(measurementsOf(w, v).size(), std::size_t(1));
  // A label typed in the Findings list.
  auto* table = w->findingsPanel()->findChild<QTableWidget*>("FindingsTable");
  QCOMPARE(table->rowCount(), 1);
  table->item(0, 3)->setText("lesion A");
  QTRY_COMPARE(QString::fromStdString(measurementsOf(w, v)[0].text), QString("lesion A"));
  QVERIFY(QString::fromStdString(v->shownMeasurements()[0].text).startsWith("lesion A: "));
  // Away and back through the list.
  v->scrollBy(5);
  QCOMPARE(v->shownMeasurements().size(), std::size_t(0));
  QTest::mouseClick(table->viewport(), Qt::LeftButton, {}, table->visualItemRect(table->item(0, 1)).center());
  QCOMPARE(v->sliceIndex(), slice);
  QCOMPARE(v->shownMeasurements().size(), std::size_t(1));
  // Export.
  const QString csv = dataDir_->path() + "/m.csv";
  QString error;
  QVERIFY2(w->findingsPanel()->exportTo(csv, true, &error), qPrintable(error));
  QFile fc(csv);
  QVERIFY(fc.open(QIODevice::ReadOnly));
  const QStringList lines = QString::fromUtf8(fc.readAll()).split("\r\n", Qt::SkipEmptyParts);
  QCOMPARE(lines.size(), 2);
  QVERIFY2(lines[1].startsWith(QString("%1,distance,lesion A,%2").arg(measurementsOf(w, v)[0].id).arg(edited, 0, 'g', 6)),
           qPrintable(lines[1]));
  const Measurement saved = measurementsOf(w, v)[0];

  // Restart: the measurement comes back from the study database, exactly.
  window_->close();
  window_.reset();
  w = openWindow();
  QVERIFY(load(w, {kSample}));
  v = w->grid()->activeSliceView();
  const auto back = measurementsOf(w, v);
  QCOMPARE(back.size(), std::size_t(1));
  QCOMPARE(QString::fromStdString(back[0].text), QString("lesion A"));
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t c = 0; c < 3; ++c) QCOMPARE(back[0].points[i][c], saved.points[i][c]);
  QCOMPARE(v->sliceIndex(), slice);
  QCOMPARE(v->shownMeasurements().size(), std::size_t(1));
  QCOMPARE(w->findingsPanel()->findChild<QTableWidget*>("FindingsTable")->rowCount(), 1);
}

// The segment editor driven with the mouse on the box phantom: a brushed sphere has the
// voxels of a sphere, a stroke is one undo step and undo is voxel-exact, the eraser
// erases, region growing fills the box, interpolation fills the slices between two discs,
// statistics are the phantom's, the map saves and loads with its names, and an AI-like
// result on the grid opens editable.
// Save... writes the label map as a job of its own, from a copy of the voxels: the reader
// paints on meanwhile, and what is painted after the save began stays unsaved, not lost.
void GuiTest::labelMapIsSavedInTheBackground() {
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kCorpus + "/phantom/box"}));
  SliceView* v = w->grid()->activeSliceView();
  v->setSliceIndex(12);  // z = 0
  QTest::qWait(50);
  LabelPanel* lp = w->labelPanel();
  QVERIFY(lp->newLabelMap());
  lp->setBrushDiameterMm(10);
  lp->setBrushSphere(true);
  lp->setTool(PaintTool::Brush);
  clickMouse(v, pixel(v->widgetPos({-25, 20, 0})));
  const auto labels = lp->overlay()->labels;
  const std::vector<std::uint8_t> atSave(labels->data<std::uint8_t>(), labels->data<std::uint8_t>() + labels->voxelCount());
  QVERIFY(std::count(atSave.begin(), atSave.end(), 1) > 0);
  const QString file = dataDir_->path() + "/background.nii.gz";
  QSignalSpy saved(w, &MainWindow::labelMapSaved);
  emit lp->saveRequested(file);  // what Save... does once the reader chose a file
  QCOMPARE(w->runningJobs(), 1);
  clickMouse(v, pixel(v->widgetPos({25, 20, 0})));  // painting goes on
  QVERIFY(saved.wait(30000));
  QVERIFY(saved.first().at(0).toBool());
  QVERIFY(lp->hasUnsavedChanges());  // the second dab is not in the file
  auto back = io::readLabelMap(file.toStdString());
  QVERIFY(back.ok());
  QCOMPARE(back->labels->voxelCount(), atSave.size());
  QVERIFY(std::memcmp(back->labels->bytes(), atSave.data(), atSave.size()) == 0);  // as it was when the save began
  // A DICOM SEG the same way: then nothing is left unsaved, and the study database has it.
  QSignalSpy imported(w->browser(), &StudyBrowser::importFinished);
  emit lp->saveRequested(dataDir_->path() + "/background-seg.dcm");
  QVERIFY(saved.wait(30000));
  QVERIFY(saved.at(1).at(0).toBool());
  QVERIFY(!lp->hasUnsavedChanges());
  QVERIFY(imported.wait(30000));
  // A file that cannot be written: said so, and the edits stay unsaved.
  clickMouse(v, pixel(v->widgetPos({0, 20, 0})));
  emit lp->saveRequested("/proc/no-such-folder/labels.nii.gz");
  QVERIFY(saved.wait(30000));
  QVERIFY(!saved.at(2).at(0).toBool());
  QVERIFY(lp->hasUnsavedChanges());
  QVERIFY(w->messages().join('\n').contains("error: "));
}

void GuiTest::segmentEditorPaintsGrowsInterpolatesAndSaves() {
  MainWindow::Options o;
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kCorpus + "/phantom/box"}));
  SliceView* v = w->grid()->activeSliceView();
  v->setSliceIndex(12);  // z = 0
  QTest::qWait(50);
  const ImageGeometry g = v->series()->volume->geometry();  // a copy: the series is reloaded below
  LabelPanel* lp = w->labelPanel();
  QVERIFY(lp->newLabelMap());
  QVERIFY(lp->editing());
  const auto labels = lp->overlay()->labels;
  auto count = [&](int value) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < labels->voxelCount(); ++i) n += labels->data<std::uint8_t>()[i] == value;
    return n;
  };
  auto snapshot = [&] { return std::vector<std::uint8_t>(labels->data<std::uint8_t>(), labels->data<std::uint8_t>() + labels->voxelCount()); };
  auto same = [&](const std::vector<std::uint8_t>& c) { return std::memcmp(labels->data<std::uint8_t>(), c.data(), c.size()) == 0; };

  // A 10 mm sphere dab where the reader clicks, in air (x = -25 mm).
  lp->setBrushDiameterMm(10);
  lp->setBrushSphere(true);
  lp->setTool(PaintTool::Brush);
  QCOMPARE(v->paintTool(), PaintTool::Brush);
  const QPointF at = pixel(v->widgetPos({-25, 20, 0}));
  const QImage before = v->grabFramebuffer();
  clickMouse(v, at);
  const Vec3 c = v->worldAt(at);
  std::size_t sphere = 0;
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i) sphere += (g.ijkToLps({double(i), double(j), double(k)}) - c).norm() <= 5.0;
  QCOMPARE(count(1), sphere);
  QTest::qWait(50);
  const QImage after = v->grabFramebuffer();
  QVERIFY2(after.pixel(at.toPoint()) != before.pixel(at.toPoint()), "the painted label is not drawn");
  const auto afterDab = snapshot();

  // A 2D stroke: one undo step; undo and redo are voxel-exact.
  lp->setBrushSphere(false);
  lp->setBrushDiameterMm(4);
  dragMouse(v, v->widgetPos({-26, -30, 0}), v->widgetPos({-26, 30, 0}), 20);
  const auto afterStroke = snapshot();
  QVERIFY(count(1) > sphere + 100);
  QVERIFY(w->undoLast());
  QVERIFY(same(afterDab));
  QVERIFY(w->redoLast());
  QVERIFY(same(afterStroke));
  // The eraser takes the label away under it.
  lp->setTool(PaintTool::Eraser);
  clickMouse(v, at);
  const auto centre = g.lpsToIjk(c);
  QCOMPARE(int(labels->data<std::uint8_t>()[labels->linearIndex(std::size_t(std::lround(centre.x)), std::size_t(std::lround(centre.y)), 12)]), 0);

  // Region growing in the box: every 50 HU voxel joins label 2 (none was labelled).
  QCOMPARE(lp->addLabel(), 2);
  lp->setIntensityLimit(true, 0, 100);
  lp->setTool(PaintTool::Grow);
  clickMouse(v, v->widgetPos({5, 5, 0}));
  std::size_t box = 0;
  for (std::size_t i = 0; i < v->series()->volume->voxelCount(); ++i) box += v->series()->volume->data<std::int16_t>()[i] == 50;
  QCOMPARE(count(2), box);
  QVERIFY(lp->waitForMeasures(20000));
  const LabelMeasures* m2 = nullptr;
  for (const auto& m : lp->measures())
    if (m.label == 2) m2 = &m;
  QVERIFY(m2);
  QCOMPARE(m2->mean, 50.0);
  QCOMPARE(m2->sd, 0.0);
  QVERIFY(std::fabs(m2->volumeMl - double(box) * 0.6 * 0.8 * 2.5 / 1000) < 1e-9);
  auto* table = lp->findChild<QTableWidget*>("LabelTable");
  QCOMPARE(table->rowCount(), 2);
  QCOMPARE(table->item(1, 3)->text(), QString("50.0 \u00b1 0.0"));

  // Two discs in air, 8 slices apart, and interpolation between them.
  QCOMPARE(lp->addLabel(), 3);
  lp->setIntensityLimit(false, 0, 0);
  lp->setTool(PaintTool::Brush);
  lp->setBrushDiameterMm(12);
  v->setSliceIndex(4);  // z = -20
  clickMouse(v, v->widgetPos({0, -28, -20}));
  v->setSliceIndex(12);
  lp->setBrushDiameterMm(6);
  clickMouse(v, v->widgetPos({0, -28, 0}));
  const std::size_t discs = count(3);
  lp->setWorkingNormal(v->navigator().axes().normal);
  QVERIFY(lp->interpolate());
  const double voxel = 0.6 * 0.8 * 2.5;
  const double frustum = M_PI * 20.0 / 3 * (36 + 18 + 9) + (M_PI * 36 + M_PI * 9) * 1.25;
  const double got = double(count(3)) * voxel;
  QVERIFY2(std::fabs(got - frustum) < 0.1 * frustum, qPrintable(QString("%1 mm3 vs %2 (discs %3 voxels)").arg(got).arg(frustum).arg(discs)));
  // Edit > Undo takes the latest change first, whether a measurement or a label edit.
  const auto interpolated = snapshot();
  w->setMeasureTool(MeasureTool::Distance);
  QCOMPARE(v->paintTool(), PaintTool::None);  // one tool owns the left button
  dragMouse(v, v->widgetPos({-10, 25, 0}), v->widgetPos({10, 25, 0}));
  QCOMPARE(measurementsOf(w, v).size(), std::size_t(1));
  QVERIFY(w->undoLast());
  QCOMPARE(measurementsOf(w, v).size(), std::size_t(0));
  QVERIFY(same(interpolated));
  QVERIFY(w->undoLast());
  QCOMPARE(count(3), discs);
  QVERIFY(w->redoLast());
  QVERIFY(same(interpolated));
  QVERIFY(w->redoLast());
  QCOMPARE(measurementsOf(w, v).size(), std::size_t(1));
  w->setMeasureTool(MeasureTool::None);
  lp->setTool(PaintTool::None);
  QTest::qWait(100);
  QVERIFY(w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-segment-editor.png"));  // for a person to look at

  // Saved with names and codes, read back identical; no unsaved edits left.
  lp->overlay()->entries[1].name = "Box";
  lp->setActiveLabel(2);
  QVERIFY(!lp->setLabelCode({"91723000", "SCT", "Anatomical Structure"}, {"123", "", "Phantom box"}));  // no scheme
  QVERIFY(lp->setLabelCode({"91723000", "SCT", "Anatomical Structure"}, {"L-0001", "99LUMEN", "Phantom box"}));
  lp->findChild<QSlider*>("LabelOpacity")->setValue(40);  // the selected label's own slider
  QVERIFY(lp->findChild<QComboBox*>("LabelCode")->currentText().contains("Phantom box"));
  QVERIFY(lp->hasUnsavedChanges());
  const QString file = dataDir_->path() + "/labels.nii.gz";
  QString error;
  QVERIFY2(lp->saveTo(file, &error), qPrintable(error));
  QVERIFY(!lp->hasUnsavedChanges());
  auto back = io::readLabelMap(file.toStdString());
  QVERIFY(back.ok());
  QVERIFY(std::memcmp(back->labels->bytes(), labels->bytes(), labels->byteSize()) == 0);
  QCOMPARE(QString::fromStdString(back->infos[1].name), QString("Box"));
  QCOMPARE(QString::fromStdString(back->infos[1].type.scheme), QString("99LUMEN"));
  QCOMPARE(back->infos[1].opacity, 0.4);
  // And as a DICOM SEG of the series: hand-made, so MANUAL; opened again over the series,
  // the same voxels, names and codes.
  const QString segFile = dataDir_->path() + "/labels-seg.dcm";
  QSignalSpy segImported(w->browser(), &StudyBrowser::importFinished);
  QVERIFY2(lp->saveTo(segFile, &error), qPrintable(error));
  QVERIFY(segImported.wait(30000));  // a saved SEG goes into the study database by itself
  QVERIFY2(segImported.at(0).at(1).toStringList().isEmpty(), qPrintable(segImported.at(0).at(1).toStringList().join("; ")));
  auto seg = dicom::readSegmentation(segFile.toStdString(), g);
  QVERIFY2(seg.ok(), seg ? "" : qPrintable(QString::fromStdString(seg.error().toString())));
  QVERIFY(std::memcmp(seg->labels->bytes(), labels->bytes(), labels->byteSize()) == 0);
  QCOMPARE(QString::fromStdString(seg->algorithmType), QString("MANUAL"));
  QCOMPARE(QString::fromStdString(seg->infos[1].type.meaning), QString("Phantom box"));
  w->clearOverlay();
  QSignalSpy segLoaded(w, &MainWindow::overlayLoaded);
  w->openOverlay(segFile);
  QVERIFY(segLoaded.wait(20000));
  QVERIFY(lp->editing());
  QVERIFY(std::memcmp(lp->overlay()->labels->bytes(), labels->bytes(), labels->byteSize()) == 0);
  QCOMPARE(QString::fromStdString(lp->overlay()->entries[1].name), QString("Box"));
  // Imported, the SEG is a series of its study in the browser; opening it opens the
  // series it segments with its labels over it.
  w->clearOverlay();
  QSignalSpy imported(w->browser(), &StudyBrowser::importFinished);
  w->browser()->importPaths({kCorpus + "/phantom/box"}, false);
  QVERIFY(imported.wait(30000));
  QVERIFY2(imported.at(0).at(1).toStringList().isEmpty(), qPrintable(imported.at(0).at(1).toStringList().join("; ")));
  // In the browser the SEG's tile says what it is (it has no image of its own).
  w->browser()->selectStudy(0);
  auto* seriesList = w->browser()->findChild<QListWidget*>();
  QVERIFY(seriesList);
  QListWidgetItem* segItem = nullptr;
  for (int i = 0; i < seriesList->count(); ++i)
    if (seriesList->item(i)->text().startsWith("SEG")) segItem = seriesList->item(i);
  QVERIFY(segItem);
  const QImage tile = segItem->icon().pixmap(96, 96).toImage().convertToFormat(QImage::Format_RGB888);
  int bright = 0;
  for (int y = 0; y < tile.height(); ++y)
    for (int x = 0; x < tile.width(); ++x) bright += qGray(tile.pixel(x, y)) > 180;
  QVERIFY2(bright > 40, qPrintable(QString("the SEG tile has %1 bright pixels").arg(bright)));  // its name, in white
  QVERIFY(w->browser()->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-browser-results.png"));  // for a person to look at
  QSignalSpy reopened(w, &MainWindow::overlayLoaded);
  w->openPaths({segFile});
  QVERIFY(reopened.wait(30000));
  QCOMPARE(w->grid()->activeSliceView()->series()->info.series.description, std::string("measurement phantom"));
  QTest::qWait(200);
  QVERIFY(w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-seg-reopened.png"));  // for a person to look at
  QVERIFY(std::memcmp(lp->overlay()->labels->bytes(), labels->bytes(), labels->byteSize()) == 0);

  // A result on the series grid (as the AI engine gives) opens editable with statistics;
  // saved unchanged as SEG it names the model as an AUTOMATIC algorithm.
  w->clearOverlay();
  QVERIFY(!lp->editing());
  w->showLabelMap(back->labels, {{2, "box (model)", std::nullopt}}, "model", {"box_model", "0.3", std::string(64, 'c')});
  QVERIFY(lp->editing());
  QVERIFY(lp->waitForMeasures(20000));
  QCOMPARE(lp->measures().size(), std::size_t(3));
  QSignalSpy aiSegImported(w->browser(), &StudyBrowser::importFinished);
  QVERIFY2(lp->saveTo(segFile, &error), qPrintable(error));
  QVERIFY(aiSegImported.wait(30000));
  auto aiSeg = dicom::readSegmentation(segFile.toStdString(), g);
  QVERIFY2(aiSeg.ok(), aiSeg ? "" : qPrintable(QString::fromStdString(aiSeg.error().toString())));
  QCOMPARE(QString::fromStdString(aiSeg->algorithmType), QString("AUTOMATIC"));

  // Crop to the 3D view's clipping box: label 3 (the cone, z -20..0) keeps z >= -12 only.
  const auto& map = *lp->overlay()->labels;
  auto countIn = [&](int value, double zMin) {
    std::size_t n = 0;
    for (std::size_t k = 0; k < g.size[2]; ++k)
      for (std::size_t j = 0; j < g.size[1]; ++j)
        for (std::size_t i = 0; i < g.size[0]; ++i)
          n += map.data<std::uint8_t>()[map.linearIndex(i, j, k)] == value && g.ijkToLps({double(i), double(j), double(k)}).z >= zMin;
    return n;
  };
  const std::size_t upper = countIn(3, -12), ones = countIn(1, -1e9);
  QVERIFY(upper > 0 && upper < countIn(3, -1e9));
  w->setLayoutMode(Layout::Mpr);
  QTest::qWait(200);
  // The map being edited stays on screen in every plane after the layout change.
  for (int i = 0; i < 3; ++i) QCOMPARE(w->grid()->sliceView(i)->overlay(), lp->overlay());
  const double clipBox[6] = {-40, 40, -45, 45, -12, 40};
  w->grid()->volumeView()->placeClippingBox(clipBox);
  lp->setActiveLabel(3);
  emit lp->cropRequested();
  QCOMPARE(countIn(3, -1e9), upper);
  QTest::qWait(600);  // the 3D surfaces follow the edit once painting pauses
  QVERIFY(w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-segment-editor-mpr.png"));
  // Merge label 1 into 3, then delete 3: voxels to background, the row gone.
  QVERIFY(lp->mergeIntoActive(1));
  QCOMPARE(countIn(1, -1e9), std::size_t(0));
  QCOMPARE(countIn(3, -1e9), upper + ones);
  QVERIFY(lp->deleteActiveLabel());
  QCOMPARE(countIn(3, -1e9), std::size_t(0));
  for (const auto& e : lp->overlay()->entries) QVERIFY(e.value != 3);
  QVERIFY(w->undoLast());  // the deletion's voxels come back, and their row
  QCOMPARE(countIn(3, -1e9), upper + ones);
  QVERIFY(std::any_of(lp->overlay()->entries.begin(), lp->overlay()->entries.end(), [](auto& e) { return e.value == 3; }));
  lp->setActiveLabel(3);
  // Combined with another map: intersect keeps label 3 where that map has labels.
  auto halfMask = Volume::zeros(PixelType::UInt8, g);
  for (std::size_t k = 0; k < g.size[2]; ++k)
    for (std::size_t j = 0; j < g.size[1]; ++j)
      for (std::size_t i = 0; i < g.size[0]; ++i)
        if (g.ijkToLps({double(i), double(j), double(k)}).z >= -5) halfMask->data<std::uint8_t>()[halfMask->linearIndex(i, j, k)] = 9;
  const QString maskFile = dataDir_->path() + "/upper.nii.gz";
  QVERIFY(io::writeImage(*halfMask, maskFile.toStdString()));
  const std::size_t upper3 = countIn(3, -5);
  QVERIFY(lp->combineWithFile(maskFile, LabelEditor::LogicalOp::Intersect));
  QCOMPARE(countIn(3, -1e9), upper3);
  QVERIFY(lp->combineWithFile(maskFile, LabelEditor::LogicalOp::Subtract));
  QCOMPARE(countIn(3, -1e9), std::size_t(0));
}

void GuiTest::unsavedLabelEditsSurviveAsAnAutosave() {
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kCorpus + "/phantom/box"}));
  SliceView* v = w->grid()->activeSliceView();
  LabelPanel* lp = w->labelPanel();
  QVERIFY(lp->newLabelMap());
  lp->setTool(PaintTool::Brush);
  clickMouse(v, v->widgetPos(v->navigator().focal()));
  QVERIFY(lp->hasUnsavedChanges());
  const auto painted = std::vector<std::uint8_t>(lp->overlay()->labels->data<std::uint8_t>(),
                                                 lp->overlay()->labels->data<std::uint8_t>() + lp->overlay()->labels->voxelCount());
  const QString autosave = lp->autosavePath(*v->series());
  QVERIFY(!QFileInfo::exists(autosave));
  w->clearOverlay();
  QVERIFY(QFileInfo::exists(autosave));
  QVERIFY(w->messages().join("\n").contains("Unsaved label edits were kept"));
  auto* restore = lp->findChild<QPushButton*>("RestoreLabels");
  QVERIFY(restore && restore->isVisibleTo(lp));
  window_.reset();

  w = openWindow();
  QVERIFY(load(w, {kCorpus + "/phantom/box"}));
  lp = w->labelPanel();
  QVERIFY(lp->findChild<QPushButton*>("RestoreLabels")->isVisibleTo(lp));
  QVERIFY(lp->restoreAutosave());
  QVERIFY(lp->editing());
  QVERIFY(lp->hasUnsavedChanges());
  QVERIFY(std::memcmp(lp->overlay()->labels->bytes(), painted.data(), painted.size()) == 0);
  QString error;
  QVERIFY2(lp->saveTo(dataDir_->path() + "/kept.nrrd", &error), qPrintable(error));
  QVERIFY(!QFileInfo::exists(autosave));
  QVERIFY(!lp->findChild<QPushButton*>("RestoreLabels")->isVisibleTo(lp));
}
