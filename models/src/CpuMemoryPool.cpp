#include "CpuMemoryPool.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <unordered_map>

namespace lumen::models {

namespace {

constexpr std::size_t kLarge = std::size_t{1} << 20;    // below this glibc's own free lists do well
constexpr std::size_t kGrain = std::size_t{64} << 10;   // blocks are multiples of this
constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kCommitStep = std::size_t{64} << 20;

std::size_t roundUp(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

}  // namespace

class CpuMemoryPool final : public c10::Allocator {
 public:
  static CpuMemoryPool& instance() {
    // Leaked on purpose: tensors made during a run may outlive static destruction order.
    static auto* pool = new CpuMemoryPool();
    return *pool;
  }

  // The context is the pointer itself and raw_deleter() is set: some ATen code allocates
  // through raw_allocate()/raw_deallocate(), which require both.
  c10::DataPtr allocate(std::size_t n) const override {
    void* p = const_cast<CpuMemoryPool*>(this)->take(n);
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  // Caching starts with the first active run and ends with the last one.
  void acquire() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (active_++ == 0) stats_ = {};
  }

  // The last run ended: the pages of every free range go back to the system.
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--active_ > 0) return;
    for (const auto& [addr, size] : byAddr_) madvise(reinterpret_cast<void*>(addr), size, MADV_DONTNEED);
    trimTop();
  }

  CpuMemoryPoolGuard::Stats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  CpuMemoryPool() {
    // Address space only (PROT_NONE costs no memory and no commit charge), as large as the
    // machine's memory: a run cannot use more. Committed as the top grows.
    const long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || pageSize <= 0) return;
    const std::size_t want = roundUp(static_cast<std::size_t>(pages) * static_cast<std::size_t>(pageSize), kHugePage);
    void* raw = mmap(nullptr, want + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) return;  // every block then comes from the system, uncached
    const auto start = reinterpret_cast<std::uintptr_t>(raw);
    base_ = roundUp(start, kHugePage);  // huge pages need 2 MiB alignment
    size_ = want;
  }

  bool inArena(const void* p) const {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    return size_ > 0 && a >= base_ && a < base_ + size_;
  }

  void* take(std::size_t n) {
    if (n >= kLarge && n <= size_) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (active_ > 0)
        if (void* p = takeFromArena(roundUp(n, kGrain))) return p;
    }
    return c10::alloc_cpu(n);  // outside runs, small blocks, or the arena is full
  }

  // Best fit among the free ranges (split, the rest stays free), else the top grows.
  void* takeFromArena(std::size_t want) {
    std::uintptr_t addr = 0;
    auto fit = bySize_.lower_bound({want, 0});
    if (fit != bySize_.end()) {
      addr = fit->second;
      const std::size_t have = fit->first;
      bySize_.erase(fit);
      byAddr_.erase(addr);
      if (have > want) addFree(addr + want, have - want);
      ++stats_.hits;
    } else {
      // A free range touching the top is extended rather than left as a hole.
      std::uintptr_t from = base_ + top_;
      if (!byAddr_.empty()) {
        auto last = std::prev(byAddr_.end());
        if (last->first + last->second == base_ + top_) {
          from = last->first;
          bySize_.erase({last->second, last->first});
          byAddr_.erase(last);
        }
      }
      const std::size_t newTop = from + want - base_;
      if (newTop > size_ || !commit(newTop)) {
        if (from != base_ + top_) addFree(from, base_ + top_ - from);
        return nullptr;
      }
      addr = from;
      top_ = std::max(top_, newTop);
      ++stats_.misses;
    }
    live_[addr] = want;
    stats_.peakBytes = std::max(stats_.peakBytes, top_);
    return reinterpret_cast<void*>(addr);
  }

  bool commit(std::size_t newTop) {
    if (newTop <= committed_) return true;
    const std::size_t to = std::min(size_, roundUp(newTop, kCommitStep));
    void* at = reinterpret_cast<void*>(base_ + committed_);
    if (mprotect(at, to - committed_, PROT_READ | PROT_WRITE) != 0) return false;
    // Transparent huge pages: one 2 MiB fault instead of 512 small ones.
    madvise(at, to - committed_, MADV_HUGEPAGE);
    committed_ = to;
    return true;
  }

  // Inserts a free range, merged with free neighbours.
  void addFree(std::uintptr_t addr, std::size_t size) {
    auto next = byAddr_.lower_bound(addr);
    if (next != byAddr_.end() && addr + size == next->first) {
      size += next->second;
      bySize_.erase({next->second, next->first});
      next = byAddr_.erase(next);
    }
    if (next != byAddr_.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second == addr) {
        addr = prev->first;
        size += prev->second;
        bySize_.erase({prev->second, prev->first});
        byAddr_.erase(prev);
      }
    }
    byAddr_[addr] = size;
    bySize_.insert({size, addr});
  }

  // A free range at the top is given back to the top.
  void trimTop() {
    if (byAddr_.empty()) return;
    auto last = std::prev(byAddr_.end());
    if (last->first + last->second != base_ + top_) return;
    top_ = last->first - base_;
    bySize_.erase({last->second, last->first});
    byAddr_.erase(last);
  }

  static void release(void* p) {
    if (p) instance().put(p);
  }

  void put(void* ptr) {
    if (!inArena(ptr)) {
      c10::free_cpu(ptr);
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    const auto addr = reinterpret_cast<std::uintptr_t>(ptr);
    auto it = live_.find(addr);
    if (it == live_.end()) return;
    const std::size_t size = it->second;
    live_.erase(it);
    // After the last run, nothing is held: the block's pages go back at once.
    if (active_ == 0) madvise(ptr, size, MADV_DONTNEED);
    addFree(addr, size);
    if (active_ == 0) trimTop();
  }

  mutable std::mutex mutex_;
  int active_ = 0;  // runs holding a guard
  std::uintptr_t base_ = 0;
  std::size_t size_ = 0, committed_ = 0, top_ = 0;  // reserved, read-write, ever handed out (from base_)
  std::map<std::uintptr_t, std::size_t> byAddr_;       // free ranges below the top
  std::set<std::pair<std::size_t, std::uintptr_t>> bySize_;
  std::unordered_map<std::uintptr_t, std::size_t> live_;  // blocks in use
  CpuMemoryPoolGuard::Stats stats_;
};

void installCpuMemoryPool() {
  static std::once_flag once;
  // Priority 1 beats the default CPU allocator's 0. Done once, before the first run.
  std::call_once(once, [] { c10::SetCPUAllocator(&CpuMemoryPool::instance(), 1); });
}

CpuMemoryPoolGuard::CpuMemoryPoolGuard() {
  installCpuMemoryPool();
  CpuMemoryPool::instance().acquire();
}

CpuMemoryPoolGuard::~CpuMemoryPoolGuard() { CpuMemoryPool::instance().release(); }

CpuMemoryPoolGuard::Stats CpuMemoryPoolGuard::stats() const { return CpuMemoryPool::instance().stats(); }

}  // namespace lumen::models
