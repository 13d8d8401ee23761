#include "DeidDialog.h"

#include <cmath>

#include <QCheckBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMetaObject>
#include <QPlainTextEdit>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include "lumen/imaging/Deidentify.h"

namespace lumen::gui {

DeidDialog::DeidDialog(QStringList inputs, const QString& what, QWidget* parent)
    : QDialog(parent), inputs_(std::move(inputs)) {
  setWindowTitle("Export de-identified");
  setObjectName("DeidDialog");
  resize(640, 560);
  auto* intro = new QLabel(QString("<b>%1</b>: %2 file(s), de-identified by the Basic Application Level "
                                   "Confidentiality Profile of DICOM PS3.15 (Table E.1-1). UIDs and pseudonyms come "
                                   "from the project key, so exports made with one key stay consistent.")
                               .arg(what.toHtmlEscaped())
                               .arg(inputs_.size()));
  intro->setWordWrap(true);
  key_ = new QLineEdit;
  key_->setObjectName("DeidKey");
  auto* browseKey = new QPushButton("Browse...");
  auto* newKey = new QPushButton("New key...");
  auto* keyRow = new QHBoxLayout;
  keyRow->addWidget(key_, 1);
  keyRow->addWidget(browseKey);
  keyRow->addWidget(newKey);
  out_ = new QLineEdit;
  out_->setObjectName("DeidOutput");
  auto* browseOut = new QPushButton("Browse...");
  auto* outRow = new QHBoxLayout;
  outRow->addWidget(out_, 1);
  outRow->addWidget(browseOut);
  auto* form = new QFormLayout;
  form->addRow("Project key", keyRow);
  form->addRow("Output folder", outRow);
  const std::pair<const char*, const char*> names[] = {
      {"retain-longitudinal-modified-dates", "Retain longitudinal temporal information (dates shifted per patient)"},
      {"retain-patient-characteristics", "Retain patient characteristics (sex, age, size, weight)"},
      {"clean-descriptors", "Clean descriptors (keep descriptions, identifying words removed)"},
      {"retain-device-identity", "Retain device identity"},
      {"retain-safe-private", "Retain safe private attributes (declared safe by the file, or in PS3.15 Table E.3.10-1)"}};
  auto* optionsBox = new QVBoxLayout;
  for (const auto& [name, text] : names) {
    auto* c = new QCheckBox(text);
    c->setObjectName(QString("DeidOption-") + name);
    options_.emplace_back(name, c);
    optionsBox->addWidget(c);
  }
  burnedIn_ = new QCheckBox("Also export images that may show the patient's name in their pixels "
                            "(burned-in annotation flagged, and US, SC, XC): check them first");
  burnedIn_->setObjectName("DeidBurnedIn");
  progress_ = new QProgressBar;
  progress_->setRange(0, 1000);
  progress_->setValue(0);
  result_ = new QPlainTextEdit;
  result_->setObjectName("DeidResult");
  result_->setReadOnly(true);
  auto* buttons = new QDialogButtonBox;
  export_ = buttons->addButton("Export", QDialogButtonBox::AcceptRole);
  export_->setObjectName("DeidExport");
  cancel_ = buttons->addButton("Cancel export", QDialogButtonBox::ActionRole);
  cancel_->setEnabled(false);
  auto* close = buttons->addButton(QDialogButtonBox::Close);

  auto* l = new QVBoxLayout(this);
  l->addWidget(intro);
  l->addLayout(form);
  l->addWidget(new QLabel("Options"));
  l->addLayout(optionsBox);
  l->addWidget(burnedIn_);
  l->addWidget(progress_);
  l->addWidget(result_, 1);
  l->addWidget(buttons);

  connect(browseKey, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, "Project key");
    if (!f.isEmpty()) key_->setText(f);
  });
  connect(newKey, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, "New project key", "project.key");
    if (f.isEmpty()) return;
    if (auto st = deid::Key::create(f.toStdString()); !st)
      result_->setPlainText("error: " + QString::fromStdString(st.error().toString()));
    else {
      key_->setText(f);
      result_->setPlainText("Created the project key " + f + " (readable by you only). Keep it to export more data "
                            "consistently; never share it.");
    }
  });
  connect(browseOut, &QPushButton::clicked, this, [this] {
    const QString d = QFileDialog::getExistingDirectory(this, "Output folder");
    if (!d.isEmpty()) out_->setText(d);
  });
  connect(export_, &QPushButton::clicked, this, [this] { start(); });
  connect(cancel_, &QPushButton::clicked, this, [this] { cancelToken_.cancel(); });
  connect(close, &QPushButton::clicked, this, [this] {
    cancelToken_.cancel();
    reject();
  });
}

DeidDialog::~DeidDialog() { cancelToken_.cancel(); }

void DeidDialog::setKeyFile(const QString& path) { key_->setText(path); }
void DeidDialog::setOutputFolder(const QString& path) { out_->setText(path); }
bool DeidDialog::setOption(const std::string& name, bool on) {
  for (auto& [n, c] : options_)
    if (n == name) {
      c->setChecked(on);
      return true;
    }
  return false;
}
void DeidDialog::setAllowBurnedIn(bool on) { burnedIn_->setChecked(on); }
QString DeidDialog::resultText() const { return result_->toPlainText(); }

bool DeidDialog::start() {
  if (running_) return false;
  if (key_->text().trimmed().isEmpty() || out_->text().trimmed().isEmpty()) {
    result_->setPlainText("Choose the project key (or create one) and the output folder first.");
    return false;
  }
  auto key = deid::Key::load(key_->text().trimmed().toStdString());
  if (!key) {
    result_->setPlainText("error: " + QString::fromStdString(key.error().toString()));
    return false;
  }
  deid::Options options;
  for (const auto& [name, c] : options_)
    if (c->isChecked()) deid::setOption(options, name);
  options.allowBurnedIn = burnedIn_->isChecked();
  std::vector<std::filesystem::path> inputs;
  for (const auto& f : inputs_) inputs.emplace_back(f.toStdString());
  const std::filesystem::path out = out_->text().trimmed().toStdString();
  running_ = true;
  cancelToken_ = CancelToken{};
  export_->setEnabled(false);
  cancel_->setEnabled(true);
  result_->setPlainText("Exporting...");
  QPointer<DeidDialog> self(this);
  const CancelToken cancel = cancelToken_;
  Progress progress([self](double f, std::string_view) {
    if (std::isnan(f)) return;
    QMetaObject::invokeMethod(
        self, [self, f] { if (self) self->progress_->setValue(static_cast<int>(f * 1000)); }, Qt::QueuedConnection);
  });
  (void)QtConcurrent::run([self, inputs, out, k = *key, options, progress, cancel] {
    auto r = deid::deidentifyInputs(inputs, out, k, options, progress, cancel);
    QMetaObject::invokeMethod(
        self,
        [self, r] {
          if (!self) return;
          self->running_ = false;
          self->export_->setEnabled(true);
          self->cancel_->setEnabled(false);
          if (!r) {
            self->result_->setPlainText(r.error().code == ErrorCode::Cancelled
                                            ? "Cancelled: the files written so far are in the folder, without a log."
                                            : "error: " + QString::fromStdString(r.error().toString()));
            emit self->exportFinished(0, 0, -1);
            return;
          }
          self->progress_->setValue(1000);
          QString text = QString("De-identified %1 file(s); %2 refused, %3 failed.\nLog (no patient data): %4")
                             .arg(r->deidentified)
                             .arg(r->refused)
                             .arg(r->failed)
                             .arg(QString::fromStdString(r->log.string()));
          for (const auto& p : r->problems) text += "\n" + QString::fromStdString(p);
          self->result_->setPlainText(text);
          emit self->exportFinished(static_cast<int>(r->deidentified), static_cast<int>(r->refused),
                                    static_cast<int>(r->failed));
        },
        Qt::QueuedConnection);
  });
  return true;
}

}  // namespace lumen::gui
