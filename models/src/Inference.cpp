// Engine: loads a bundle's TorchScript model (once) and runs the pipeline stages of
// Pipeline.h on volumes. This file holds the loading, the device and the order of the
// stages; each stage lives in its own unit.

#include "lumen/models/Inference.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "CpuKernels.h"
#include "CpuMemoryPool.h"
#include "Pipeline.h"
#include "lumen/core/Log.h"
#include "lumen/core/Sha256.h"

namespace lumen::models {

using Clock = std::chrono::steady_clock;

int InferenceResult::predictedClass() const {
  if (probabilities.empty() || !notGraded.empty()) return -1;
  if (estimateClass >= 0) return estimateClass;
  return static_cast<int>(std::max_element(probabilities.begin(), probabilities.end()) - probabilities.begin());
}

struct Engine::Impl {
  Bundle bundle;
  InferenceOptions options;
  DeviceChoice device;
  torch::jit::Module module;
  torch::ScalarType dtype = torch::kFloat32;
  std::vector<std::string> loadLog;
  std::string sha256;  // of the bytes loaded

  torch::Device torchDevice() const { return device.cuda ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(device.index)) : torch::Device(torch::kCPU); }

  // TorchScript errors carry a long interpreter traceback: keep the line that says what
  // went wrong, and say plainly when the network did not accept its input.
  static std::string explain(const std::string& what) {
    std::string line;
    std::istringstream in(what);
    std::string l;
    while (std::getline(in, l)) {
      const auto p = l.find("Error: ");
      if (p != std::string::npos && l.find("File \"") == std::string::npos) line = l.substr(p + 7);
    }
    if (line.empty()) line = what.substr(0, what.find('\n'));
    if (line.find("out of memory") != std::string::npos || line.find("not enough memory") != std::string::npos) return line;
    if (line.find("channels") != std::string::npos || line.find("shape") != std::string::npos ||
        line.find("size") != std::string::npos || line.find("dimension") != std::string::npos)
      return "the network rejected its input: " + line;
    return line;
  }

  torch::Tensor forward(const torch::Tensor& x) {
    torch::jit::IValue out;
    try {
      out = module.forward({x.to(dtype)});
    } catch (const c10::Error& e) {
      throw std::runtime_error(explain(e.what_without_backtrace()));
    } catch (const std::exception& e) {  // torch::jit::JITException and friends
      throw std::runtime_error(explain(e.what()));
    }
    torch::Tensor t;
    if (out.isTensor()) t = out.toTensor();
    else if (out.isTuple() && !out.toTuple()->elements().empty() && out.toTuple()->elements()[0].isTensor())
      t = out.toTuple()->elements()[0].toTensor();
    else if (out.isTensorList() && out.toTensorList().size() > 0)
      t = out.toTensorList().get(0);
    else
      throw std::runtime_error("the network returned neither a tensor nor a tuple of tensors");
    return t.to(torch::kFloat32);
  }

  // The network, with optional test-time flips; raises a clear error for shape problems.
  // On the CPU the windows of a batch go through one at a time: convolutions are already
  // parallel inside a window, so batching buys no speed there and multiplies the memory
  // the activations take. The result is the same (the network runs in eval mode).
  torch::Tensor predict(const torch::Tensor& x) {
    if (!device.cuda && x.size(0) > 1) {
      std::vector<torch::Tensor> parts;
      for (std::int64_t b = 0; b < x.size(0); ++b) parts.push_back(predictOne(x.narrow(0, b, 1)));
      return torch::cat(parts);
    }
    return predictOne(x);
  }

  torch::Tensor predictOne(const torch::Tensor& x) {
    c10::InferenceMode inference;
    if (!options.testTimeFlips) return forward(x);
    torch::Tensor sum = forward(x);
    int n = 1;
    for (std::int64_t d = 2; d < x.dim(); ++d) {
      sum = sum + forward(x.flip({d})).flip({d});
      ++n;
    }
    return sum / n;
  }
};

const DeviceChoice& Engine::device() const { return impl_->device; }
const Bundle& Engine::bundle() const { return impl_->bundle; }
const std::string& Engine::sha256() const { return impl_->sha256; }

Result<Engine> Engine::load(const Bundle& bundle, const InferenceOptions& options) {
  const auto loadStarted = Clock::now();
  auto impl = std::make_shared<Impl>();
  impl->bundle = bundle;
  impl->options = options;
  // The bytes are read once: the hash that is checked and recorded is of what is loaded,
  // not of a file that may have changed since the bundle was listed.
  std::string bytes;
  {
    std::ifstream in(bundle.modelPath, std::ios::binary);
    if (!in) return Error(ErrorCode::Model, "cannot read the TorchScript model", bundle.modelPath.string());
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) return Error(ErrorCode::Model, "cannot read the TorchScript model", bundle.modelPath.string());
  }
  impl->sha256 = Sha256::hexOf(bytes.data(), bytes.size());
  if (!options.trustThisModel && !options.trustedSha256.count(impl->sha256))
    return Error(ErrorCode::NotTrusted,
                 "model " + bundle.name + " (SHA-256 " + impl->sha256.substr(0, 16) +
                     "...) is not trusted: a bundle runs code inside Lumen; trust it first (lumen-cli models --trust " +
                     bundle.name + ", or the prompt in the AI panel)",
                 bundle.modelPath.string());
  if (!bundle.modelSha256.empty() && bundle.modelSha256 != impl->sha256)
    impl->loadLog.push_back("model.ts changed since the bundle was listed; SHA-256 of the loaded model: " + impl->sha256);
  auto dev = chooseDevice(options.device);
  if (!dev) return dev.error();
  // A result in another precision than asked for would be silently different: refused.
  if (!dev->cuda && options.precision != Precision::Float32)
    return Error(ErrorCode::Unsupported,
                 std::string("reduced precision (") + (options.precision == Precision::Float16 ? "float16" : "bfloat16") +
                     ") runs on CUDA only, and the device is the CPU (" + dev->reason + "); use float32",
                 bundle.modelPath.string());
  if (!dev->cuda) installCpuMemoryPool();  // before any run (see CpuMemoryPool.h)
  impl->device = *dev;
  setCpuThreads(options.threads);
  impl->loadLog.push_back("device: " + dev->reason);
  impl->loadLog.push_back(torchDescription() + ", " + std::to_string(cpuThreads()) + " CPU thread(s)");
  try {
    // Read in place: a std::istringstream would copy the model once more.
    struct View : std::streambuf {
      explicit View(std::string& b) { setg(b.data(), b.data(), b.data() + b.size()); }
      pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode) override {
        const off_type from = dir == std::ios_base::beg ? 0 : (dir == std::ios_base::cur ? gptr() : egptr()) - eback();
        const off_type to = from + off;
        if (to < 0 || to > egptr() - eback()) return pos_type(off_type(-1));
        setg(eback(), eback() + to, egptr());
        return pos_type(to);
      }
      pos_type seekpos(pos_type pos, std::ios_base::openmode m) override { return seekoff(off_type(pos), std::ios_base::beg, m); }
    } view(bytes);
    std::istream stream(&view);
    impl->module = torch::jit::load(stream, impl->torchDevice());
    bytes = std::string();  // before freezing makes a second copy of the weights
    impl->module.eval();
    // Freezing folds batch norm into the convolutions; on the CPU 3D convolutions then go
    // to oneDNN (see CpuKernels.h). Not for classifiers, whose saliency needs gradients.
    if (bundle.task != Task::Classification && options.precision == Precision::Float32) {
      try {
        impl->module = torch::jit::freeze(impl->module);
        std::string note = "model frozen (batch norm folded)";
        if (!dev->cuda) {
          const int n = useFastCpuKernels(impl->module);
          if (n > 0) note += ", " + std::to_string(n) + " 3D convolution(s) on oneDNN";
        }
        impl->loadLog.push_back(note);
      } catch (const std::exception& e) {
        impl->loadLog.push_back(std::string("model kept as is (freezing failed: ") + std::string(e.what()).substr(0, 120) + ")");
      }
    }
    if (dev->cuda && options.precision != Precision::Float32) {
      impl->dtype = options.precision == Precision::Float16 ? torch::kFloat16 : torch::kBFloat16;
      impl->module.to(impl->dtype);
      impl->loadLog.push_back(std::string("reduced precision: ") + (options.precision == Precision::Float16 ? "float16" : "bfloat16"));
    }
  } catch (const std::exception& e) {
    return Error(ErrorCode::Model, std::string("cannot load the TorchScript model: ") + e.what(), bundle.modelPath.string());
  }
#if defined(__GLIBC__)
  // The archive's bytes and the module before freezing were freed into glibc's heap, where
  // their pages would stay for the life of the process: give them back.
  malloc_trim(0);
#endif
  {
    std::ostringstream l;
    l.precision(3);
    l << "model loaded in " << std::chrono::duration<double>(Clock::now() - loadStarted).count() << " s";
    impl->loadLog.push_back(l.str());
  }
  Engine engine;
  engine.impl_ = std::move(impl);
  return engine;
}

Result<Volume> inInputType(Volume output, Task task, PixelType inputType) {
  const bool integer = inputType == PixelType::Int16 || inputType == PixelType::UInt16 || inputType == PixelType::UInt8;
  if (task != Task::Enhancement || !integer || output.empty() || output.pixelType() == inputType) return output;
  return output.convertTo(inputType);
}

Result<InferenceResult> runInference(const Bundle& bundle, const Volume& input, const InferenceOptions& options,
                                     const Progress& progress, const CancelToken& cancel) {
  auto engine = Engine::load(bundle, options);
  if (!engine) return engine.error();
  return engine->run(input, progress, cancel);
}

Result<InferenceResult> Engine::run(const Volume& input, const Progress& progress, const CancelToken& cancel) {
  using namespace pipeline;
  Impl& m = *impl_;
  const Bundle& b = m.bundle;
  const auto started = Clock::now();
  InferenceResult res;
  res.task = b.task;
  res.model = b.name;
  res.version = b.version;
  res.sha256 = m.sha256;
  res.device = m.device.name;
  res.log = m.loadLog;
  for (const auto& n : b.notes) res.log.push_back("config: " + n);
  if (input.empty()) return Error(ErrorCode::InvalidArgument, "the input volume is empty");
  if (input.pixelType() == PixelType::RGB8) return Error(ErrorCode::Unsupported, "colour images are not valid model inputs");
  std::string why;
  if (!input.geometry().isValid(&why)) return Error(ErrorCode::InvalidArgument, "input geometry: " + why);
  Clock::time_point preprocessed = started, networkDone = started;
  // On the CPU, activations are recycled between windows instead of being mapped, faulted
  // in and unmapped every time (see CpuMemoryPool.h).
  std::optional<CpuMemoryPoolGuard> pool;
  std::optional<CpuMemoryPoolGuard::Stats> poolStats;
  if (!m.device.cuda) pool.emplace();

  try {
    // Inference mode (no autograd bookkeeping) except for classifiers, whose saliency map
    // needs gradients.
    std::optional<c10::InferenceMode> inferenceMode;
    std::optional<torch::NoGradGuard> noGrad;
    if (b.task == Task::Classification) noGrad.emplace();
    else inferenceMode.emplace();

    // ---- Which spatial dimensionality the network takes, and how it is tiled ----
    SlidingWindowParams params = b.inferer.window;
    if (!m.options.roiSize.empty()) params.roiSize = m.options.roiSize;
    if (m.options.overlap) params.overlap = *m.options.overlap;
    if (m.options.swBatchSize) params.swBatchSize = std::max(1, *m.options.swBatchSize);
    if (!m.device.cuda && params.swBatchSize > 1) {
      // Convolutions are parallel inside a window already; batching windows on the CPU buys
      // no speed and multiplies the memory for activations. Same result in eval mode.
      res.log.push_back("windows one at a time on the CPU (sw_batch_size " + std::to_string(params.swBatchSize) + " is for GPUs)");
      params.swBatchSize = 1;
    }
    if (m.options.blend) params.mode = *m.options.blend;
    std::size_t modelDims = 3;
    if (b.inferer.slidingWindow || !m.options.roiSize.empty()) modelDims = params.roiSize.size();
    else if (b.input.spatialShape.size() == 2) modelDims = 2;
    if (modelDims != 2 && modelDims != 3) return Error(ErrorCode::Model, "only 2D and 3D networks are supported", b.root.string());

    // ---- The input as a tensor; a 2D network's plane; evidence; pre-processing ----
    progress.report(0.0, "Preparing the input");
    State s = toState(input, m.torchDevice());
    if (modelDims == 2)
      if (auto st = reformatToPlane(s, b, res.log); !st) return st.error();
    // Per-slice measures of the input itself (HU), before pre-processing changes its units.
    torch::Tensor evidence, diameters;
    const auto& est = b.extras.estimate;
    const bool sized = est && est->sizeReference;
    if (b.extras.sliceEvidence || sized) {
      const std::string extraFile = (b.root / "configs" / "lumen.json").string();
      const std::string what = b.extras.sliceEvidence ? "slice_evidence" : "estimate.size_reference";
      if (modelDims != 2) return Error(ErrorCode::Model, what + " is for classifiers that read 2D slices", extraFile);
      for (const auto& t : b.preprocessing)
        if (!std::holds_alternative<ScaleIntensityRangeT>(t) && !std::holds_alternative<NormalizeIntensityT>(t) &&
            !std::holds_alternative<ScaleIntensityT>(t))
          return Error(ErrorCode::Model,
                       what + " needs the input's own slices; this bundle's pre-processing reorients, resamples or crops them",
                       extraFile);
      if (b.extras.sliceEvidence) evidence = evidenceAreaMm2(s, *b.extras.sliceEvidence);
      if (sized) diameters = waterEquivalentDiametersMm(s);
    }
    if (auto st = preprocess(s, b, res.log); !st) return st.error();
    res.modelGridSize = s.geometry.size;
    res.modelGridAffine = rasAffine(s.geometry);
    if (cancel.isCancelled()) return Error(ErrorCode::Cancelled, "inference cancelled");
    preprocessed = Clock::now();

    Network net;
    net.forward = [&m](const torch::Tensor& x) { return m.forward(x); };
    net.predict = [&m](const torch::Tensor& x) { return m.predict(x); };
    net.deviceName = m.device.name;
    net.cuda = m.device.cuda;

    if (b.task == Task::Classification) {
      if (auto st = classify(s, b, net, modelDims, evidence, diameters, m.options.saliency, input.geometry(), res, progress,
                             cancel);
          !st)
        return st.error();
    } else {
      auto y = runDense(s, b, net, modelDims, params, m.options, res, progress, cancel);
      if (!y) return y.error();
      // The windows are done: the pages they recycled go back before the output is made.
      if (pool) {
        poolStats = pool->stats();
        pool.reset();
      }
      networkDone = Clock::now();
      if (auto st = postprocessAndPlace(*y, s, b, input.geometry(), res, m.options.uncertainty); !st) return st.error();
    }
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    if (msg.find("channels") != std::string::npos || msg.find("shape") != std::string::npos ||
        msg.find("size") != std::string::npos)
      return Error(ErrorCode::Model, "the network rejected its input (" + msg.substr(0, msg.find('\n')) + ")", b.modelPath.string());
    return Error(ErrorCode::Model, "inference failed: " + msg.substr(0, msg.find('\n')), b.modelPath.string());
  } catch (const std::bad_alloc&) {
    return Error(ErrorCode::OutOfMemory, "not enough memory for this input on " + m.device.name, b.modelPath.string());
  } catch (const std::exception& e) {
    return Error(ErrorCode::Model, std::string("inference failed: ") + e.what(), b.modelPath.string());
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  std::ostringstream t;
  const auto secs = [](Clock::time_point from, Clock::time_point to) { return std::chrono::duration<double>(to - from).count(); };
  t.precision(3);
  t << "time: " << res.seconds << " s, of which " << res.forwardSeconds << " s in the network";
  if (networkDone > preprocessed)
    t << " (input " << secs(started, preprocessed) << " s, tiling and stitching "
      << secs(preprocessed, networkDone) - res.forwardSeconds << " s, output " << secs(networkDone, Clock::now()) << " s)";
  res.log.push_back(t.str());
  if (pool) poolStats = pool->stats();
  if (poolStats) {
    const auto& st = *poolStats;
    std::ostringstream p;
    p << "CPU memory pool: " << st.hits << " reuse(s), " << st.misses << " new block(s), at most "
      << (st.peakBytes >> 20) << " MiB of its range used";
    res.log.push_back(p.str());
  }
  for (const auto& l : res.log) LUMEN_INFO("inference: " << l);
  progress.report(1.0, "Done");
  return res;
}

}  // namespace lumen::models
