#pragma once
// Minimal parallel-for over an index range with dynamic scheduling and cancellation.
// Standard C++ only; the layers above choose the thread count.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "lumen/core/Progress.h"

namespace lumen {

/// Number of worker threads to use when the user asked for `requested` (0 = all cores).
inline int resolveThreadCount(int requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

/// Calls fn(i, worker) for i in [0, n) on up to `threads` threads (worker in [0, threads)).
/// Stops handing out work once `cancel` is set. The first exception thrown by fn is
/// rethrown on the calling thread after all workers stopped.
template <class Fn>
void parallelFor(std::size_t n, int threads, const CancelToken& cancel, Fn&& fn) {
  const int t = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(std::max(1, threads)), n));
  if (t <= 1) {
    for (std::size_t i = 0; i < n && !cancel.isCancelled(); ++i) fn(i, 0);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::exception_ptr firstError;
  std::mutex errorMutex;
  auto worker = [&](int w) {
    try {
      for (;;) {
        if (cancel.isCancelled()) return;
        const std::size_t i = next.fetch_add(1, std::memory_order_relaxed);
        if (i >= n) return;
        fn(i, w);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(errorMutex);
      if (!firstError) firstError = std::current_exception();
      next.store(n);
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(t - 1));
  for (int w = 1; w < t; ++w) pool.emplace_back(worker, w);
  worker(0);
  for (auto& th : pool) th.join();
  if (firstError) std::rethrow_exception(firstError);
}

}  // namespace lumen
