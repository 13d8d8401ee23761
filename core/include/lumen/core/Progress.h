#pragma once
// Progress reporting and cancellation for long work. Every long operation takes a
// Progress and a CancelToken; the GUI implements the sink (queued to its thread), the CLI
// prints or ignores it.

#include <atomic>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace lumen {

/// Shared flag: copies refer to the same state, so the GUI keeps one and a worker another.
class CancelToken {
 public:
  CancelToken() : flag_(std::make_shared<std::atomic<bool>>(false)) {}
  void cancel() const { flag_->store(true, std::memory_order_relaxed); }
  bool isCancelled() const { return flag_->load(std::memory_order_relaxed); }

 private:
  std::shared_ptr<std::atomic<bool>> flag_;
};

/// A progress sink: fraction in [0, 1], or NaN when the total is unknown. The callback may
/// be invoked from worker threads and must be thread-safe. `sub(a, b)` maps [0, 1] of a
/// sub-task onto [a, b] of this one, so nested operations compose.
class Progress {
 public:
  using Callback = std::function<void(double fraction, std::string_view message)>;

  Progress() = default;
  explicit Progress(Callback cb) : cb_(std::make_shared<Callback>(std::move(cb))) {}

  void report(double fraction, std::string_view message = {}) const {
    if (!cb_ || !*cb_) return;
    const double f = std::isnan(fraction) ? fraction : begin_ + (end_ - begin_) * clamp01(fraction);
    (*cb_)(f, message);
  }
  void unknown(std::string_view message = {}) const { report(NAN, message); }

  Progress sub(double begin, double end) const {
    Progress p(*this);
    p.begin_ = begin_ + (end_ - begin_) * clamp01(begin);
    p.end_ = begin_ + (end_ - begin_) * clamp01(end);
    return p;
  }

  bool active() const { return cb_ && *cb_; }

 private:
  static double clamp01(double v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }
  std::shared_ptr<Callback> cb_;
  double begin_ = 0.0, end_ = 1.0;
};

}  // namespace lumen
