#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <vector>

#include "lumen/core/Parallel.h"
#include "lumen/core/Progress.h"

using namespace lumen;

TEST(Progress, SubRangesCompose) {
  std::vector<double> seen;
  Progress p([&](double f, std::string_view) { seen.push_back(f); });
  p.report(0.5);
  Progress half = p.sub(0.5, 1.0);
  half.report(0.0);
  half.report(1.0);
  half.sub(0.0, 0.5).report(1.0);
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_DOUBLE_EQ(seen[0], 0.5);
  EXPECT_DOUBLE_EQ(seen[1], 0.5);
  EXPECT_DOUBLE_EQ(seen[2], 1.0);
  EXPECT_DOUBLE_EQ(seen[3], 0.75);
}

TEST(Progress, UnknownIsNaNAndEmptySinkIsSilent) {
  double last = 0;
  Progress p([&](double f, std::string_view) { last = f; });
  p.unknown("scanning");
  EXPECT_TRUE(std::isnan(last));
  Progress none;
  EXPECT_FALSE(none.active());
  none.report(0.3);  // must not crash
}

TEST(CancelToken, CopiesShareState) {
  CancelToken a;
  CancelToken b = a;
  EXPECT_FALSE(b.isCancelled());
  a.cancel();
  EXPECT_TRUE(b.isCancelled());
}

TEST(Parallel, VisitsEveryIndexOnce) {
  std::vector<std::atomic<int>> hits(1000);
  parallelFor(hits.size(), 4, CancelToken{}, [&](std::size_t i, int) { hits[i]++; });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(Parallel, StopsWhenCancelled) {
  CancelToken cancel;
  std::atomic<int> done{0};
  parallelFor(100000, 2, cancel, [&](std::size_t i, int) {
    if (i == 10) cancel.cancel();
    done++;
  });
  EXPECT_LT(done.load(), 100000);
}

TEST(Parallel, RethrowsWorkerExceptions) {
  EXPECT_THROW(parallelFor(100, 3, CancelToken{}, [&](std::size_t i, int) {
                 if (i == 42) throw std::runtime_error("boom");
               }),
               std::runtime_error);
}
