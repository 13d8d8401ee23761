#include "ReportDialog.h"

#include <QDateTime>
#include <QIcon>
#include <QPixmap>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSplitter>
#include <QTextBrowser>
#include <QTimer>
#include <QUrl>
#include <QVBoxLayout>

#include <cstring>

#include "ReportPdf.h"
#include "lumen/core/DurableFile.h"
#include "lumen/imaging/DicomPdf.h"
#include "lumen/imaging/DicomSeg.h"

namespace lumen::gui {

namespace {

report::RgbImage toRgb(const QImage& image, const QString& caption) {
  const QImage rgb = image.convertToFormat(QImage::Format_RGB888);
  report::RgbImage out;
  out.width = rgb.width();
  out.height = rgb.height();
  out.rgb.resize(static_cast<std::size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y)
    std::memcpy(&out.rgb[static_cast<std::size_t>(y) * out.width * 3], rgb.constScanLine(y), static_cast<std::size_t>(out.width) * 3);
  out.caption = caption.toStdString();
  return out;
}

}  // namespace

ReportDialog::ReportDialog(Inputs inputs, QWidget* parent) : QDialog(parent), in_(std::move(inputs)) {
  setWindowTitle("Report");
  setObjectName("ReportDialog");
  resize(1100, 800);
  auto* form = new QFormLayout;
  institution_ = new QLineEdit(in_.institution);
  institution_->setObjectName("ReportInstitution");
  logo_ = new QLineEdit(in_.logo);
  logo_->setObjectName("ReportLogo");
  logo_->setPlaceholderText("PNG or JPEG (optional)");
  auto* browse = new QPushButton("Browse...");
  auto* logoRow = new QHBoxLayout;
  logoRow->addWidget(logo_, 1);
  logoRow->addWidget(browse);
  reader_ = new QLineEdit(in_.reader);
  reader_->setObjectName("ReportReader");
  reader_->setPlaceholderText("Family^Given");
  form->addRow("Institution", institution_);
  form->addRow("Logo", logoRow);
  form->addRow("Reader", reader_);
  findings_ = new QPlainTextEdit;
  findings_->setObjectName("ReportFindings");
  impression_ = new QPlainTextEdit;
  impression_->setObjectName("ReportImpression");
  impression_->setMaximumHeight(110);
  keyList_ = new QListWidget;
  keyList_->setObjectName("ReportKeyImages");
  keyList_->setViewMode(QListView::IconMode);
  keyList_->setIconSize(QSize(120, 120));
  keyList_->setMaximumHeight(170);
  auto* addView = new QPushButton("Add current view");
  addView->setObjectName("ReportAddView");
  addView->setToolTip("The active view as it is shown now, overlays and measurements included");
  auto* remove = new QPushButton("Remove");
  auto* keyButtons = new QHBoxLayout;
  keyButtons->addWidget(addView);
  keyButtons->addWidget(remove);
  keyButtons->addStretch();

  auto* left = new QWidget;
  auto* l = new QVBoxLayout(left);
  l->addLayout(form);
  l->addWidget(new QLabel("Findings"));
  l->addWidget(findings_, 2);
  l->addWidget(new QLabel("Impression"));
  l->addWidget(impression_, 1);
  l->addWidget(new QLabel("Key images"));
  l->addWidget(keyList_);
  l->addLayout(keyButtons);
  preview_ = new QTextBrowser;
  preview_->setObjectName("ReportPreview");
  // Paper, whatever the window's theme: the preview shows the page as it will print.
  preview_->setStyleSheet("QTextBrowser { background: white; color: black; }");
  auto* split = new QSplitter;
  split->addWidget(left);
  split->addWidget(preview_);
  split->setStretchFactor(1, 1);
  auto* buttons = new QDialogButtonBox;
  auto* save = buttons->addButton("Save PDF...", QDialogButtonBox::AcceptRole);
  save->setObjectName("ReportSave");
  buttons->addButton(QDialogButtonBox::Close);
  auto* main = new QVBoxLayout(this);
  main->addWidget(split, 1);
  main->addWidget(buttons);

  previewTimer_ = new QTimer(this);
  previewTimer_->setSingleShot(true);
  previewTimer_->setInterval(300);
  connect(previewTimer_, &QTimer::timeout, this, &ReportDialog::updatePreview);
  for (auto* e : {institution_, logo_, reader_})
    connect(e, &QLineEdit::textChanged, previewTimer_, qOverload<>(&QTimer::start));
  for (auto* e : {findings_, impression_}) connect(e, &QPlainTextEdit::textChanged, previewTimer_, qOverload<>(&QTimer::start));
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, "Institution logo", {}, "Images (*.png *.jpg *.jpeg)");
    if (!f.isEmpty()) logo_->setText(f);
  });
  connect(addView, &QPushButton::clicked, this, &ReportDialog::addCurrentView);
  connect(remove, &QPushButton::clicked, this, [this] {
    const int row = keyList_->currentRow();
    if (row < 0) return;
    keys_.erase(keys_.begin() + row);
    delete keyList_->takeItem(row);
    updatePreview();
  });
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  connect(save, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, "Save report", "report.pdf", "PDF (*.pdf)");
    if (f.isEmpty()) return;
    QString error;
    if (!savePdf(f, &error)) emit message("error: " + error);
  });
  updatePreview();
}

void ReportDialog::addKeyImage(const QImage& image, const QString& caption) {
  if (image.isNull()) return;
  keys_.emplace_back(image, caption);
  auto* item = new QListWidgetItem(QIcon(QPixmap::fromImage(image.scaled(120, 120, Qt::KeepAspectRatio, Qt::SmoothTransformation))),
                                   caption);
  keyList_->addItem(item);
  updatePreview();
}

void ReportDialog::addCurrentView() {
  if (!in_.grabView) return;
  const QImage img = in_.grabView();
  if (img.isNull()) return emit message("note: no view to add");
  addKeyImage(img, in_.viewCaption ? in_.viewCaption() : QString());
}

void ReportDialog::setFindings(const QString& text) { findings_->setPlainText(text); }
void ReportDialog::setImpression(const QString& text) { impression_->setPlainText(text); }
void ReportDialog::setReader(const QString& name) { reader_->setText(name); }
void ReportDialog::setInstitution(const QString& name, const QString& logo) {
  institution_->setText(name);
  logo_->setText(logo);
}
QString ReportDialog::institution() const { return institution_->text(); }
QString ReportDialog::logo() const { return logo_->text(); }
QString ReportDialog::reader() const { return reader_->text(); }

report::ReportContent ReportDialog::content() const {
  report::ReportContent c;
  if (in_.series) report::describeSeries(c, in_.series->info);
  c.institution = institution_->text().toStdString();
  c.logoPath = logo_->text().trimmed().toStdString();
  c.reader = reader_->text().toStdString();
  c.date = QDateTime::currentDateTime().toString("yyyy-MM-dd HH:mm").toStdString();
  c.findings = findings_->toPlainText().toStdString();
  c.impression = impression_->toPlainText().toStdString();
  c.measurements = in_.measurements;
  c.segments = in_.segments;
  c.ai = in_.ai;
  for (const auto& [img, caption] : keys_) c.keyImages.push_back(toRgb(img, caption));
  return c;
}

void ReportDialog::updatePreview() {
  const auto c = content();
  auto* doc = preview_->document();
  for (std::size_t i = 0; i < keys_.size(); ++i)
    doc->addResource(QTextDocument::ImageResource, QUrl(QString("key%1").arg(i)), keys_[i].first);
  if (!c.logoPath.empty()) doc->addResource(QTextDocument::ImageResource, QUrl("logo"), QImage(QString::fromStdString(c.logoPath)));
  preview_->setHtml(QString::fromStdString(report::reportHtml(c)));
}

bool ReportDialog::savePdf(const QString& path, QString* error) {
  auto pdf = report::renderReportPdf(content());
  if (!pdf) {
    if (error) *error = QString::fromStdString(pdf.error().toString());
    return false;
  }
  if (auto st = writeFileDurably(path.toStdString(), *pdf); !st) {
    if (error) *error = QString::fromStdString(st.error().toString());
    return false;
  }
  if (!in_.series || !in_.series->segReference || in_.series->segReference->firstFile.empty()) {
    emit message("Saved the report to " + path + " (not stored in a study: the series is not DICOM)");
    return true;
  }
  dicom::EncapsulatedPdfOptions o;
  o.sourceSeriesNumber = in_.series->info.series.seriesNumber;
  o.softwareVersion = LUMEN_VERSION;
  QDir().mkpath(in_.reportsDir);
  const QString dicom = QDir(in_.reportsDir).filePath(
      QString("report-%1.dcm").arg(QDateTime::currentDateTimeUtc().toString("yyyyMMddTHHmmsszzz")));
  auto sop = dicom::writeEncapsulatedPdf(*pdf, in_.series->segReference->firstFile, o, dicom.toStdString());
  if (!sop) {
    if (error) *error = "the PDF was saved, but not stored in the study: " + QString::fromStdString(sop.error().toString());
    return false;
  }
  emit message("Saved the report to " + path + " and stored it in the study");
  emit stored(dicom);
  return true;
}

}  // namespace lumen::gui
