#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lumen/core/Log.h"
#include "lumen/core/Result.h"

using namespace lumen;

TEST(Result, HoldsValueOrError) {
  Result<int> ok = 5;
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 5);
  Result<int> bad = Error(ErrorCode::Corrupt, "truncated", "/data/x.dcm");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().toString(), "/data/x.dcm: truncated");
  Status s;
  EXPECT_TRUE(s);
  Status f = Error(ErrorCode::Io, "disk full");
  EXPECT_EQ(f.error().toString(), "disk full");
}

TEST(Log, SinkAndLevelFilter) {
  std::vector<std::string> lines;
  setLogSink([&](LogLevel, std::string_view m) { lines.emplace_back(m); });
  setLogLevel(LogLevel::Warning);
  LUMEN_INFO("hidden " << 1);
  LUMEN_WARN("shown " << 2);
  setLogLevel(LogLevel::Debug);
  LUMEN_DEBUG("debug " << 3);
  setLogSink({});
  setLogLevel(LogLevel::Warning);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "shown 2");
  EXPECT_EQ(lines[1], "debug 3");
}
