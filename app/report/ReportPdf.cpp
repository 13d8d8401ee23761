#include "ReportPdf.h"

#include <QAbstractTextDocumentLayout>
#include <QBuffer>
#include <QGuiApplication>
#include <QImage>
#include <QPageLayout>
#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QTextDocument>
#include <QUrl>

namespace lumen::report {

namespace {

QString esc(const std::string& s) { return QString::fromStdString(s).toHtmlEscaped(); }

// Text typed by the reader: paragraphs kept, nothing interpreted as markup.
QString paragraphs(const std::string& s) {
  QString out;
  for (const QString& p : QString::fromStdString(s).split('\n')) out += "<p>" + p.toHtmlEscaped() + "</p>";
  return out;
}

QString table(const std::vector<Row>& rows, const char* first, const char* second, const char* third) {
  QString h = QString("<table width='100%' cellspacing='0' cellpadding='4' border='1' style='border-collapse:collapse'>"
                      "<tr style='background:#e8e8e8'><th align='left'>%1</th><th align='left'>%2</th><th align='left'>%3</th></tr>")
                  .arg(first, second, third);
  for (const auto& r : rows) h += "<tr><td>" + esc(r.name) + "</td><td>" + esc(r.kind) + "</td><td>" + esc(r.value) + "</td></tr>";
  return h + "</table>";
}

}  // namespace

std::string reportHtml(const ReportContent& c) {
  QString h = "<html><body style='font-family:DejaVu Sans,sans-serif; font-size:10pt; color:black; background:white'>";
  h += "<table width='100%'><tr><td>";
  if (!c.logoPath.empty()) h += "<img src='logo' height='48'/>";
  h += "</td><td align='right'><b style='font-size:13pt'>" + esc(c.institution) + "</b></td></tr></table>";
  h += "<h2>" + esc(c.title) + "</h2>";
  h += "<table cellpadding='2'>";
  const auto line = [&](const char* k, const std::string& v) {
    if (!v.empty()) h += QString("<tr><td><b>%1</b></td><td>%2</td></tr>").arg(k, esc(v));
  };
  line("Patient", personName(c.patientName));
  line("Patient ID", c.patientId);
  line("Birth date", isoDate(c.birthDate));
  line("Sex", c.sex);
  line("Study", c.studyDescription);
  line("Study date", isoDate(c.studyDate));
  line("Accession", c.accession);
  line("Series", (c.modality.empty() ? "" : c.modality + " ") + c.seriesDescription);
  h += "</table>";
  if (!c.findings.empty()) h += "<h3>Findings</h3>" + paragraphs(c.findings);
  if (!c.impression.empty()) h += "<h3>Impression</h3>" + paragraphs(c.impression);
  if (!c.measurements.empty()) h += "<h3>Measurements</h3>" + table(c.measurements, "Measurement", "Kind", "Value");
  if (!c.segments.empty()) h += "<h3>Segmentations</h3>" + table(c.segments, "Segment", "Source", "Volume and intensity");
  if (!c.ai.empty()) {
    h += "<h3>AI results</h3>";
    for (const auto& a : c.ai) {
      h += "<p><b>" + esc(a.model) + "</b> " + esc(a.version) + ": " + esc(a.result) + "<br/><small>SHA-256 " + esc(a.sha256) +
           (a.device.empty() ? QString() : ", run on " + esc(a.device)) + "</small></p>";
      if (!a.disclaimer.empty()) h += "<p><i>" + esc(a.disclaimer) + "</i></p>";
    }
  }
  if (!c.keyImages.empty()) {
    h += "<h3 style='page-break-before:always'>Key images</h3><table cellpadding='4'>";
    for (std::size_t i = 0; i < c.keyImages.size(); ++i) {
      if (i % 2 == 0) h += "<tr>";
      h += QString("<td align='center' valign='top'><img src='key%1' width='300'/><br/>%2</td>")
               .arg(i)
               .arg(esc(c.keyImages[i].caption));
      if (i % 2 == 1 || i + 1 == c.keyImages.size()) h += "</tr>";
    }
    h += "</table>";
  }
  h += "<p style='margin-top:18px'>";
  if (!c.reader.empty()) h += "Reported by <b>" + esc(personName(c.reader)) + "</b>";
  if (!c.date.empty()) h += (c.reader.empty() ? "" : ", ") + esc(c.date);
  h += "</p><p><small>Made with Lumen, research software: not a medical device, not for diagnosis.</small></p>";
  h += "</body></html>";
  return h.toStdString();
}

Result<std::string> renderReportPdf(const ReportContent& c) {
  if (!QGuiApplication::instance()) return Error(ErrorCode::Internal, "a PDF needs a QGuiApplication");
  QTextDocument doc;
  if (!c.logoPath.empty()) {
    QImage logo(QString::fromStdString(c.logoPath));
    if (logo.isNull()) return Error(ErrorCode::NotFound, "not a readable PNG or JPEG image", c.logoPath);
    doc.addResource(QTextDocument::ImageResource, QUrl("logo"), logo);
  }
  for (std::size_t i = 0; i < c.keyImages.size(); ++i) {
    const auto& k = c.keyImages[i];
    if (k.width <= 0 || k.height <= 0 || k.rgb.size() != static_cast<std::size_t>(k.width) * k.height * 3)
      return Error(ErrorCode::InvalidArgument, "key image " + std::to_string(i + 1) + " is malformed");
    QImage img(k.rgb.data(), k.width, k.height, k.width * 3, QImage::Format_RGB888);
    doc.addResource(QTextDocument::ImageResource, QUrl(QString("key%1").arg(i)), img.copy());
  }
  doc.setHtml(QString::fromStdString(reportHtml(c)));

  QByteArray bytes;
  QBuffer buffer(&bytes);
  buffer.open(QIODevice::WriteOnly);
  {
    QPdfWriter writer(&buffer);
    writer.setPageSize(QPageSize(QPageSize::A4));
    writer.setPageMargins(QMarginsF(18, 18, 18, 18), QPageLayout::Millimeter);
    writer.setResolution(300);
    writer.setTitle(QString::fromStdString(c.title));
    writer.setCreator("Lumen");
    // The layout in the writer's own units, or text comes out tiny (see PLATFORM.md).
    doc.documentLayout()->setPaintDevice(&writer);
    doc.setPageSize(writer.pageLayout().paintRectPixels(writer.resolution()).size());
    doc.print(&writer);
  }
  if (bytes.isEmpty()) return Error(ErrorCode::Internal, "the PDF writer produced nothing");
  return std::string(bytes.constData(), static_cast<std::size_t>(bytes.size()));
}

}  // namespace lumen::report
