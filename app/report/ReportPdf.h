#pragma once
// The PDF of a report (Qt: QTextDocument laid out on QPdfWriter's A4 pages). Needs a
// QGuiApplication (the offscreen platform is enough).

#include <string>

#include "ReportContent.h"
#include "lumen/core/Result.h"

namespace lumen::report {

/// The report as PDF bytes.
Result<std::string> renderReportPdf(const ReportContent& content);

/// The report as HTML (what the PDF is laid out from; the workstation previews it).
std::string reportHtml(const ReportContent& content);

}  // namespace lumen::report
