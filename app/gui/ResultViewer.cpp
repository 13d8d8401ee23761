#include "ResultViewer.h"

#include <QBuffer>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QPdfDocument>
#include <QPdfView>
#include <QPushButton>
#include <QTextBrowser>
#include <QVBoxLayout>

#include <string_view>

#include "lumen/core/DurableFile.h"
#include "lumen/imaging/DicomFile.h"
#include "lumen/imaging/DicomPdf.h"
#include "lumen/imaging/DicomSr.h"

namespace lumen::gui {

namespace {
constexpr const char* kEncapsulatedPdf = "1.2.840.10008.5.1.4.1.1.104.1";
bool isStructuredReport(const std::string& sopClass) { return sopClass.rfind("1.2.840.10008.5.1.4.1.1.88.", 0) == 0; }
}  // namespace

bool ResultViewer::handles(const QString& file) {
  auto id = dicom::readFileIdentity(file.toStdString());
  return id && (id->sopClassUid == kEncapsulatedPdf || isStructuredReport(id->sopClassUid));
}

ResultViewer::ResultViewer(QWidget* parent) : QDialog(parent) {}

ResultViewer* ResultViewer::open(const QString& file, QWidget* parent, QString* error) {
  auto id = dicom::readFileIdentity(file.toStdString());
  if (!id) {
    if (error) *error = QString::fromStdString(id.error().toString());
    return nullptr;
  }
  auto* v = new ResultViewer(parent);
  v->setAttribute(Qt::WA_DeleteOnClose);
  auto* layout = new QVBoxLayout(v);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close, v);
  connect(buttons, &QDialogButtonBox::rejected, v, &QDialog::close);
  const QString series = QString::fromStdString(id->series.description);
  if (id->sopClassUid == kEncapsulatedPdf) {
    auto pdf = dicom::readEncapsulatedPdf(file.toStdString());
    if (!pdf) {
      if (error) *error = QString::fromStdString(pdf.error().toString());
      delete v;
      return nullptr;
    }
    v->pdfBytes_ = QByteArray::fromStdString(*pdf);
    auto* buffer = new QBuffer(v);  // its own (shared) copy: it outlives pdfBytes_ in teardown
    buffer->setData(v->pdfBytes_);
    buffer->open(QIODevice::ReadOnly);
    v->pdf_ = new QPdfDocument(v);
    v->pdf_->load(buffer);
    if (v->pdf_->status() != QPdfDocument::Status::Ready || v->pdf_->pageCount() < 1) {
      if (error) *error = file + ": the encapsulated PDF cannot be read";
      delete v;
      return nullptr;
    }
    v->pdfView_ = new QPdfView(v);
    v->pdfView_->setObjectName("ResultPdf");
    v->pdfView_->setDocument(v->pdf_);
    v->pdfView_->setPageMode(QPdfView::PageMode::MultiPage);
    v->pdfView_->setZoomMode(QPdfView::ZoomMode::FitToWidth);
    layout->addWidget(v->pdfView_, 1);
    auto* save = buttons->addButton("Save PDF...", QDialogButtonBox::ActionRole);
    save->setObjectName("SavePdf");
    connect(save, &QPushButton::clicked, v, [v, file] {
      const QString to = QFileDialog::getSaveFileName(v, "Save the report as PDF", QFileInfo(file).completeBaseName() + ".pdf",
                                                      "PDF (*.pdf)");
      QString why;
      if (!to.isEmpty() && !v->savePdf(to, &why)) v->setWindowTitle("Not saved: " + why);
    });
    v->setWindowTitle("Report (PDF): " + (series.isEmpty() ? QFileInfo(file).fileName() : series));
    v->resize(820, 1000);
  } else if (isStructuredReport(id->sopClassUid)) {
    auto html = dicom::renderStructuredReport(file.toStdString());
    if (!html) {
      if (error) *error = QString::fromStdString(html.error().toString());
      delete v;
      return nullptr;
    }
    v->text_ = new QTextBrowser(v);
    v->text_->setObjectName("ResultText");
    v->text_->setOpenLinks(false);  // its links point into the document or to files not here
    v->text_->setHtml(QString::fromStdString(*html));
    layout->addWidget(v->text_, 1);
    v->setWindowTitle("Structured report: " + (series.isEmpty() ? QFileInfo(file).fileName() : series));
    v->resize(820, 900);
  } else {
    if (error) *error = file + ": neither a structured report nor an Encapsulated PDF";
    delete v;
    return nullptr;
  }
  layout->addWidget(buttons);
  return v;
}

int ResultViewer::pageCount() const { return pdf_ ? pdf_->pageCount() : 0; }

QString ResultViewer::text() const { return text_ ? text_->toPlainText() : QString(); }

bool ResultViewer::savePdf(const QString& path, QString* error) const {
  if (pdfBytes_.isEmpty()) {
    if (error) *error = "this is not a PDF";
    return false;
  }
  const auto st = writeFileDurably(path.toStdString(), std::string_view(pdfBytes_.constData(), static_cast<std::size_t>(pdfBytes_.size())));
  if (!st && error) *error = QString::fromStdString(st.error().toString());
  return static_cast<bool>(st);
}

}  // namespace lumen::gui
