#pragma once
// Reads the pixels of a planned volume: one allocation of the output, frames decoded in
// parallel straight into their slice (no second full copy), progress and cancellation.

#include <cstddef>
#include <functional>

#include "lumen/core/Progress.h"
#include "lumen/core/Result.h"
#include "lumen/core/Volume.h"
#include "lumen/imaging/VolumePlanner.h"

namespace lumen::dicom {

struct LoadOptions {
  int threads = 0;  // 0 = all cores
  /// Refuse volumes larger than this many bytes (0 = three quarters of physical memory).
  std::size_t memoryLimitBytes = 0;
  /// Called (from a worker thread) when output slice k holds its final values. The middle
  /// slice is decoded first so a viewer can show it early.
  std::function<void(std::size_t k)> onSliceReady;
  /// Called (from the loading thread) once the output is allocated, before any slice is
  /// decoded: `Volume::share()` gives a view of it that stays valid. Called again if the
  /// loader has to restart with float32 voxels.
  std::function<void(const Volume& volume)> onAllocated;
  /// Start from zero-filled voxels (slices not decoded yet show black, not garbage).
  bool zeroFill = false;
};

Result<Volume> loadVolume(const ScanResult& scan, const VolumePlan& plan, const LoadOptions& options = {},
                          const Progress& progress = {}, const CancelToken& cancel = {});

/// Bytes of physical memory (0 if unknown).
std::size_t physicalMemoryBytes();

}  // namespace lumen::dicom
