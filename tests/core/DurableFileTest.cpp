#include <gtest/gtest.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "lumen/core/DurableFile.h"

namespace fs = std::filesystem;
using namespace lumen;

namespace {
fs::path freshDir(const char* name) {
  const fs::path d = fs::temp_directory_path() / (std::string(name) + "-" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST(DurableFile, ReplacesTheFileWholeWithTheAskedModeAndLeavesNoTemporary) {
  const fs::path d = freshDir("lumen-durable");
  const fs::path f = d / "settings.json";
  ASSERT_TRUE(writeFileDurably(f, "first", 0600));
  ASSERT_TRUE(writeFileDurably(f, "second, longer", 0600));
  EXPECT_EQ(slurp(f), "second, longer");
  struct stat st {};
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(std::distance(fs::directory_iterator(d), fs::directory_iterator()), 1);
  fs::remove_all(d);
}

TEST(DurableFile, AFailedWriteLeavesTheOldFileAndNoTemporary) {
  const fs::path d = freshDir("lumen-durable-fail");
  const fs::path f = d / "kept.txt";
  ASSERT_TRUE(writeFileDurably(f, "old"));
  // The destination is a folder that is not empty: the rename must fail.
  const fs::path blocked = d / "blocked";
  fs::create_directories(blocked / "inside");
  auto s = writeFileDurably(blocked, "new");
  EXPECT_FALSE(s);
  EXPECT_EQ(slurp(f), "old");
  EXPECT_TRUE(fs::is_directory(blocked / "inside"));
  for (const auto& e : fs::directory_iterator(d)) EXPECT_EQ(e.path().filename().string().rfind(".part-", 0), std::string::npos);
  fs::remove_all(d);
}

TEST(DurableFile, TemporaryNamesAreUniqueAndBesideTheDestination) {
  const fs::path a = temporaryPathFor("/x/y/file.dcm"), b = temporaryPathFor("/x/y/file.dcm");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.parent_path(), fs::path("/x/y"));
}

TEST(DurableFile, CommitWithTheFolderFlushedByTheCaller) {
  const fs::path d = freshDir("lumen-durable-bycaller");
  const fs::path tmp = temporaryPathFor(d / "a.dcm");
  { std::ofstream(tmp) << "bytes"; }
  ASSERT_TRUE(commitFile(tmp, d / "a.dcm", FolderSync::ByCaller));
  EXPECT_EQ(slurp(d / "a.dcm"), "bytes");
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_TRUE(syncFolder(d));
  auto missing = syncFolder(d / "no-such-folder");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().toString().find("no-such-folder"), std::string::npos);
  fs::remove_all(d);
}

TEST(DurableFile, WhatDeadWritersLeftIsRemovedTheLivingKeepTheirs) {
  const fs::path d = freshDir("lumen-durable-abandoned");
  // A process that has ended: its pid names a writer that cannot come back.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ::waitpid(child, nullptr, 0);
  const fs::path dead = d / (".part-series-" + std::to_string(child) + "-3");
  fs::create_directories(dead / "inside");
  const fs::path alive = temporaryPathFor(d / "series");  // this process's own
  fs::create_directories(alive);
  const fs::path other = d / (".part-other-" + std::to_string(child) + "-1");  // another destination's
  fs::create_directories(other);
  EXPECT_EQ(removeAbandonedTemporaries(d / "series"), 1u);
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(alive));
  EXPECT_TRUE(fs::exists(other));
  fs::remove_all(d);
}
