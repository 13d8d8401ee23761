#include "CpuMemoryPool.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <sys/mman.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

namespace lumen::models {

namespace {

constexpr std::size_t kLarge = std::size_t{1} << 20;  // below this glibc's own free lists do well
constexpr std::size_t kHugePage = std::size_t{2} << 20;

std::size_t roundUp(std::size_t n) { return (n + kHugePage - 1) / kHugePage * kHugePage; }

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

  // Caching starts with the first active run and ends (cache emptied) with the last one.
  void acquire() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (active_++ == 0) stats_ = {};
  }

  void release() {
    std::multimap<std::size_t, void*> drop;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--active_ > 0) return;
      drop.swap(free_);
      cached_ = 0;
    }
    for (auto& [size, ptr] : drop) std::free(ptr);
  }

  CpuMemoryPoolGuard::Stats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  void* take(std::size_t n) {
    if (n < kLarge) return c10::alloc_cpu(n);  // freed by free_cpu in release()
    const std::size_t want = roundUp(n);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (active_ > 0) {
        // A cached block of this size or slightly larger (a quarter more at most).
        auto it = free_.lower_bound(want);
        if (it != free_.end() && it->first <= want + want / 4) {
          void* p = it->second;
          live_[p] = it->first;
          cached_ -= it->first;
          free_.erase(it);
          ++stats_.hits;
          return p;
        }
        ++stats_.misses;
      }
    }
    void* p = nullptr;
    if (posix_memalign(&p, kHugePage, want) != 0 || !p) throw std::bad_alloc();
    // Transparent huge pages: one 2 MiB fault instead of 512 small ones.
    madvise(p, want, MADV_HUGEPAGE);
    std::lock_guard<std::mutex> lock(mutex_);
    live_[p] = want;
    return p;
  }

  static void release(void* p) {
    if (p) instance().put(p);
  }

  void put(void* ptr) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = live_.find(ptr);
      if (it != live_.end()) {
        const std::size_t size = it->second;
        live_.erase(it);
        if (active_ == 0) {
          std::free(ptr);
          return;
        }
        free_.emplace(size, ptr);
        cached_ += size;
        if (cached_ > stats_.peakCachedBytes) stats_.peakCachedBytes = cached_;
        return;
      }
    }
    c10::free_cpu(ptr);  // a small block
  }

  mutable std::mutex mutex_;
  int active_ = 0;  // runs holding a guard
  std::size_t cached_ = 0;
  std::multimap<std::size_t, void*> free_;           // cached, by size
  std::unordered_map<void*, std::size_t> live_;       // large blocks in use
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
