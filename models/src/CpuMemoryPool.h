#pragma once
// A caching allocator for LibTorch's CPU tensors while a model runs (private to models/).
//
// Why: a 3D network allocates and frees the same few hundred-megabyte activations for every
// window batch. glibc serves blocks that large with mmap/munmap, so every batch page-faults
// and zeroes all of its activations again; on a 2-core machine that was half the run time
// (perf: exc_page_fault, clear_page). The CUDA side of LibTorch has a caching allocator;
// the CPU side in 1.13 does not. This pool keeps freed large blocks and hands them back for
// requests of (nearly) the same size, the way a sliding window asks for them.
//
// Scope: installed by a guard for the duration of one Engine::run on the CPU. When the guard
// ends, the previous allocator is restored and cached blocks are released, so nothing is held
// between runs; blocks still owned by live tensors are freed normally when those die.

#include <c10/core/Allocator.h>

#include <cstddef>

namespace lumen::models {

class CpuMemoryPool;

class CpuMemoryPoolGuard {
 public:
  /// The pool holds at most what the run itself had allocated at one time.
  CpuMemoryPoolGuard();
  ~CpuMemoryPoolGuard();
  CpuMemoryPoolGuard(const CpuMemoryPoolGuard&) = delete;
  CpuMemoryPoolGuard& operator=(const CpuMemoryPoolGuard&) = delete;

  struct Stats {
    std::size_t hits = 0, misses = 0;       // large allocations served from / not from the cache
    std::size_t peakCachedBytes = 0;
  };
  Stats stats() const;

 private:
  c10::Allocator* previous_ = nullptr;
  bool installed_ = false;
};

}  // namespace lumen::models
