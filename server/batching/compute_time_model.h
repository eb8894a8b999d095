// An online estimate of how long a batch computes, from the batches that
// ran: seconds = fixed + per_gmac * GMACs, fitted by least squares over the
// recent batches (older ones weigh less). Thread-safe.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/batching/clock.h"

namespace clca::server {

class ComputeTimeModel {
 public:
  struct Fit {
    // Seconds every batch costs, whatever its size.
    double fixed = 0;
    // Seconds per billion multiply-accumulates.
    double per_gmac = 0;
    double Seconds(double gmacs) const { return fixed + per_gmac * gmacs; }
  };

  // `decay`: the weight a batch keeps for each later batch (0.98: the last
  // hundred or so count).
  explicit ComputeTimeModel(double decay = 0.98) : decay_(decay) {}

  // One batch of `gmacs` billion multiply-accumulates took `seconds`.
  void Observe(double gmacs, double seconds);

  // The current fit; nullopt before the first batch.
  std::optional<Fit> Current() const;

 private:
  const double decay_;
  mutable absl::Mutex mu_;
  // Weighted sums of 1, x, y, x², xy.
  double w_ ABSL_GUARDED_BY(mu_) = 0;
  double x_ ABSL_GUARDED_BY(mu_) = 0;
  double y_ ABSL_GUARDED_BY(mu_) = 0;
  double xx_ ABSL_GUARDED_BY(mu_) = 0;
  double xy_ ABSL_GUARDED_BY(mu_) = 0;
};

// Requests per second over a sliding window, from their arrival times.
// Thread-safe.
class ArrivalRate {
 public:
  explicit ArrivalRate(Duration window = std::chrono::seconds(2)) : window_(window) {}
  void Record(TimePoint now);
  // Arrivals within the window before `now`, per second.
  double PerSecond(TimePoint now) const;

 private:
  const Duration window_;
  mutable absl::Mutex mu_;
  mutable std::deque<TimePoint> arrivals_ ABSL_GUARDED_BY(mu_);
};

// A keep rate the server may choose, and what one image costs at it.
struct RateCost {
  double keep_rate = 1;
  double gmacs = 0;
};

// Of `rates` (highest keep rate first), the index of the first at which an
// image queued at `now` behind `wait` of work, in a batch of `batch_images`
// like it, would be computed by `deadline`:
// now + wait + fit.Seconds(batch_images * gmacs) <= deadline. nullopt when
// none would. Without a deadline (max()), the first.
std::optional<size_t> ChooseKeepRate(const std::vector<RateCost>& rates,
                                     const ComputeTimeModel::Fit& fit, TimePoint now,
                                     Duration wait, TimePoint deadline, int batch_images = 1);

}  // namespace clca::server
