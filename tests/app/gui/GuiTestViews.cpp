// GUI tests: What the viewports show: slices, orientation, window/level, layouts, MPR, 3D, MIP,
// overlays, cine and a sane first picture for every kind of image.

#include "GuiTest.h"

void GuiTest::opensTheRealCtAndShowsTheMiddleSlice() {
  MainWindow* w = openWindow();
  QVERIFY(w);
  QVERIFY(load(w, {kSample}));
  SliceView* v = w->grid()->activeSliceView();
  QVERIFY(v->hasSeries());
  QCOMPARE(v->sliceCount(), 32);
  QCOMPARE(v->sliceIndex(), 16);
  QVERIFY(QString::fromStdString(v->cornerTexts().bottomLeft).contains("Im 17/32"));
  const Match m = compareWithVolume(v);
  QVERIFY2(m.samples > 1000, qPrintable(QString::number(m.samples)));
  QVERIFY2(m.correlation > 0.98, qPrintable(QString("correlation %1").arg(m.correlation)));
  QVERIFY2(m.meanAbsDiff < 4.0, qPrintable(QString("mean |difference| %1 grey levels").arg(m.meanAbsDiff)));
  // Radiological orientation of an axial CT.
  const auto e = v->edgeTexts();
  QCOMPARE(QString::fromStdString(e[0]), QString("R"));
  QCOMPARE(QString::fromStdString(e[1]), QString("L"));
  QCOMPARE(QString::fromStdString(e[2]), QString("A"));
  QCOMPARE(QString::fromStdString(e[3]), QString("P"));
}

void GuiTest::aCoronalNiftiIsShownSuperiorUp() {
  // A volume stored like a RAS NIfTI of coronal slices (KmeansTest T1: rows running
  // inferior to superior, slices posterior to anterior), bright in its superior half.
  ImageGeometry g;
  g.size = {40, 30, 20};
  g.spacingMm = {2.0, 2.0, 3.0};
  g.direction = Mat3::fromColumns({1, 0, 0}, {0, 0, 1}, {0, -1, 0});
  auto vol = Volume::zeros(PixelType::UInt8, g);
  QVERIFY(vol);
  for (std::size_t k = 0; k < 20; ++k)
    for (std::size_t j = 0; j < 30; ++j)
      for (std::size_t i = 0; i < 40; ++i) vol->data<std::uint8_t>()[(k * 30 + j) * 40 + i] = j >= 15 ? 200 : 20;
  const QString path = dataDir_->path() + "/coronal_ras.nii.gz";
  QVERIFY(io::writeImage(*vol, path.toStdString()));
  MainWindow* w = openWindow();
  QVERIFY(load(w, {path}));
  SliceView* v = w->grid()->activeSliceView();
  QCOMPARE(QString::fromStdString(v->cornerTexts().bottomLeft).left(7), QString("Coronal"));
  const auto e = v->edgeTexts();
  QCOMPARE(QString::fromStdString(e[0]), QString("R"));
  QCOMPARE(QString::fromStdString(e[1]), QString("L"));
  QCOMPARE(QString::fromStdString(e[2]), QString("S"));
  QCOMPARE(QString::fromStdString(e[3]), QString("I"));
  // What a person sees: the bright (superior) half at the top of the picture.
  const QImage img = v->grabFramebuffer().convertToFormat(QImage::Format_Grayscale8);
  const int cx = img.width() / 2, cy = img.height() / 2;
  const int above = qGray(img.pixel(cx, cy - img.height() / 8)), below = qGray(img.pixel(cx, cy + img.height() / 8));
  QVERIFY2(above > below + 100, qPrintable(QString("grey above the centre %1, below %2").arg(above).arg(below)));

  // In MPR the 3D view picks the MR preset itself; the toolbar's box says so.
  auto* preset3d = w->findChild<QComboBox*>("Preset3D");
  QVERIFY(preset3d);
  w->setLayoutMode(Layout::Mpr);
  QCOMPARE(preset3d->currentText(), QString("MR default"));
  QVERIFY(w->applyPresetByName("MIP"));
  QCOMPARE(preset3d->currentText(), QString("MIP"));
}

void GuiTest::scrollingShowsTheNextSlices() {
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kSample}));
  SliceView* v = w->grid()->activeSliceView();
  const QImage before = v->grabFramebuffer();
  for (int i = 0; i < 3; ++i) QTest::keyClick(v, Qt::Key_Up);
  QCOMPARE(v->sliceIndex(), 19);
  QTest::keyClick(v, Qt::Key_PageDown);
  QCOMPARE(v->sliceIndex(), 9);
  QWheelEvent wheel(QPointF(100, 100), v->mapToGlobal(QPointF(100, 100)), {}, QPoint(0, 240), Qt::NoButton, Qt::NoModifier,
                    Qt::NoScrollPhase, false);
  QApplication::sendEvent(v, &wheel);
  QCOMPARE(v->sliceIndex(), 11);
  QVERIFY(QString::fromStdString(v->cornerTexts().bottomLeft).contains("Im 12/32"));
  const QImage after = v->grabFramebuffer();
  QVERIFY(before != after);
  const Match m = compareWithVolume(v);
  QVERIFY2(m.correlation > 0.98, qPrintable(QString("correlation %1").arg(m.correlation)));
}

// Under a software rasteriser the views draw single-sampled: a 4x multisampled frame
// takes about three times as long in llvmpipe. The image's pixels must not change.
void GuiTest::softwareOpenGlDrawsSingleSampledWithTheSamePixels() {
  QVERIFY(VtkWidget::isSoftwareRenderer("llvmpipe (LLVM 15.0.6, 256 bits)"));
  QVERIFY(VtkWidget::isSoftwareRenderer("softpipe"));
  QVERIFY(!VtkWidget::isSoftwareRenderer("NVIDIA H200/PCIe/SSE2"));
  QVERIFY(!VtkWidget::isSoftwareRenderer("Mesa Intel(R) UHD Graphics 620 (KBL GT2)"));
  QVERIFY(!VtkWidget::isSoftwareRenderer(nullptr));
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kSample}));
  SliceView* v = w->grid()->activeSliceView();
  v->makeCurrent();
  const QByteArray renderer(reinterpret_cast<const char*>(v->context()->functions()->glGetString(GL_RENDERER)));
  v->doneCurrent();
  QVERIFY2(VtkWidget::isSoftwareRenderer(renderer.constData()), renderer.constData());  // CI runs Mesa llvmpipe
  QCOMPARE(v->multiSamples(), 0);
  const QImage single = v->grabFramebuffer().convertToFormat(QImage::Format_RGB32);
  window_.reset();

  VtkWidget::setRequestedMultiSamples(4);
  w = openWindow();
  VtkWidget::setRequestedMultiSamples(-1);
  QVERIFY(w);
  QVERIFY(load(w, {kSample}));
  v = w->grid()->activeSliceView();
  QCOMPARE(v->multiSamples(), 4);
  const QImage multi = v->grabFramebuffer().convertToFormat(QImage::Format_RGB32);
  QCOMPARE(multi.size(), single.size());
  // The middle of the view holds only the image (annotations are at its edges).
  int differ = 0, bright = 0;
  for (int y = single.height() / 4; y < 3 * single.height() / 4; ++y)
    for (int x = single.width() / 4; x < 3 * single.width() / 4; ++x) {
      differ += single.pixel(x, y) != multi.pixel(x, y);
      bright += qGray(single.pixel(x, y)) > 60;
    }
  QVERIFY2(bright > single.width() * single.height() / 40, qPrintable(QString("%1 bright pixels").arg(bright)));
  QVERIFY2(differ == 0, qPrintable(QString("%1 pixels differ").arg(differ)));
}

void GuiTest::windowLevelPresetsAndMouseDrag() {
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kSample}));
  SliceView* v = w->grid()->activeSliceView();
  QVERIFY(w->applyPresetByName("bone"));
  QCOMPARE(v->windowLevel().width, 1800.0);
  QCOMPARE(v->windowLevel().center, 400.0);
  Match m = compareWithVolume(v);
  QVERIFY2(m.meanAbsDiff < 4.0, qPrintable(QString("bone window: %1").arg(m.meanAbsDiff)));
  QVERIFY(w->applyPresetByName("brain"));
  QCOMPARE(v->windowLevel().width, 80.0);
  m = compareWithVolume(v);
  QVERIFY2(m.meanAbsDiff < 6.0, qPrintable(QString("brain window: %1").arg(m.meanAbsDiff)));
  // Dragging right widens the window, dragging down raises the level.
  const WindowLevel start = v->windowLevel();
  const QPoint c = v->rect().center();
  QTest::mousePress(v, Qt::LeftButton, {}, c);
  QMouseEvent move(QEvent::MouseMove, QPointF(c + QPoint(60, 40)), v->mapToGlobal(QPointF(c + QPoint(60, 40))),
                   Qt::NoButton, Qt::LeftButton, Qt::NoModifier);
  QApplication::sendEvent(v, &move);
  QTest::mouseRelease(v, Qt::LeftButton, {}, c + QPoint(60, 40));
  QVERIFY(v->windowLevel().width > start.width);
  QVERIFY(v->windowLevel().center > start.center);
  QVERIFY(QString::fromStdString(v->cornerTexts().bottomRight).contains(QString("W %1").arg(std::lround(v->windowLevel().width))));
  // Invert: the same pixels, mirrored grey.
  const QImage plain = v->grabFramebuffer().convertToFormat(QImage::Format_Grayscale8);
  v->setInverted(true);
  const QImage inv = v->grabFramebuffer().convertToFormat(QImage::Format_Grayscale8);
  const QPoint p = c + QPoint(10, 10);
  QVERIFY(std::abs(qGray(plain.pixel(p)) + qGray(inv.pixel(p)) - 255) <= 3);
}

void GuiTest::layoutsSwitch() {
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kSample}));
  w->setLayoutMode(Layout::TwoByTwo);
  QTest::qWait(50);
  for (int i = 0; i < 4; ++i) QVERIFY(w->grid()->sliceView(i)->isVisible());
  QVERIFY(!w->grid()->volumeView()->isVisible());
  w->setLayoutMode(Layout::OneByTwo);
  QTest::qWait(50);
  QVERIFY(w->grid()->sliceView(1)->isVisible());
  QVERIFY(!w->grid()->sliceView(2)->isVisible());
  w->setLayoutMode(Layout::Mpr);
  QTest::qWait(100);
  QVERIFY(w->grid()->volumeView()->isVisible());
  QCOMPARE(w->grid()->sliceView(0)->plane(), Plane::Axial);
  QCOMPARE(w->grid()->sliceView(1)->plane(), Plane::Coronal);
  QCOMPARE(w->grid()->sliceView(2)->plane(), Plane::Sagittal);
  for (int i = 0; i < 3; ++i) QVERIFY(w->grid()->sliceView(i)->hasSeries());
  QVERIFY(w->grid()->volumeView()->series() != nullptr);
  QCOMPARE(w->findChild<QComboBox*>("Preset3D")->currentText(), QString("CT bone"));
  // Coronal and sagittal markers.
  auto e = w->grid()->sliceView(1)->edgeTexts();
  QCOMPARE(QString::fromStdString(e[2]), QString("S"));
  QCOMPARE(QString::fromStdString(e[0]), QString("R"));
  e = w->grid()->sliceView(2)->edgeTexts();
  QCOMPARE(QString::fromStdString(e[0]), QString("A"));
  QCOMPARE(QString::fromStdString(e[1]), QString("P"));
  // The MPR planes show the volume where they say they are.
  for (int i = 1; i < 3; ++i) {
    const Match m = compareWithVolume(w->grid()->sliceView(i));
    QVERIFY2(m.correlation > 0.95, qPrintable(QString("view %1 correlation %2").arg(i).arg(m.correlation)));
  }
  // The 3D view renders the volume (bright skull on dark background).
  const int bright = brightPixels(w->grid()->volumeView()->grabFramebuffer());
  QVERIFY2(bright > 50, qPrintable(QString("bright pixels in 3D: %1").arg(bright)));
  QCOMPARE(QString::fromStdString(w->grid()->volumeView()->renderModeName()), QString("GPU ray cast"));
}

void GuiTest::the3dViewDraftsThenRefinesAndAGrabReusesAnUnchangedFrame() {
  MainWindow* w = openWindow();
  QVERIFY(w);
  w->setLayoutMode(Layout::Mpr);
  VolumeView3D* v = w->grid()->volumeView();
  QSignalSpy frames(v, &VtkWidget::frameRendered);
  QSignalSpy refined(v, &VolumeView3D::refined);
  int framesBeforeSeries = -1;  // frames drawn before the whole series was shown
  connect(w, &MainWindow::seriesLoaded, this, [&] { framesBeforeSeries = static_cast<int>(frames.size()); },
          Qt::SingleShotConnection);
  QVERIFY(load(w, {kSample}));
  // A hang guard, not a speed requirement.
  for (int i = 0; i < kRunGuardMs / 50 && refined.isEmpty(); ++i) QTest::qWait(50);
  QCOMPARE(refined.size(), 1);
  QVERIFY(!v->refining());
  // The draft and the full-quality frame, both of the series.
  QVERIFY(framesBeforeSeries >= 0);
  QVERIFY2(frames.size() - framesBeforeSeries >= 2, qPrintable(QString("%1 of %2").arg(framesBeforeSeries).arg(frames.size())));
  // Nothing changed: a grab uses the frame on screen instead of rendering again.
  const int before = static_cast<int>(frames.size());
  const QImage same = v->grabFramebuffer();
  QCOMPARE(static_cast<int>(frames.size()), before);
  const int bright = brightPixels(same);
  QVERIFY2(bright > 50, qPrintable(QString("bright pixels in 3D: %1").arg(bright)));
  // A change (another preset) is rendered by the grab itself, and shows.
  v->setPreset(VolumePreset::Mip);
  const QImage mip = v->grabFramebuffer();
  QCOMPARE(static_cast<int>(frames.size()), before + 1);
  QVERIFY(mip != same);
  // So is a camera move.
  v->resetView();
  v->renderer()->GetActiveCamera()->Azimuth(90);
  const QImage turned = v->grabFramebuffer();
  QCOMPARE(static_cast<int>(frames.size()), before + 2);
  QVERIFY(turned != mip);
}

void GuiTest::crosshairClickMovesTheOtherPlanes() {
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kSample}));
  w->setLayoutMode(Layout::Mpr);
  QTest::qWait(100);
  SliceView* axial = w->grid()->sliceView(0);
  SliceView* coronal = w->grid()->sliceView(1);
  SliceView* sagittal = w->grid()->sliceView(2);
  const QPoint click = axial->rect().center() + QPoint(40, -30);
  const Vec3 target = axial->worldAt(click);
  QTest::mouseClick(axial, Qt::LeftButton, {}, click);
  QTest::qWait(50);
  const Vec3 c = w->grid()->crosshair();
  QVERIFY((c - target).norm() < 0.5);
  // Coronal now cuts through the clicked A/P position, sagittal through its L/R one.
  QVERIFY(std::fabs(coronal->navigator().focal().y - target.y) <= coronal->navigator().stepMm());
  QVERIFY(std::fabs(sagittal->navigator().focal().x - target.x) <= sagittal->navigator().stepMm());
  // The crosshair is drawn: a red (axial plane) line crosses the coronal view where the
  // crosshair is.
  const QImage img = coronal->grabFramebuffer().convertToFormat(QImage::Format_RGB888);
  const QPointF at = coronal->widgetPos(c);
  int red = 0;
  for (int x = 10; x < img.width() - 10; x += 3) {
    for (int dy = -1; dy <= 1; ++dy) {
      const QRgb px = img.pixel(x, std::clamp(static_cast<int>(std::lround(at.y())) + dy, 0, img.height() - 1));
      // The line may fall between two pixel rows and be spread over both.
      if (qRed(px) - qGreen(px) > 60 && qRed(px) - qBlue(px) > 60) {
        ++red;
        break;
      }
    }
  }
  QVERIFY2(red > img.width() / 6, qPrintable(QString("red line pixels %1").arg(red)));
  // Oblique: rotating in the axial view turns the coronal plane, not the axial one.
  const Vec3 axialNormal = axial->navigator().axes().normal;
  w->grid()->rotateMpr(0.3, Plane::Axial);
  QVERIFY((axial->navigator().axes().normal - axialNormal).norm() < 1e-9);
  QVERIFY(std::fabs(coronal->navigator().axes().normal.dot({0, 1, 0}) - std::cos(0.3)) < 1e-6);
  QVERIFY(std::fabs(coronal->navigator().axes().normal.dot(sagittal->navigator().axes().normal)) < 1e-9);
}

void GuiTest::slabMipIsBrighterThanASlice() {
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kSample}));
  SliceView* v = w->grid()->activeSliceView();
  auto mean = [](const QImage& i) {
    const QImage g = i.convertToFormat(QImage::Format_Grayscale8);
    double s = 0;
    for (int y = 0; y < g.height(); y += 3)
      for (int x = 0; x < g.width(); x += 3) s += qGray(g.pixel(x, y));
    return s;
  };
  const double plain = mean(v->grabFramebuffer());
  w->grid()->setSlab(SlabMode::Max, 10.0);
  const double mip = mean(v->grabFramebuffer());
  w->grid()->setSlab(SlabMode::Min, 10.0);
  const double minip = mean(v->grabFramebuffer());
  QVERIFY2(mip > plain * 1.02, qPrintable(QString("%1 vs %2").arg(mip).arg(plain)));
  QVERIFY(minip < plain);
  QVERIFY(QString::fromStdString(v->cornerTexts().bottomLeft).contains("MinIP slab 10 mm"));
}

void GuiTest::overlayShowsLabelsInColour() {
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kSample}));
  SliceView* v = w->grid()->activeSliceView();
  // Label 1 where the CT is bone (> 300 HU), on the CT's grid.
  const Volume& ct = *v->series()->volume;
  auto labels = Volume::zeros(PixelType::UInt8, ct.geometry());
  QVERIFY(labels);
  for (std::size_t i = 0; i < ct.voxelCount(); ++i) labels->data<std::uint8_t>()[i] = ct.data<std::int16_t>()[i] > 300;
  const QString path = dataDir_->path() + "/bone.nii.gz";
  QVERIFY(io::writeImage(*labels, path.toStdString()));
  QSignalSpy loaded(w, &MainWindow::overlayLoaded);
  w->openOverlay(path);
  QVERIFY(loaded.wait(20000));
  QTest::qWait(100);
  QVERIFY(w->labelPanel()->overlay() != nullptr);
  QCOMPARE(static_cast<int>(w->labelPanel()->overlay()->entries.size()), 1);
  const QImage img = v->grabFramebuffer().convertToFormat(QImage::Format_RGB888);
  int reddish = 0, bone = 0, greyOutside = 0, outside = 0;
  for (int y = img.height() / 6; y < img.height() * 5 / 6; y += 4) {
    for (int x = img.width() / 6; x < img.width() * 5 / 6; x += 4) {
      const Vec3 ijk = ct.geometry().lpsToIjk(v->worldAt(QPointF(x + 0.5, y + 0.5)));
      const long i = std::lround(ijk.x), j = std::lround(ijk.y), k = std::lround(ijk.z);
      if (i < 1 || j < 1 || i >= 511 || j >= 511) continue;
      const QRgb px = img.pixel(x, y);
      const bool red = qRed(px) > qGreen(px) + 25;
      // Use voxels whose neighbours agree, away from label borders.
      bool all = true, none = true;
      for (int dj = -1; dj <= 1; ++dj)
        for (int di = -1; di <= 1; ++di) {
          const bool b = ct.scalarAt(static_cast<std::size_t>(i + di), static_cast<std::size_t>(j + dj), static_cast<std::size_t>(k)) > 300;
          all = all && b;
          none = none && !b;
        }
      if (all) {
        ++bone;
        reddish += red;
      } else if (none) {
        ++outside;
        greyOutside += !red;
      }
    }
  }
  QVERIFY(bone > 100);
  QVERIFY2(reddish > bone * 9 / 10, qPrintable(QString("%1 of %2 bone samples coloured").arg(reddish).arg(bone)));
  QVERIFY2(greyOutside > outside * 9 / 10, qPrintable(QString("%1 of %2 others grey").arg(greyOutside).arg(outside)));
  // Hiding the label removes the colour.
  w->labelPanel()->overlay()->entries[0].visible = false;
  w->grid()->overlayAppearanceChanged();
  const QImage hidden = v->grabFramebuffer().convertToFormat(QImage::Format_RGB888);
  int stillRed = 0;
  for (int y = 0; y < hidden.height(); y += 4)
    for (int x = 0; x < hidden.width(); x += 4) stillRed += qRed(hidden.pixel(x, y)) > qGreen(hidden.pixel(x, y)) + 25;
  QVERIFY(stillRed < 10);
}

void GuiTest::obliqueSeriesHasObliqueOrientationMarkers() {
  QVERIFY2(QDir(kCorpus + "/ramp/oblique").exists(), "test corpus missing: ctest builds it first (corpus_setup)");
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kCorpus + "/ramp/oblique"}));
  SliceView* v = w->grid()->activeSliceView();
  const auto e = v->edgeTexts();
  // Rows run 30 degrees from L towards P, columns tilted 20 degrees towards S.
  QCOMPARE(QString::fromStdString(e[0]), QString("RA"));
  QCOMPARE(QString::fromStdString(e[1]), QString("LP"));
  QCOMPARE(QString::fromStdString(e[2]), QString("ALI"));
  QCOMPARE(QString::fromStdString(e[3]), QString("PRS"));
  QVERIFY(QString::fromStdString(v->cornerTexts().bottomLeft).startsWith("Oblique"));
  // Values at their physical place: the ramp phantom holds 2x+3y+5z+1000 everywhere.
  w->applyPresetByName("auto");
  const Match m = compareWithVolume(v);
  QVERIFY2(m.correlation > 0.98, qPrintable(QString("correlation %1").arg(m.correlation)));
}

void GuiTest::hidingPatientInformationAndProbe() {
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kSample}));
  SliceView* v = w->grid()->activeSliceView();
  QVERIFY(QString::fromStdString(v->cornerTexts().topLeft).contains("CAMITK"));
  w->setHidePatient(true);
  QVERIFY(!QString::fromStdString(v->cornerTexts().topLeft).contains("CAMITK"));
  QVERIFY(QString::fromStdString(v->cornerTexts().topLeft).contains("SINUS"));
  QTest::mouseMove(v, v->rect().center());
  QMouseEvent move(QEvent::MouseMove, QPointF(v->rect().center()), v->mapToGlobal(QPointF(v->rect().center())),
                   Qt::NoButton, Qt::NoButton, Qt::NoModifier);
  QApplication::sendEvent(v, &move);
  QVERIFY2(QString::fromStdString(v->cornerTexts().bottomLeft).contains("HU "),
           v->cornerTexts().bottomLeft.c_str());
}

void GuiTest::cinePlaysATimeSeries() {
  QVERIFY2(QDir(kCorpus + "/cine").exists(), "test corpus missing: ctest builds it first (corpus_setup)");
  MainWindow* w = openWindow();
  QVERIFY(load(w, {kCorpus + "/cine/XA_CINE.dcm"}));
  SliceView* v = w->grid()->activeSliceView();
  QCOMPARE(v->sliceCount(), 5);
  QAction* cine = nullptr;
  for (QAction* a : w->findChildren<QAction*>())
    if (a->text() == "Cine") cine = a;
  QVERIFY(cine);
  QSignalSpy frames(v, &SliceView::sliceChanged);
  cine->trigger();  // on: 33.3 ms per frame, from the header
  QCOMPARE(w->findChild<QSpinBox*>("CineFps")->value(), 30);  // the header's frame rate
  // However slow the machine, the frames advance in order and wrap around.
  QTRY_VERIFY_WITH_TIMEOUT(frames.count() >= 7, 30000);
  for (int i = 1; i < 7; ++i)
    QCOMPARE(frames.at(i).first().toInt(), (frames.at(i - 1).first().toInt() + 1) % 5);
  cine->trigger();  // off
  QVERIFY(!cine->isChecked());
  const int stopped = v->sliceIndex();
  frames.clear();
  QTest::qWait(200);  // six frame times: a running cine would have moved
  QCOMPARE(frames.count(), 0);
  QCOMPARE(v->sliceIndex(), stopped);
  QVERIFY(QString::fromStdString(v->cornerTexts().bottomLeft).contains("/5"));
  // No anatomical markers on an image without patient geometry.
  for (const auto& e : v->edgeTexts()) QVERIFY(e.empty());
}

// Every image opens with a window that shows it: not blank, not saturated. The first
// picture (from the first decoded slice) and the finished one; headers without window
// tags, with placeholder windows, DICOM of every kind in the pydicom corpus, NIfTI, NRRD.
void GuiTest::everyImageOpensWithASanePicture() {
  QVERIFY2(QDir(kCorpus + "/no-window").exists(), "test corpus missing: ctest builds it first (corpus_setup)");
  MainWindow* w = openWindow();
  // The real CT as NIfTI and NRRD: no modality, no window tags.
  const Volume l = loadDicom(kSample);
  QVERIFY(!l.empty());
  QStringList inputs = {kCorpus + "/no-window/XA_8bit_baseline.dcm", kCorpus + "/no-window/mr-oblique",
                        kCorpus + "/ramp/axial-shuffled", kCorpus + "/enhanced", kCorpus + "/photometric/mono2.dcm", kCorpus + "/photometric/highbit.dcm"};
  for (const char* ext : {".nii.gz", ".nrrd"}) {
    const QString path = dataDir_->path() + "/ct" + ext;
    QVERIFY(io::writeImage(l, path.toStdString()));
    inputs << path;
  }
  for (const QString& f : QDir(kCorpus + "/pydicom").entryList(QDir::Files)) inputs << kCorpus + "/pydicom/" + f;
  int checked = 0;
  int reports = 0;
  for (const QString& path : inputs) {
    if (ResultViewer::handles(path)) {  // a report opens in its own viewer, not in a view
      const int before = static_cast<int>(w->findChildren<ResultViewer*>().size());
      QSignalSpy failed(w, &MainWindow::loadFailed);
      w->openPaths({path});
      const QStringList messages = w->messages();
      QVERIFY2(static_cast<int>(w->findChildren<ResultViewer*>().size()) == before + 1 ||
                   (!messages.isEmpty() && messages.last().contains(QFileInfo(path).fileName())),
               qPrintable(path + ": a report neither shown nor refused"));
      ++reports;
      continue;
    }
    SliceView* v = w->grid()->activeSliceView();
    QList<WindowLevel> windows;
    auto conn = connect(v, &SliceView::windowLevelChanged, this, [&](const WindowLevel& wl) { windows << wl; });
    QSignalSpy failed(w, &MainWindow::loadFailed);
    const bool ok = load(w, {path});
    disconnect(conn);
    if (!ok) {
      QVERIFY2(!failed.isEmpty(), qPrintable(path + ": neither loaded nor refused"));
      continue;  // not an image (SR, plan, SEG...) or deliberately broken: said in Messages
    }
    if (v->series()->isColor()) continue;
    QVERIFY2(!windows.isEmpty(), qPrintable(path));
    const Volume& vol = *v->series()->volume;
    const std::size_t k = static_cast<std::size_t>(std::max(0, std::min(v->sliceIndex(), static_cast<int>(vol.size()[2]) - 1)));
    // The first window (from the first slice decoded) already shows that slice.
    const double firstSat = saturatedShare(vol, vol.size()[2] / 2, windows.first());
    QVERIFY2(firstSat < 0.9, qPrintable(QString("%1: first window W %2 L %3 saturates %4 of the slice")
                                             .arg(path).arg(windows.first().width).arg(windows.first().center).arg(firstSat)));
    (void)k;
    const Picture p = pictureOf(v);
    QVERIFY2(p.samples > 100, qPrintable(path));
    const QString what = QString("%1: W %2 L %3, mean %4, sd %5, black/white %6, mid-grey %7")
                             .arg(path).arg(v->windowLevel().width).arg(v->windowLevel().center)
                             .arg(p.mean).arg(p.stddev).arg(p.extremes).arg(p.midGrey);
    QVERIFY2(p.stddev > 8.0, qPrintable("blank: " + what));
    QVERIFY2(p.extremes < 0.85, qPrintable("saturated: " + what));
    QVERIFY2(p.midGrey > 0.08, qPrintable("no mid-grey: " + what));
    ++checked;
  }
  QVERIFY2(checked >= 15, qPrintable(QString::number(checked)));
  QVERIFY(reports >= 1);  // pydicom's test-SR.dcm
}
