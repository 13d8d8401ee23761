#pragma once
// A result that is not an image, opened from the browser or a file: a structured report
// (Lumen's TID 1500 or another system's) rendered as text, or an Encapsulated PDF report
// shown page by page, with Save PDF... to take it out.

#include <QDialog>
#include <QString>

class QPdfDocument;
class QPdfView;
class QTextBrowser;

namespace lumen::gui {

class ResultViewer : public QDialog {
  Q_OBJECT
 public:
  /// Opens `file` (an SR or an Encapsulated PDF); null, with the reason, when it cannot be shown.
  static ResultViewer* open(const QString& file, QWidget* parent, QString* error);
  /// Whether `file` is one of these (read from its header; false for images, SEG, unreadable files).
  static bool handles(const QString& file);

  /// PDF: its pages (0 for a structured report).
  int pageCount() const;
  /// Structured report: its text as shown (empty for a PDF).
  QString text() const;
  /// Writes the PDF (durably) to `path`; false with the reason.
  bool savePdf(const QString& path, QString* error) const;

 private:
  explicit ResultViewer(QWidget* parent);
  QByteArray pdfBytes_;
  QPdfDocument* pdf_ = nullptr;
  QPdfView* pdfView_ = nullptr;
  QTextBrowser* text_ = nullptr;
};

}  // namespace lumen::gui
