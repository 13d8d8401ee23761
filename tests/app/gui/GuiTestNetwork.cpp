// GUI tests: Query/retrieve, nodes, TLS, sending and receiving, against real peers on loopback.

#include "GuiTest.h"

// File > Query / Retrieve against a real PACS (Orthanc, started by tests/app/gui_pacs.py
// in a private network namespace): search a DIMSE and a DICOMweb node as a reader would,
// retrieve the study through each, find it in the database and the browser.
void GuiTest::queryAndRetrieveFromAPacs() {
  const QString study = qEnvironmentVariable("LUMEN_TEST_PACS_STUDY");
  if (study.isEmpty()) QSKIP("needs a PACS: run as the CTest test gui_pacs");
  const QString patientName = qEnvironmentVariable("LUMEN_TEST_PACS_PATIENT");  // e.g. DOE^JOHN
  // The nodes gui_pacs.py configured (main() points LUMEN_CONFIG_DIR at the test models').
  const ConfigDir config(qgetenv("LUMEN_TEST_PACS_CONFIG"));
  MainWindow* w = openWindow();
  QVERIFY(w);
  PacsDialog* d = w->showPacsDialog();
  QVERIFY(QTest::qWaitForWindowExposed(d));
  auto* node = d->findChild<QComboBox*>("node");
  auto* id = d->findChild<QLineEdit*>("patientId");
  auto* name = d->findChild<QLineEdit*>("patientName");
  auto* table = d->findChild<QTableWidget*>("results");
  auto* search = d->findChild<QPushButton*>("search");
  auto* retrieve = d->findChild<QPushButton*>("retrieve");
  QVERIFY(node && id && name && table && search && retrieve);
  QCOMPARE(node->count(), 2);  // the DIMSE node and the DICOMweb one
  for (int n = 0; n < 2; ++n) {
    node->setCurrentIndex(n);
    QSignalSpy done(d, &PacsDialog::searchFinished);
    id->setText("NO-SUCH-PATIENT");
    QTest::mouseClick(search, Qt::LeftButton);
    QVERIFY(done.wait(30000));
    QCOMPARE(done.takeFirst().at(0).toInt(), 0);
    QCOMPARE(table->rowCount(), 0);
    QVERIFY(!retrieve->isEnabled());
    id->clear();
    name->setText(patientName.section('^', 0, 0) + "*");  // the family name, as a reader types it
    QTest::mouseClick(search, Qt::LeftButton);
    QVERIFY(done.wait(30000));
    QCOMPARE(done.takeFirst().at(0).toInt(), 1);
    QCOMPARE(table->item(0, 0)->data(Qt::UserRole).toString(), study);
    QCOMPARE(table->item(0, 1)->text(), prettyName(patientName.toStdString()));  // as the browser shows it
    QCOMPARE(table->item(0, 7)->text(), QString("32"));
    table->selectRow(0);
    QVERIFY(retrieve->isEnabled());
    QSignalSpy fetched(w, &MainWindow::retrieveFinished);
    // The browser lists the study while it arrives: seen before the retrieve ends (C-GET
    // from Orthanc takes over a second for 32 instances; the list follows within 0.3 s).
    auto* tree = w->browser()->findChild<QTreeWidget*>();
    QVERIFY(tree);
    bool listedEarly = false;
    // Over DIMSE the reader also opens the series while it arrives (a double-click in the
    // browser): it is shown at once, grows in place and ends complete.
    auto* seriesList = w->browser()->findChild<QListWidget*>();
    QVERIFY(seriesList);
    bool opened = false;
    struct Shown {
      bool complete, retrieveOver, aiCanUse;
      int slices;
      double positionMm;
      WindowLevel wl;
    };
    std::vector<Shown> shown;
    SliceView* v = w->grid()->activeSliceView();
    const WindowLevel readersWindow{123.0, 456.0};
    double readersPositionMm = NAN, readersZoom = NAN;
    auto conn = connect(w, &MainWindow::seriesLoaded, this, [&](std::shared_ptr<LoadedSeries> s) {
      shown.push_back({s->complete, !fetched.isEmpty(), w->currentSeries() != nullptr,
                       static_cast<int>(s->volume->size()[2]), v->navigator().positionMm(), v->windowLevel()});
      // After the first picture the reader scrolls to its first slice and sets a window:
      // neither may change as the series grows.
      if (shown.size() == 1 && !s->complete) {
        v->setSliceIndex(0);
        v->setWindowLevel(readersWindow);
        v->zoomBy(1.5);
        readersPositionMm = v->navigator().positionMm();
        readersZoom = v->zoomPercent();
      }
    });
    QTimer poll;
    connect(&poll, &QTimer::timeout, this, [&] {
      if (fetched.isEmpty() && tree->topLevelItemCount() == 1) listedEarly = true;
      if (n == 0 && !opened && fetched.isEmpty() && seriesList->count() == 1) {
        opened = true;
        emit seriesList->itemDoubleClicked(seriesList->item(0));
      }
    });
    poll.start(20);
    QTest::mouseClick(retrieve, Qt::LeftButton);
    QCOMPARE(w->runningJobs(), 1);  // a job of its own, with progress and cancel
    QVERIFY(fetched.wait(120000));
    poll.stop();
    if (n == 0) {
      QVERIFY(listedEarly);
      QVERIFY(opened);
      QTRY_VERIFY_WITH_TIMEOUT(!shown.empty() && shown.back().complete, 30000);
      QVERIFY2(shown.size() >= 2, qPrintable(QString("%1 load(s)").arg(shown.size())));
      const Shown first = shown.front(), last = shown.back();
      // The first picture came before the retrieve ended, from part of the series, and
      // nothing could compute on it (the AI panel sees no series).
      QVERIFY(!first.retrieveOver);
      QVERIFY(!first.complete);
      QVERIFY(!first.aiCanUse);
      QVERIFY2(first.slices < 32, qPrintable(QString("%1 slices at first").arg(first.slices)));
      QCOMPARE(last.slices, 32);
      QVERIFY(last.aiCanUse);
      // The reader's place (in millimetres: the slice index may shift as slices arrive)
      // and window stayed.
      QVERIFY(std::isfinite(readersPositionMm));
      QVERIFY2(std::abs(last.positionMm - readersPositionMm) < 0.5 * v->navigator().stepMm(),
               qPrintable(QString("position %1 mm, was %2 mm").arg(last.positionMm).arg(readersPositionMm)));
      QCOMPARE(v->zoomPercent(), readersZoom);
      QCOMPARE(last.wl.width, readersWindow.width);
      QCOMPARE(last.wl.center, readersWindow.center);
      QCOMPARE(v->series()->volume->size()[2], std::size_t(32));
      // What is on screen at the end is the series, voxel for voxel.
      const Volume want = loadDicom(kSample);
      QCOMPARE(v->series()->volume->byteSize(), want.byteSize());
      QVERIFY(std::memcmp(v->series()->volume->bytes(), want.bytes(), want.byteSize()) == 0);
      QVERIFY(w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-pacs-growing.png"));
    }
    disconnect(conn);
    QVERIFY2(fetched.first().at(0).toBool(), qPrintable(fetched.first().at(2).toString()));
    QCOMPARE(fetched.first().at(1).toInt(), 32);
    QCOMPARE(w->runningJobs(), 0);
    auto db = db::StudyDatabase::open(dataDir_->path().toStdString());
    QVERIFY(db);
    auto instances = (*db)->instancesOfStudy(study.toStdString());
    QVERIFY(instances);
    QCOMPARE(instances->size(), std::size_t(32));
    QCOMPARE(tree->topLevelItemCount(), 1);
  }
  const QString out = QStringLiteral(LUMEN_TEST_WORK_DIR);
  QVERIFY(d->grab().save(out + "/gui-pacs-dialog.png"));
  QVERIFY(w->grab().save(out + "/gui-pacs-window.png"));
}

// A search of a node that never answers (it takes the connection, then says nothing) is
// stopped by the reader: the dialog is free at once and the search's worker ends too,
// long before the node's 30 s timeout would have ended it.
void GuiTest::aSearchOfASilentNodeCanBeStopped() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  QVERIFY(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  QVERIFY(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd, 8) == 0 &&
          ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  const int port = ntohs(a.sin_port);
  QTemporaryDir config;
  net::NodeConfig nodes;
  net::WebNode silent;
  silent.name = "silent";
  silent.baseUrl = "http://127.0.0.1:" + std::to_string(port) + "/dicom-web";
  nodes.web.push_back(silent);
  QVERIFY(net::saveNodes(config.path().toStdString() + "/nodes.json", nodes));
  const ConfigDir use(config.path().toUtf8());
  MainWindow* w = openWindow();
  QVERIFY(w);
  PacsDialog* d = w->showPacsDialog();
  auto* search = d->findChild<QPushButton*>("search");
  auto* stop = d->findChild<QPushButton*>("stopSearch");
  auto* status = d->findChild<QLabel*>("status");
  QVERIFY(search && stop && status);
  QVERIFY(!stop->isEnabled());
  QSignalSpy done(d, &PacsDialog::searchFinished);
  for (int round = 0; round < 2; ++round) {  // and a new search may start at once
    QTest::mouseClick(search, Qt::LeftButton);
    QVERIFY(!search->isEnabled());
    QVERIFY(stop->isEnabled());
    QTest::qWait(400);
    QCOMPARE(done.count(), round);  // the node is silent
    QTest::mouseClick(stop, Qt::LeftButton);
    QCOMPARE(done.count(), round + 1);
    QCOMPARE(done.last().at(0).toInt(), -1);
    QVERIFY(search->isEnabled());
    QVERIFY(!stop->isEnabled());
    QCOMPARE(status->text(), QString("Search stopped."));
  }
  QElapsedTimer t;
  t.start();
  QVERIFY(QThreadPool::globalInstance()->waitForDone(10000));
  QVERIFY2(t.elapsed() < 5000, qPrintable(QString("the stopped searches ended after %1 ms").arg(t.elapsed())));
  QTest::qWait(100);
  QCOMPARE(done.count(), 2);  // their late ends are not reported
  ::close(fd);
}

// The listener's DICOM TLS set in Nodes... (not only with `lumen-cli nodes local`): saved
// in the nodes file, checked before it is saved, and what File > Receive studies uses: a
// TLS caller is filed, a plain one refused.
void GuiTest::theListenersTlsIsSetInTheWorkstation() {
  if (QStandardPaths::findExecutable("storescu").isEmpty() || QStandardPaths::findExecutable("openssl").isEmpty())
    QSKIP("needs dcmtk's storescu and openssl");
  QTemporaryDir config;
  const QString cert = config.path() + "/server.crt", key = config.path() + "/server.key";
  QProcess openssl;
  openssl.start("openssl", {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                            "-subj", "/CN=127.0.0.1"});
  QVERIFY(openssl.waitForFinished(60000) && openssl.exitCode() == 0);
  net::NodeConfig nodes;
  nodes.local.aeTitle = "LUMENTLS";
  nodes.local.port = freeLoopbackPort();
  nodes.local.minFreeMegabytes = 0;
  QVERIFY(net::saveNodes(config.path().toStdString() + "/nodes.json", nodes));
  const ConfigDir use(config.path().toUtf8());
  MainWindow* w = openWindow();
  QVERIFY(w);
  auto* d = new NodesDialog(w);
  d->show();
  auto* certField = d->findChild<QLineEdit*>("localTlsCert");
  auto* keyField = d->findChild<QLineEdit*>("localTlsKey");
  auto* save = d->findChild<QPushButton*>("saveLocal");
  auto* status = d->findChild<QLabel*>("status");
  QVERIFY(certField && keyField && save && status);
  QVERIFY(certField->text().isEmpty());
  // A certificate without its key is refused, and nothing is saved.
  certField->setText(cert);
  QTest::mouseClick(save, Qt::LeftButton);
  QVERIFY2(status->text().startsWith("DICOM TLS:"), qPrintable(status->text()));
  QVERIFY(!net::loadNodes(config.path().toStdString() + "/nodes.json")->local.tls);
  keyField->setText(config.path() + "/no-such.key");  // and a key that is not there
  QTest::mouseClick(save, Qt::LeftButton);
  QVERIFY2(status->text().contains("cannot read"), qPrintable(status->text()));
  QVERIFY(!net::loadNodes(config.path().toStdString() + "/nodes.json")->local.tls);
  keyField->setText(key);
  QTest::mouseClick(save, Qt::LeftButton);
  auto saved = net::loadNodes(config.path().toStdString() + "/nodes.json");
  QVERIFY(saved && saved->local.tls);
  QCOMPARE(QString::fromStdString(saved->local.tls->certFile), cert);
  QCOMPARE(QString::fromStdString(saved->local.tls->keyFile), key);
  QVERIFY(saved->local.tls->caFile.empty());
  QCOMPARE(QString::fromStdString(saved->local.aeTitle), QString("LUMENTLS"));  // the rest kept
  QVERIFY(w->setReceiving(true));
  QVERIFY(w->receiver()->describe().contains("(TLS)"));
  const QString file = QDir(kSample).entryList(QDir::Files, QDir::Name).first();
  const auto storescu = [&](const QStringList& tls) {
    QProcess p;
    p.start("storescu", tls + QStringList{"-aec", "LUMENTLS", "127.0.0.1", QString::number(nodes.local.port), kSample + "/" + file});
    p.waitForFinished(60000);
    return p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
  };
  QVERIFY(!storescu({}));  // plain DICOM: refused
  QVERIFY(storescu({"+tla", "+cf", cert}));
  QTRY_COMPARE_WITH_TIMEOUT(w->receiver()->received(), quint64(1), 10000);
  QVERIFY(w->setReceiving(false));
  // Cleared: the listener speaks plain DICOM again.
  certField->clear();
  keyField->clear();
  QTest::mouseClick(save, Qt::LeftButton);
  QVERIFY(!net::loadNodes(config.path().toStdString() + "/nodes.json")->local.tls);
  QThreadPool::globalInstance()->waitForDone();
}

// Nodes added, tested and removed in the workstation land in the same file lumen-cli
// reads, private to the user, with the password never shown.
void GuiTest::nodesAreEditedInTheWorkstation() {
  QTemporaryDir config;
  const ConfigDir use(config.path().toUtf8());
  MainWindow* w = openWindow();
  QVERIFY(w);
  PacsDialog* pacs = w->showPacsDialog();
  QCOMPARE(pacs->findChild<QComboBox*>("node")->count(), 0);
  QTest::mouseClick(pacs->findChild<QPushButton*>("editNodes"), Qt::LeftButton);
  auto* d = pacs->findChild<NodesDialog*>();
  QVERIFY(d);
  QVERIFY(QTest::qWaitForWindowExposed(d));
  const auto edit = [d](const char* name) { return d->findChild<QLineEdit*>(name); };
  auto* list = d->findChild<QListWidget*>("nodes");
  auto* status = d->findChild<QLabel*>("status");
  auto* add = d->findChild<QPushButton*>("add");
  // A DIMSE node; a bad AE title first.
  QTest::keyClicks(edit("name"), "pacs");
  QTest::keyClicks(edit("aeTitle"), "MUCH_TOO_LONG_AE_TITLE");
  QTest::keyClicks(edit("host"), "127.0.0.1");
  d->findChild<QSpinBox*>("port")->setValue(4999);  // nobody listens there
  QTest::mouseClick(add, Qt::LeftButton);
  QVERIFY(status->text().contains("1 to 16 characters"));
  QCOMPARE(list->count(), 0);
  edit("aeTitle")->setText("ORTHANC");
  QTest::mouseClick(add, Qt::LeftButton);
  QCOMPARE(list->count(), 1);
  // A DICOMweb node with basic auth.
  d->findChild<QComboBox*>("kind")->setCurrentIndex(1);
  edit("name")->setText("web");
  QTest::keyClicks(edit("url"), "https://pacs.example.org/dicom-web");
  d->findChild<QComboBox*>("auth")->setCurrentText("basic");
  QTest::keyClicks(edit("user"), "reader");
  QTest::keyClicks(edit("secret"), "s3cret-pw");
  QVERIFY(edit("secret")->displayText() != "s3cret-pw");  // typed in a password field
  QTest::mouseClick(add, Qt::LeftButton);
  QCOMPARE(list->count(), 2);
  for (int i = 0; i < list->count(); ++i) QVERIFY(!list->item(i)->text().contains("s3cret"));
  QVERIFY(!status->text().contains("s3cret"));
  // The same file lumen-cli uses: readable by the user only, with both nodes.
  const std::string file = (config.path() + "/nodes.json").toStdString();
  auto cfg = net::loadNodes(file);
  QVERIFY(cfg);
  QCOMPARE(cfg->dimse.size(), std::size_t(1));
  QCOMPARE(cfg->dimse[0].port, 4999);
  QVERIFY(cfg->findWeb("web") && cfg->findWeb("web")->password == "s3cret-pw");
  namespace fs = std::filesystem;
  QCOMPARE(fs::status(file).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  QCOMPARE(pacs->findChild<QComboBox*>("node")->count(), 2);  // Query / Retrieve sees them at once
  // Test: nobody answers on that port, and the message says so.
  list->setCurrentRow(0);
  QSignalSpy tested(d, &NodesDialog::testFinished);
  QTest::mouseClick(d->findChild<QPushButton*>("test"), Qt::LeftButton);
  QVERIFY(tested.wait(30000));
  QVERIFY(!tested.first().at(0).toBool());
  QVERIFY2(tested.first().at(1).toString().contains("refused"), qPrintable(tested.first().at(1).toString()));
  // Remove.
  list->setCurrentRow(0);
  QTest::mouseClick(d->findChild<QPushButton*>("remove"), Qt::LeftButton);
  QCOMPARE(list->count(), 1);
  QCOMPARE(net::loadNodes(file)->dimse.size(), std::size_t(0));
  QCOMPARE(pacs->findChild<QComboBox*>("node")->count(), 1);
  // This workstation's identity: a bad AE title is refused, a good one saved.
  edit("localAe")->setText("BACK\\SLASH");
  QTest::mouseClick(d->findChild<QPushButton*>("saveLocal"), Qt::LeftButton);
  QVERIFY(status->text().contains("backslash"));
  edit("localAe")->setText("READING1");
  d->findChild<QSpinBox*>("localPort")->setValue(11999);
  edit("localAllow")->setText("PACS, CT1");
  edit("localBind")->setText("localhost");  // a listen address the listener could not honour
  QTest::mouseClick(d->findChild<QPushButton*>("saveLocal"), Qt::LeftButton);
  QVERIFY2(status->text().contains("Listen address localhost: not an IPv4 address"), qPrintable(status->text()));
  QCOMPARE(QString::fromStdString(net::loadNodes(file)->local.aeTitle), QString("LUMEN"));  // nothing saved
  edit("localBind")->setText("127.0.0.1");
  QTest::mouseClick(d->findChild<QPushButton*>("saveLocal"), Qt::LeftButton);
  auto local = net::loadNodes(file)->local;
  QCOMPARE(QString::fromStdString(local.bindAddress), QString("127.0.0.1"));
  QCOMPARE(QString::fromStdString(local.aeTitle), QString("READING1"));
  QCOMPARE(local.port, 11999);
  QCOMPARE(local.allowedAe, (std::vector<std::string>{"PACS", "CT1"}));
  QVERIFY(d->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-nodes-dialog.png"));
}

// File > Send to node: the series selected in the browser goes to a DICOM node (here a
// second study database behind Lumen's own listener on loopback) as JPEG-LS, as a job
// with progress; the node holds every instance, re-encoded, with the same voxels.
void GuiTest::sendsASeriesToANodeLosslesslyCompressed() {
  QTemporaryDir peerDir, config;
  auto peerDb = db::StudyDatabase::open(peerDir.path().toStdString());
  QVERIFY(peerDb);
  net::InstanceFiler filer(**peerDb);
  net::LocalNode peer;
  peer.aeTitle = "PEER";
  peer.port = freeLoopbackPort();
  peer.minFreeMegabytes = 0;
  QVERIFY(peer.port > 0);
  auto server = net::StorageServer::start(peer, filer);
  QVERIFY2(server, server ? "" : server.error().toString().c_str());
  net::NodeConfig nodes;
  nodes.dimse.push_back(net::DimseNode{"peer", "PEER", "127.0.0.1", peer.port, std::nullopt});
  QVERIFY(net::saveNodes(config.path().toStdString() + "/nodes.json", nodes));
  const ConfigDir use(config.path().toUtf8());

  MainWindow* w = openWindow();
  QVERIFY(!w->showSendDialog());  // nothing open, nothing selected: said so
  QVERIFY(w->messages().last().contains("to send it"));
  QSignalSpy imported(w->browser(), &StudyBrowser::importFinished);
  w->browser()->importPaths({kCorpus + "/phantom/box"}, false);
  QVERIFY(imported.wait(30000));
  QVERIFY(load(w, {kCorpus + "/phantom/box"}));
  w->browser()->selectStudy(0);
  w->browser()->selectSeries(0);
  QVERIFY(w->browser()->selectedSeries());
  const std::string seriesUid = w->browser()->selectedSeries()->info.seriesInstanceUid;
  SendDialog* d = w->showSendDialog();
  QVERIFY(d);
  QVERIFY(QTest::qWaitForWindowExposed(d));
  auto* what = d->findChild<QComboBox*>("SendWhat");
  QCOMPARE(what->count(), 3);  // the selected series, the series on screen, its study
  QVERIFY(what->itemText(0).startsWith("Selected series: "));
  QVERIFY(what->itemText(0).contains("(24 files)"));
  QVERIFY(d->selectNode("peer"));
  QVERIFY(!d->selectCompression("jpeg-lossy"));
  QVERIFY(d->selectCompression("jpeg-ls"));
  QVERIFY(d->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-send-dialog.png"));  // for a person to look at
  QSignalSpy sent(w, &MainWindow::sendFinished);
  QTest::mouseClick(d->findChild<QPushButton*>("SendButton"), Qt::LeftButton);
  QCOMPARE(w->runningJobs(), 1);  // a job of its own, with progress and cancel
  QVERIFY(sent.wait(60000));
  QVERIFY2(sent.first().at(0).toBool(), qPrintable(sent.first().at(2).toString()));
  QCOMPARE(sent.first().at(1).toInt(), 24);
  QVERIFY(sent.first().at(2).toString().contains("as jpeg-ls"));
  auto rows = (*peerDb)->instancesOfSeries(seriesUid);
  QVERIFY(rows);
  QCOMPARE(rows->size(), std::size_t(24));
  std::vector<std::filesystem::path> received;
  for (const auto& r : *rows) {
    auto info = dicom::readFileInfo(r.path);
    QVERIFY(info);
    QCOMPARE(QString::fromStdString(info->transferSyntaxUid), QString("1.2.840.10008.1.2.4.80"));  // JPEG-LS lossless
    received.emplace_back(r.path);
  }
  auto scan = dicom::scanInputs(received, {});
  QVERIFY(scan);
  auto plans = dicom::planVolumes(*scan);
  QCOMPARE(plans.size(), std::size_t(1));
  auto got = dicom::loadVolume(*scan, plans.front());
  QVERIFY(got);
  const Volume want = loadDicom(kCorpus + "/phantom/box");
  QCOMPARE(got->byteSize(), want.byteSize());
  QVERIFY(std::memcmp(got->bytes(), want.bytes(), want.byteSize()) == 0);  // bit for bit
}

// File > Receive studies: the workstation's own listener (off until asked for) files what
// a PACS sends, and the browser lists it as it arrives: a partial series with its count,
// then the whole one, the reader's selection kept; callers not on the allow-list are
// turned away.
void GuiTest::receivesStudiesAndListsThemAsTheyArrive() {
  if (QStandardPaths::findExecutable("storescu").isEmpty()) QSKIP("dcmtk's storescu is not installed");
  QTemporaryDir config;
  net::NodeConfig nodes;
  nodes.local.aeTitle = "LUMENGUI";
  nodes.local.port = freeLoopbackPort();
  nodes.local.minFreeMegabytes = 0;
  nodes.local.allowedAe = {"SENDER"};
  QVERIFY(nodes.local.port > 0);
  QVERIFY(net::saveNodes(config.path().toStdString() + "/nodes.json", nodes));
  const ConfigDir use(config.path().toUtf8());
  MainWindow* w = openWindow();
  auto* action = w->findChild<QAction*>("ReceiveAction");
  QVERIFY(action);
  QVERIFY(!action->isChecked());
  QVERIFY(!w->receiver());  // nothing listens unless asked
  action->trigger();
  QVERIFY(action->isChecked());
  QVERIFY(w->receiver() && w->receiver()->running());
  QVERIFY(w->messages().last().contains(QString("Receiving as LUMENGUI on port %1 (allow-list)").arg(nodes.local.port)));
  QCOMPARE(w->browser()->studyCount(), 0);
  QStringList files;
  for (const auto& f : QDir(kCorpus + "/phantom/box").entryList(QDir::Files, QDir::Name)) files << kCorpus + "/phantom/box/" + f;
  QCOMPARE(files.size(), 24);
  const auto storescu = [&](const QString& callingAe, const QStringList& send) {
    QProcess p;
    p.start("storescu", QStringList{"-aet", callingAe, "-aec", "LUMENGUI", "127.0.0.1", QString::number(nodes.local.port)} + send);
    p.waitForFinished(60000);
    return p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
  };
  // Not on the allow-list: refused, nothing filed.
  QVERIFY(!storescu("INTRUDER", files.mid(0, 1)));
  QTest::qWait(800);
  QCOMPARE(w->browser()->studyCount(), 0);
  auto* seriesList = w->browser()->findChild<QListWidget*>();
  QVERIFY(seriesList);
  QVERIFY(storescu("SENDER", files.mid(0, 5)));
  QTRY_COMPARE_WITH_TIMEOUT(w->browser()->studyCount(), 1, 10000);  // no refresh asked for
  QTRY_COMPARE_WITH_TIMEOUT(seriesList->count(), 1, 10000);
  QTRY_VERIFY_WITH_TIMEOUT(seriesList->item(0)->text().endsWith("5 image(s)"), 10000);
  QTest::qWait(500);  // the thumbnail of the first 5 instances is in place
  const qint64 iconOfFirst = seriesList->item(0)->icon().cacheKey();
  w->browser()->selectSeries(0);
  QVERIFY(w->browser()->selectedSeries());
  const std::string uid = w->browser()->selectedSeries()->info.seriesInstanceUid;
  // The reader opens the series with its first 5 instances; it grows on screen as the
  // rest arrives, and is complete once the listener has been quiet for a while.
  std::vector<std::pair<bool, std::size_t>> loads;  // complete, slices
  auto conn = connect(w, &MainWindow::seriesLoaded, this,
                      [&](std::shared_ptr<LoadedSeries> s) { loads.emplace_back(s->complete, s->volume->size()[2]); });
  emit seriesList->itemDoubleClicked(seriesList->item(0));
  QTRY_VERIFY_WITH_TIMEOUT(!loads.empty(), 10000);
  QCOMPARE(loads.front().second, std::size_t(5));
  QVERIFY(storescu("SENDER", files.mid(5)));
  QTRY_VERIFY_WITH_TIMEOUT(seriesList->item(0)->text().endsWith("24 image(s)"), 10000);
  // The series more than doubled: its thumbnail is made again from the instances now in.
  QTRY_VERIFY_WITH_TIMEOUT(seriesList->item(0)->icon().cacheKey() != iconOfFirst, 10000);
  QVERIFY(w->browser()->selectedSeries());  // still the reader's selection
  QCOMPARE(w->browser()->selectedSeries()->info.seriesInstanceUid, uid);
  QTRY_VERIFY_WITH_TIMEOUT(loads.back().first && loads.back().second == 24, 15000);
  disconnect(conn);
  QVERIFY(std::any_of(loads.begin(), loads.end(), [](const auto& l) { return !l.first; }));  // shown as arriving
  {
    SliceView* v = w->grid()->activeSliceView();
    const Volume want = loadDicom(kCorpus + "/phantom/box");
    QCOMPARE(v->series()->volume->byteSize(), want.byteSize());
    QVERIFY(std::memcmp(v->series()->volume->bytes(), want.bytes(), want.byteSize()) == 0);
    QVERIFY(w->currentSeries());  // complete: measurements and AI may use it
  }
  // Another series of the study arrives: listed beside it, the first one's thumbnail kept
  // (not decoded again) and still selected.
  QTRY_VERIFY_WITH_TIMEOUT(!seriesList->item(0)->icon().isNull(), 10000);
  QTest::qWait(500);  // the thumbnail decoded from the pool is in place
  const qint64 iconBefore = seriesList->item(0)->icon().cacheKey();
  QStringList odd;
  for (const auto& f : QDir(kCorpus + "/phantom/odd").entryList(QDir::Files, QDir::Name)) odd << kCorpus + "/phantom/odd/" + f;
  QVERIFY(storescu("SENDER", odd));
  QTRY_COMPARE_WITH_TIMEOUT(seriesList->count(), 2, 10000);
  QVERIFY(w->browser()->selectedSeries());
  QCOMPARE(w->browser()->selectedSeries()->info.seriesInstanceUid, uid);
  for (int i = 0; i < 2; ++i)
    if (seriesList->item(i)->text().endsWith("24 image(s)")) QCOMPARE(seriesList->item(i)->icon().cacheKey(), iconBefore);
  QTRY_COMPARE_WITH_TIMEOUT(w->receiver()->received(), quint64(24 + 7), 10000);
  auto* label = w->findChild<QLabel*>("ReceiveStatus");
  QVERIFY(label && label->isVisible());
  QVERIFY(label->text().endsWith(": 31 received"));
  QVERIFY(w->grab().save(QStringLiteral(LUMEN_TEST_WORK_DIR) + "/gui-receive.png"));  // for a person to look at
  // What arrived is what was sent, voxel for voxel, and opens from the browser.
  auto db = db::StudyDatabase::open(dataDir_->path().toStdString());
  QVERIFY(db);
  auto rows = (*db)->instancesOfSeries(uid);
  QVERIFY(rows);
  QCOMPARE(rows->size(), std::size_t(24));
  // The managed store keeps a series in a folder of its own.
  const QString folder = QString::fromStdString(std::filesystem::path(rows->front().path).parent_path().string());
  const Volume got = loadDicom(folder), want = loadDicom(kCorpus + "/phantom/box");
  QCOMPARE(got.byteSize(), want.byteSize());
  QVERIFY(std::memcmp(got.bytes(), want.bytes(), want.byteSize()) == 0);
  // Off again: at once for the window; the port is free once the listener has wound down.
  action->trigger();
  QVERIFY(!w->receiver()->running());
  QVERIFY(!label->isVisible());
  QThreadPool::globalInstance()->waitForDone();
  QVERIFY(!storescu("SENDER", files.mid(0, 1)));
}
