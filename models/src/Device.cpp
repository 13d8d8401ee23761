#include "lumen/models/Device.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <fstream>
#include <thread>
#include <sstream>

#if defined(LUMEN_TORCH_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace lumen::models {

std::string torchDescription() {
  std::ostringstream s;
  s << "LibTorch " << TORCH_VERSION;
#if defined(LUMEN_TORCH_CUDA)
  s << " (CUDA)";
#else
  s << " (CPU)";
#endif
  return s.str();
}

Result<DeviceChoice> chooseDevice(const std::string& request) {
  const bool haveCuda = torch::cuda::is_available();
  const int count = haveCuda ? static_cast<int>(torch::cuda::device_count()) : 0;
  DeviceChoice d;
  auto cudaReason = [&] {
#if defined(LUMEN_TORCH_CUDA)
    return std::string("no CUDA device is visible");
#else
    return std::string("this build of LibTorch has no CUDA support");
#endif
  };
  if (request.empty() || request == "auto") {
    if (haveCuda && count > 0) {
      d.cuda = true;
      d.name = "cuda:0";
      d.reason = "auto: CUDA available (" + std::to_string(count) + " device(s)), using cuda:0";
    } else {
      d.reason = "auto: CPU, because " + cudaReason();
    }
    return d;
  }
  if (request == "cpu") {
    d.reason = "CPU as requested";
    return d;
  }
  if (request.rfind("cuda", 0) == 0) {
    int index = 0;
    if (request.size() > 4) {
      if (request[4] != ':') return Error(ErrorCode::InvalidArgument, "device must be auto, cpu, cuda or cuda:N", request);
      try {
        index = std::stoi(request.substr(5));
      } catch (const std::exception&) {
        return Error(ErrorCode::InvalidArgument, "device must be auto, cpu, cuda or cuda:N", request);
      }
    }
    if (!haveCuda || count == 0) return Error(ErrorCode::Unsupported, "CUDA requested but " + cudaReason(), request);
    if (index < 0 || index >= count)
      return Error(ErrorCode::InvalidArgument, "CUDA device " + std::to_string(index) + " does not exist (" + std::to_string(count) + " visible)", request);
    d.cuda = true;
    d.index = index;
    d.name = "cuda:" + std::to_string(index);
    d.reason = d.name + " as requested";
    return d;
  }
  return Error(ErrorCode::InvalidArgument, "device must be auto, cpu, cuda or cuda:N", request);
}

MemoryInfo deviceMemory(const DeviceChoice& d) {
  MemoryInfo m;
  if (d.cuda) {
#if defined(LUMEN_TORCH_CUDA)
    size_t freeB = 0, totalB = 0;
    int previous = 0;
    cudaGetDevice(&previous);
    cudaSetDevice(d.index);
    if (cudaMemGetInfo(&freeB, &totalB) == cudaSuccess) {
      m.freeBytes = freeB;
      m.totalBytes = totalB;
    }
    cudaSetDevice(previous);
#endif
    return m;
  }
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::size_t value = 0;
  std::string unit;
  while (in >> key >> value >> unit) {
    if (key == "MemAvailable:") m.freeBytes = value * 1024;
    if (key == "MemTotal:") m.totalBytes = value * 1024;
  }
  return m;
}

void setCpuThreads(int threads) {
  // 0: every core (LibTorch's own default may be a single thread).
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
}

int cpuThreads() { return at::get_num_threads(); }

}  // namespace lumen::models
