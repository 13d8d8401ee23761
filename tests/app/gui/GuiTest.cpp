// The workstation tested as a person uses it, under Xvfb: open the real CT, scroll,
// change window/level, switch layouts, move the MPR crosshair, load an overlay; the
// assertions are on what the viewports show (their rendered pixels) and say. The slots are
// declared in GuiTest.h and defined by area in GuiTest<Area>.cpp.

#include "GuiTest.h"

int main(int argc, char** argv) {
  VtkWidget::configureDefaultSurfaceFormat();
  QApplication app(argc, argv);
  QApplication::setApplicationName("LumenGuiTest");
  QStandardPaths::setTestModeEnabled(true);
  // The AI tests' bundles are trusted (one is left out: the prompt is tested with it).
  const QString config = QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-config";
  qputenv("LUMEN_CONFIG_DIR", config.toUtf8());
  trustTestModels(config, "pointwise3d");
  GuiTest t;
  return QTest::qExec(&t, argc, argv);
}
