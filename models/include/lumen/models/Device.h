#pragma once
// Where inference runs: auto (CUDA when LibTorch has CUDA and a device exists, else the
// CPU), or what the user asked for. The decision comes with its reason, for the log.

#include <cstddef>
#include <string>

#include "lumen/core/Result.h"

namespace lumen::models {

struct DeviceChoice {
  bool cuda = false;
  int index = 0;
  std::string name = "cpu";  // "cpu", "cuda:0"
  std::string reason;        // why this device, one line
};

/// request: "auto", "cpu", "cuda" or "cuda:N". Asking for CUDA where there is none is an
/// error that says why (LibTorch without CUDA, no device, index out of range).
Result<DeviceChoice> chooseDevice(const std::string& request);

/// Free and total memory of the device (CPU: available RAM). Zero when unknown.
struct MemoryInfo {
  std::size_t freeBytes = 0;
  std::size_t totalBytes = 0;
};
MemoryInfo deviceMemory(const DeviceChoice& d);

/// Intra-op threads for CPU inference (0 = LibTorch's default).
void setCpuThreads(int threads);
int cpuThreads();

/// "LibTorch 1.13.1 (CPU)" or "LibTorch 2.11.0 (CUDA 13.0)".
std::string torchDescription();

}  // namespace lumen::models
