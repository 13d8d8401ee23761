#pragma once
// The report dialog: the reader types findings and impression, picks key images from the
// views as they are rendered (overlays included), sees the report as it will print, and
// saves it as PDF; the PDF is also stored in the study as Encapsulated PDF.

#include <QDialog>
#include <QImage>

#include <functional>
#include <memory>
#include <vector>

#include "ReportContent.h"
#include "ViewModel.h"

class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QTextBrowser;
class QTimer;

namespace lumen::gui {

class ReportDialog : public QDialog {
  Q_OBJECT
 public:
  struct Inputs {
    std::shared_ptr<LoadedSeries> series;
    std::vector<report::Row> measurements, segments;
    std::vector<report::AiEntry> ai;  // classifications made on the series
    std::function<QImage()> grabView;       // the active view as the reader sees it
    std::function<QString()> viewCaption;   // what it shows ("Image 12 of 24, axial")
    QString reportsDir;                     // where the Encapsulated PDFs are kept
    QString institution, logo, reader;      // remembered between reports
  };
  explicit ReportDialog(Inputs inputs, QWidget* parent = nullptr);

  void addKeyImage(const QImage& image, const QString& caption);
  void addCurrentView();
  void setFindings(const QString& text);
  void setImpression(const QString& text);
  void setReader(const QString& name);
  void setInstitution(const QString& name, const QString& logo);
  QString institution() const;
  QString logo() const;
  QString reader() const;
  int keyImageCount() const { return static_cast<int>(keys_.size()); }

  /// Writes the PDF to `path` and, for a DICOM series, its Encapsulated PDF into the
  /// reports folder (announced by stored()). False with `error` when either fails.
  bool savePdf(const QString& path, QString* error);
  /// The report as it is now (what the preview shows).
  report::ReportContent content() const;

 signals:
  /// An Encapsulated PDF of the study was written here: it belongs in the study database.
  void stored(const QString& dicomFile);
  void message(const QString& text);

 private:
  void updatePreview();

  Inputs in_;
  std::vector<std::pair<QImage, QString>> keys_;
  QLineEdit* institution_ = nullptr;
  QLineEdit* logo_ = nullptr;
  QLineEdit* reader_ = nullptr;
  QPlainTextEdit* findings_ = nullptr;
  QPlainTextEdit* impression_ = nullptr;
  QListWidget* keyList_ = nullptr;
  QTextBrowser* preview_ = nullptr;
  QTimer* previewTimer_ = nullptr;
};

}  // namespace lumen::gui
