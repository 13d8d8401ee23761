#include <gtest/gtest.h>

#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <latch>
#include <set>
#include <thread>

#include "Corpus.h"
#include "lumen/imaging/DicomFile.h"
#include "lumen/imaging/StudyDatabase.h"

using namespace lumen;
using namespace lumen::db;
namespace fs = std::filesystem;

namespace {
fs::path freshDir(const std::string& name) {
  fs::path d = fs::path(LUMEN_TEST_WORK_DIR) / "db" / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

int count(const fs::path& dir, const char* sql) {
  sqlite3* db = nullptr;
  sqlite3_open((dir / "lumen.db").c_str(), &db);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
  int n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n;
}
std::string text(const fs::path& dir, const char* sql) {
  sqlite3* db = nullptr;
  sqlite3_open((dir / "lumen.db").c_str(), &db);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
  std::string out = sqlite3_step(s) == SQLITE_ROW ? reinterpret_cast<const char*>(sqlite3_column_text(s, 0)) : "(error)";
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}
}  // namespace

TEST(StudyDatabase, ImportsAndListsTheSampleStudy) {
  const fs::path dir = freshDir("import");
  auto db = StudyDatabase::open(dir);
  ASSERT_TRUE(db) << db.error().toString();
  EXPECT_EQ((*db)->schemaVersion(), StudyDatabase::kSchemaVersion);
  auto r = (*db)->import({test::sampleCt()}, {});
  ASSERT_TRUE(r) << r.error().toString();
  EXPECT_EQ(r->instancesAdded, 32u);
  auto studies = (*db)->studies();
  ASSERT_TRUE(studies);
  ASSERT_EQ(studies->size(), 1u);
  EXPECT_EQ((*studies)[0].seriesCount, 1);
  EXPECT_EQ((*studies)[0].instanceCount, 32);
  EXPECT_EQ((*studies)[0].modalities, "CT");
  EXPECT_EQ((*studies)[0].patient.name, "CAMITK^TEST");
  auto series = (*db)->series((*studies)[0].id);
  ASSERT_TRUE(series);
  ASSERT_EQ(series->size(), 1u);
  EXPECT_EQ((*series)[0].info.description, "SINUS");
  auto inst = (*db)->instances((*series)[0].id);
  ASSERT_TRUE(inst);
  EXPECT_EQ(inst->size(), 32u);
  EXPECT_FALSE((*inst)[0].managed);
  EXPECT_TRUE(fs::exists((*inst)[0].path));
  // WAL mode for concurrent readers (GUI + CLI).
  EXPECT_EQ(text(dir, "PRAGMA journal_mode"), "wal");
}

TEST(StudyDatabase, ReimportIsIdempotent) {
  const fs::path dir = freshDir("idempotent");
  auto db = StudyDatabase::open(dir);
  ASSERT_TRUE(db);
  ASSERT_TRUE((*db)->import({test::sampleCt()}, {}));
  auto again = (*db)->import({test::sampleCt()}, {});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->instancesAdded, 0u);
  EXPECT_EQ(again->instancesUnchanged, 32u);
  EXPECT_EQ(count(dir, "SELECT COUNT(*) FROM instances"), 32);
  EXPECT_EQ(count(dir, "SELECT COUNT(*) FROM studies"), 1);
  EXPECT_EQ(count(dir, "SELECT COUNT(*) FROM patients"), 1);
}

TEST(StudyDatabase, ManagedStoreCopiesAndDeletesOnlyItsOwnFiles) {
  const fs::path dir = freshDir("managed");
  auto db = StudyDatabase::open(dir);
  ASSERT_TRUE(db);
  ImportOptions o;
  o.copyToStore = true;
  auto r = (*db)->import({test::sampleCt()}, o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->instancesAdded, 32u);
  auto studies = (*db)->studies();
  auto series = (*db)->series((*studies)[0].id);
  auto inst = (*db)->instances((*series)[0].id);
  ASSERT_TRUE(inst);
  for (const auto& i : *inst) {
    EXPECT_TRUE(i.managed);
    EXPECT_EQ(fs::path(i.path).lexically_relative((*db)->storeDir()).begin()->string().substr(0, 2), "1.");
  }
  const std::size_t originals = static_cast<std::size_t>(std::distance(fs::directory_iterator(test::sampleCt()), {}));
  auto del = (*db)->deleteStudy((*studies)[0].id, true);
  ASSERT_TRUE(del);
  EXPECT_EQ(del->instancesRemoved, 32u);
  EXPECT_EQ(del->filesDeleted, 32u);
  EXPECT_EQ(static_cast<std::size_t>(std::distance(fs::directory_iterator(test::sampleCt()), {})), originals)
      << "files outside the store are never deleted";
  EXPECT_EQ(count(dir, "SELECT COUNT(*) FROM patients"), 0);
}

TEST(StudyDatabase, DeletingReferencedFilesKeepsThemOnDisk) {
  const fs::path dir = freshDir("referenced");
  auto db = StudyDatabase::open(dir);
  ASSERT_TRUE((*db)->import({test::sampleCt()}, {}));
  auto studies = (*db)->studies();
  auto del = (*db)->deleteStudy((*studies)[0].id, true);
  ASSERT_TRUE(del);
  EXPECT_EQ(del->filesDeleted, 0u);
  EXPECT_TRUE(fs::exists(test::sampleCt()));
  EXPECT_EQ(count(dir, "SELECT COUNT(*) FROM instances"), 0);
}

TEST(StudyDatabase, SearchFilters) {
  LUMEN_REQUIRE_CORPUS();
  const fs::path dir = freshDir("search");
  auto db = StudyDatabase::open(dir);
  ASSERT_TRUE((*db)->import({test::sampleCt(), test::corpus("ramp/echoes"), test::corpus("cine")}, {}));
  EXPECT_EQ((*db)->studies()->size(), 2u);
  StudyQuery q;
  q.text = "camitk";
  EXPECT_EQ((*db)->studies(q)->size(), 1u);
  q = {};
  q.modality = "XA";
  ASSERT_EQ((*db)->studies(q)->size(), 1u);
  EXPECT_EQ((*(*db)->studies(q))[0].patient.patientId, "RAMP0001");
  q = {};
  q.dateFrom = "20240101";
  q.dateTo = "20240131";
  EXPECT_EQ((*db)->studies(q)->size(), 1u);
  q.dateFrom = "20250101";
  q.dateTo = "";
  EXPECT_EQ((*db)->studies(q)->size(), 0u);
  q = {};
  q.text = "two echoes";  // series description
  EXPECT_EQ((*db)->studies(q)->size(), 1u);
}

TEST(StudyDatabase, MigratesOlderSchemasKeepingData) {
  const fs::path dir = freshDir("migrate");
  ASSERT_TRUE(StudyDatabase::createAtVersion(dir, 1));
  EXPECT_EQ(count(dir, "PRAGMA user_version"), 1);
  {
    sqlite3* raw = nullptr;
    sqlite3_open((dir / "lumen.db").c_str(), &raw);
    sqlite3_exec(raw,
                 "INSERT INTO patients VALUES(1,'P','N','','');"
                 "INSERT INTO studies(id, patient_ref, study_uid) VALUES(1,1,'1.2.3');"
                 "INSERT INTO series(id, study_ref, series_uid) VALUES(1,1,'1.2.3.4');"
                 "INSERT INTO instances(id, series_ref, sop_uid, path) VALUES(1,1,'1.2.3.4.5','/x');",
                 nullptr, nullptr, nullptr);
    sqlite3_close(raw);
  }
  auto db = StudyDatabase::open(dir);
  ASSERT_TRUE(db) << db.error().toString();
  EXPECT_EQ((*db)->schemaVersion(), 3);
  EXPECT_EQ(count(dir, "SELECT COUNT(*) FROM instances WHERE frames = 1"), 1);
  // Version 3 added the measurements.
  ASSERT_TRUE((*db)->saveMeasurementDocument("1.2.3.4", "", "{}"));
  EXPECT_EQ(*(*db)->measurementDocument("1.2.3.4", ""), "{}");
}

TEST(StudyDatabase, MeasurementsArePerVolumeAndGoWithTheirSeries) {
  const fs::path dir = freshDir("measurements");
  auto db = StudyDatabase::open(dir);
  ASSERT_TRUE((*db)->import({test::sampleCt()}, {}));
  auto studies = (*db)->studies();
  auto series = (*db)->series((*studies)[0].id);
  const std::string uid = (*series)[0].info.seriesInstanceUid;
  ASSERT_TRUE((*db)->saveMeasurementDocument(uid, "", "A"));
  ASSERT_TRUE((*db)->saveMeasurementDocument(uid, "echo 2", "B"));
  ASSERT_TRUE((*db)->saveMeasurementDocument("9.9.9", "", "C"));  // a series opened, never imported
  ASSERT_TRUE((*db)->saveMeasurementDocument(uid, "", "A2"));     // replaced, not added
  EXPECT_EQ(*(*db)->measurementDocument(uid, ""), "A2");
  EXPECT_EQ(*(*db)->measurementDocument(uid, "echo 2"), "B");
  EXPECT_EQ(*(*db)->measurementDocument(uid, "echo 3"), "");
  EXPECT_EQ(count(dir, "SELECT COUNT(*) FROM measurements"), 3);
  ASSERT_TRUE((*db)->saveMeasurementDocument(uid, "echo 2", ""));  // an empty list removes the row
  EXPECT_EQ(count(dir, "SELECT COUNT(*) FROM measurements"), 2);
  EXPECT_FALSE((*db)->saveMeasurementDocument("", "", "X"));
  // Survives reopening; deleting the study deletes its series' measurements only.
  db = StudyDatabase::open(dir);
  EXPECT_EQ(*(*db)->measurementDocument(uid, ""), "A2");
  // Deleting one series deletes its measurements only.
  ASSERT_TRUE((*db)->import({test::sampleCt()}, {}));  // back (a no-op when still there)
  ASSERT_TRUE((*db)->saveMeasurementDocument(uid, "", "D"));
  ASSERT_TRUE((*db)->deleteSeries((*series)[0].id, false));
  EXPECT_EQ(*(*db)->measurementDocument(uid, ""), "");
  EXPECT_EQ(*(*db)->measurementDocument("9.9.9", ""), "C");
  ASSERT_TRUE((*db)->import({test::sampleCt()}, {}));
  studies = (*db)->studies();
  ASSERT_TRUE((*db)->saveMeasurementDocument(uid, "", "E"));
  ASSERT_TRUE((*db)->deleteStudy((*studies)[0].id, false));
  EXPECT_EQ(*(*db)->measurementDocument(uid, ""), "");
  EXPECT_EQ(*(*db)->measurementDocument("9.9.9", ""), "C");
}

TEST(StudyDatabase, RefusesANewerSchema) {
  const fs::path dir = freshDir("newer");
  ASSERT_TRUE(StudyDatabase::open(dir));
  {
    sqlite3* raw = nullptr;
    sqlite3_open((dir / "lumen.db").c_str(), &raw);
    sqlite3_exec(raw, "PRAGMA user_version = 99", nullptr, nullptr, nullptr);
    sqlite3_close(raw);
  }
  auto db = StudyDatabase::open(dir);
  ASSERT_FALSE(db);
  EXPECT_NE(db.error().message.find("newer"), std::string::npos);
}

TEST(StudyDatabase, CancelledImportLeavesAConsistentDatabase) {
  LUMEN_REQUIRE_CORPUS();
  const fs::path dir = freshDir("cancel");
  auto db = StudyDatabase::open(dir);
  CancelToken cancel;
  int calls = 0;
  // Cancel after the first batch was committed (the first report is "listing files").
  ImportOptions small;
  small.batchSize = 16;
  auto r = (*db)->import({test::corpus("ramp"), test::sampleCt(), test::corpus("mixed-series")}, small,
                         Progress([&](double, std::string_view) {
                           if (++calls == 2) cancel.cancel();
                         }),
                         cancel);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::Cancelled);
  // Every row has its parents: no half-written batch.
  EXPECT_EQ(count(dir, "SELECT COUNT(*) FROM instances i LEFT JOIN series s ON i.series_ref = s.id WHERE s.id IS NULL"), 0);
  EXPECT_EQ(count(dir, "SELECT COUNT(*) FROM series s LEFT JOIN studies t ON s.study_ref = t.id WHERE t.id IS NULL"), 0);
  const int partial = count(dir, "SELECT COUNT(*) FROM instances");
  EXPECT_GT(partial, 0);
  // Importing again completes the job.
  auto again = (*db)->import({test::corpus("ramp"), test::sampleCt(), test::corpus("mixed-series")}, {});
  ASSERT_TRUE(again);
  EXPECT_GT(count(dir, "SELECT COUNT(*) FROM instances"), partial);
}

TEST(StudyDatabase, BadFilesAreReportedNotImported) {
  LUMEN_REQUIRE_CORPUS();
  const fs::path dir = freshDir("bad");
  auto db = StudyDatabase::open(dir);
  auto r = (*db)->import({test::corpus("bad")}, {});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->instancesAdded, 1u);
  EXPECT_GE(r->skipped.size(), 17u);
}

// Several programs opening a new data folder at once: each sees the schema created exactly
// once (the version is read inside the write transaction, not before it).
TEST(StudyDatabase, ConcurrentFirstOpensMigrateOnce) {
  for (int round = 0; round < 8; ++round) {
    const fs::path dir = freshDir("concurrent-open-" + std::to_string(round));
    constexpr int kThreads = 4;
    std::latch start(kThreads);
    std::vector<std::string> errors(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        auto db = StudyDatabase::open(dir);
        if (!db) errors[static_cast<std::size_t>(t)] = db.error().toString();
        else if ((*db)->schemaVersion() != StudyDatabase::kSchemaVersion) errors[static_cast<std::size_t>(t)] = "wrong version";
      });
    for (auto& t : threads) t.join();
    for (const auto& e : errors) EXPECT_EQ(e, "") << "round " << round;
  }
}

// Two imports copying the same files into the store at once: no shared temporary names,
// every copy complete, nothing left behind.
TEST(StudyDatabase, ConcurrentCopyImportsDoNotCollide) {
  const fs::path dir = freshDir("concurrent-copy");
  ASSERT_TRUE(StudyDatabase::open(dir));
  std::latch start(2);
  std::vector<std::string> problems(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      auto db = StudyDatabase::open(dir);
      if (!db) {
        problems[static_cast<std::size_t>(t)] = db.error().toString();
        return;
      }
      ImportOptions o;
      o.copyToStore = true;
      o.batchSize = 4;
      start.arrive_and_wait();
      auto r = (*db)->import({test::sampleCt()}, o);
      if (!r) problems[static_cast<std::size_t>(t)] = r.error().toString();
      else if (!r->skipped.empty()) problems[static_cast<std::size_t>(t)] = r->skipped.front().path + ": " + r->skipped.front().reason;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(problems[0], "");
  EXPECT_EQ(problems[1], "");
  std::size_t partial = 0;
  std::multiset<std::uintmax_t> stored, original;
  for (const auto& e : fs::directory_iterator(test::sampleCt())) original.insert(fs::file_size(e.path()));
  for (const auto& e : fs::recursive_directory_iterator(dir / "store")) {
    if (!e.is_regular_file()) continue;
    if (e.path().filename().string().rfind(".part-", 0) == 0) {
      ++partial;
      continue;
    }
    stored.insert(fs::file_size(e.path()));
    EXPECT_TRUE(dicom::readFileInfo(e.path())) << e.path();  // complete, readable copies
  }
  EXPECT_EQ(stored, original);
  EXPECT_EQ(partial, 0u);
  EXPECT_EQ(count(dir, "SELECT COUNT(*) FROM instances WHERE managed = 1"), 32);
}

// A database locked by another program: opening says "busy" (after the timeout), it does
// not fail with an unexplained "locked" or wait forever.
TEST(StudyDatabase, ABusyDatabaseIsSaidToBeBusy) {
  const fs::path dir = freshDir("busy");
  ASSERT_TRUE(StudyDatabase::open(dir));
  sqlite3* locker = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "lumen.db").c_str(), &locker), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(locker, "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; DELETE FROM instances WHERE 0;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  auto db = StudyDatabase::open(dir, 200);
  ASSERT_FALSE(db);
  EXPECT_NE(db.error().message.find("busy"), std::string::npos) << db.error().message;
  sqlite3_exec(locker, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(locker);
  EXPECT_TRUE(StudyDatabase::open(dir, 200));
}

// A query that stops before its end (here a damaged table) is an error, never a shorter
// list: the loops used to read anything but a row as "no more rows".
TEST(StudyDatabase, AQueryThatCannotFinishIsAnErrorNotFewerRows) {
  const fs::path dir = freshDir("damaged");
  std::int64_t seriesId = 0;
  {
    auto db = StudyDatabase::open(dir);
    ASSERT_TRUE(db);
    ASSERT_TRUE((*db)->import({test::sampleCt()}, {}));
    auto studies = (*db)->studies();
    ASSERT_TRUE(studies && studies->size() == 1u);
    auto series = (*db)->series((*studies)[0].id);
    ASSERT_TRUE(series && series->size() == 1u);
    seriesId = (*series)[0].id;
  }  // last connection: the WAL is checkpointed into lumen.db
  const int page = count(dir, "SELECT rootpage FROM sqlite_master WHERE name = 'instances'");
  const int pageSize = count(dir, "PRAGMA page_size");
  ASSERT_GT(page, 1);
  {
    // Overwrite the cell contents of the instances table's (leaf) root page.
    std::fstream f(dir / "lumen.db", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(page - 1) * pageSize + pageSize / 2);
    const std::string junk(static_cast<std::size_t>(pageSize / 2), '\xA5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto db = StudyDatabase::open(dir, 200);
  ASSERT_TRUE(db) << db.error().toString();
  auto inst = (*db)->instances(seriesId);
  ASSERT_FALSE(inst) << "a damaged table read as " << inst->size() << " of 32 instances";
  EXPECT_EQ(inst.error().code, ErrorCode::Database);
}
