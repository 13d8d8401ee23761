#pragma once
// A caching allocator for LibTorch's CPU tensors while a model runs (private to models/).
//
// Why: a 3D network allocates and frees the same few hundred-megabyte activations for every
// window batch. glibc serves blocks that large with mmap/munmap, so every batch page-faults
// and zeroes all of its activations again; on a 2-core machine that was half the run time
// (perf: exc_page_fault, clear_page). The CUDA side of LibTorch has a caching allocator;
// the CPU side in 1.13 does not.
//
// How: large blocks come from one reserved address range (reserved, not committed: it costs
// nothing until used). A request takes the smallest free range that holds it (the rest
// stays free) or else the top of what was handed out grows; freed blocks merge with free
// neighbours. Recycled pages are not faulted again, and since free ranges are split and
// merged, the memory held stays close to what is in use at the worst moment. (Blocks cached
// by size held 268 MiB where 141 do now, for the benchmark's U-Net: a 2 MiB request could not
// use a free 8 MiB block, nor an 8 MiB request two free 4 MiB neighbours.)
//
// Scope: LibTorch's CPU allocator is process-wide, and the GUI runs other LibTorch work
// (a second model, saliency) on other threads. Swapping the allocator in and out around
// each run would change it under their feet, so the pool is installed once, before the
// first run (Engine::load), and never removed. It caches only while at least one run holds
// a guard (a count); when the last guard ends, the pages of every free range go back to the
// system, so nothing is held between runs. Outside runs it passes every request straight to
// the system; so does it for small blocks, and when the range is used up.

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
    std::size_t peakBytes = 0;              // how far into its range the pool reached: an upper
                                            // bound of what it held, in use and free
  };
  /// Since caching last started (the first of the guards now alive).
  Stats stats() const;
};

}  // namespace lumen::models
