// The batch job database: each task takes its own share first, then what the others have
// not started; a failed study is retried up to its attempts; interrupted ones come back.

#include <gtest/gtest.h>

#include <filesystem>

#include "lumen/imaging/BatchJobs.h"

namespace fs = std::filesystem;
using namespace lumen;

namespace {

std::unique_ptr<batch::JobDatabase> fresh(const std::string& name) {
  const fs::path dir = fs::path(LUMEN_TEST_WORK_DIR) / "batch-jobs";
  fs::create_directories(dir);
  const fs::path file = dir / (name + ".db");
  for (const char* ext : {"", "-wal", "-shm"}) fs::remove(file.string() + ext);
  auto db = batch::JobDatabase::open(file);
  EXPECT_TRUE(db) << (db ? "" : db.error().toString());
  return db ? std::move(db.value()) : nullptr;
}

std::string next(batch::JobDatabase& db, int task, int tasks, int maxAttempts = 3) {
  auto j = db.claim(task, tasks, maxAttempts, "task " + std::to_string(task));
  EXPECT_TRUE(j) << (j ? "" : j.error().toString());
  return j && *j ? (*j)->studyUid : std::string("-");
}

}  // namespace

TEST(BatchJobs, OwnShareFirstThenWhatTheOthersHaveNotStarted) {
  auto db = fresh("share");
  ASSERT_TRUE(db);
  auto added = db->addStudies({"s0", "s1", "s2", "s3", "s4"});
  ASSERT_TRUE(added);
  EXPECT_EQ(*added, 5u);
  // Task 2 of 2 takes positions 1 and 3; task 1 takes 0, 2, 4, then nothing is left for it.
  EXPECT_EQ(next(*db, 2, 2), "s1");
  EXPECT_EQ(next(*db, 1, 2), "s0");
  EXPECT_EQ(next(*db, 1, 2), "s2");
  EXPECT_EQ(next(*db, 1, 2), "s4");
  // Task 1 has finished its share while task 2 still works on s1: it takes s3 over.
  EXPECT_EQ(next(*db, 1, 2), "s3");
  EXPECT_EQ(next(*db, 2, 2), "-");
  EXPECT_EQ(next(*db, 1, 2), "-");
}

TEST(BatchJobs, FailuresAreRetriedUpToTheirAttemptsAndInterruptionsComeBack) {
  auto db = fresh("retry");
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->addStudies({"a", "b"}));
  EXPECT_EQ(next(*db, 1, 1, 2), "a");
  ASSERT_TRUE(db->finish("a", false, "the node has no image series in this study", ""));
  EXPECT_EQ(next(*db, 1, 1, 2), "b");  // fewer attempts first
  EXPECT_EQ(next(*db, 1, 1, 2), "a");  // its second and last attempt
  ASSERT_TRUE(db->finish("a", false, "again", ""));
  EXPECT_EQ(next(*db, 1, 1, 2), "-");
  // b was left running by a worker that is gone.
  auto released = db->releaseInterrupted();
  ASSERT_TRUE(released);
  EXPECT_EQ(*released, 1u);
  EXPECT_EQ(next(*db, 1, 1, 2), "b");
  ASSERT_TRUE(db->finish("b", true, "", "{}"));
  auto all = db->all();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].status, "failed");
  EXPECT_EQ((*all)[0].attempts, 2);
  EXPECT_EQ((*all)[0].lastError, "again");
  EXPECT_EQ((*all)[1].status, "done");
  EXPECT_EQ((*all)[1].attempts, 2);
}
