// The PDF part of `lumen-cli report`: a plug-in, because it needs Qt Gui (fonts, text
// layout, the PDF writer) and the other commands must not load it. Renders offscreen.

#include <QGuiApplication>

#include <memory>
#include <string>

#include "ReportPdf.h"

extern "C" __attribute__((visibility("default"))) int lumen_cli_report_pdf(const lumen::report::ReportContent* content,
                                                                          std::string* pdf, std::string* error) {
  std::unique_ptr<QGuiApplication> app;
  if (!QGuiApplication::instance()) {
    qputenv("QT_QPA_PLATFORM", "offscreen");  // nothing is shown; no display needed
    static int argc = 1;
    static char name[] = "lumen-cli";
    static char* argv[] = {name, nullptr};
    app = std::make_unique<QGuiApplication>(argc, argv);
  }
  auto r = lumen::report::renderReportPdf(*content);
  if (!r) {
    *error = r.error().toString();
    return 1;
  }
  *pdf = std::move(r.value());
  return 0;
}
