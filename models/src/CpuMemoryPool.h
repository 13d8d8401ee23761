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
// Scope: LibTorch's CPU allocator is process-wide, and the GUI runs other LibTorch work
// (a second model, saliency) on other threads. Swapping the allocator in and out around
// each run would change it under their feet, so the pool is installed once, before the
// first run (Engine::load), and never removed. It caches only while at least one run holds
// a guard (a count); when the last guard ends, cached blocks are released, so nothing is
// held between runs. Outside runs it passes every request straight to the system.

#include <c10/core/Allocator.h>

#include <cstddef>

namespace lumen::models {

class CpuMemoryPool;

/// Makes the pool LibTorch's CPU allocator (once per process; later calls do nothing).
void installCpuMemoryPool();

class CpuMemoryPoolGuard {
 public:
  /// Starts caching (installs the pool first if needed); nested and concurrent guards share it.
  CpuMemoryPoolGuard();
  ~CpuMemoryPoolGuard();
  CpuMemoryPoolGuard(const CpuMemoryPoolGuard&) = delete;
  CpuMemoryPoolGuard& operator=(const CpuMemoryPoolGuard&) = delete;

  struct Stats {
    std::size_t hits = 0, misses = 0;       // large allocations served from / not from the cache
    std::size_t peakCachedBytes = 0;
  };
  /// Since caching last started (the first of the guards now alive).
  Stats stats() const;
};

}  // namespace lumen::models
