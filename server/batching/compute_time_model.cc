#include "server/batching/compute_time_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace clca::server {

void ComputeTimeModel::Observe(double gmacs, double seconds) {
  if (!std::isfinite(gmacs) || !std::isfinite(seconds) || gmacs < 0 || seconds < 0) return;
  absl::MutexLock lock(&mu_);
  w_ = w_ * decay_ + 1;
  x_ = x_ * decay_ + gmacs;
  y_ = y_ * decay_ + seconds;
  xx_ = xx_ * decay_ + gmacs * gmacs;
  xy_ = xy_ * decay_ + gmacs * seconds;
}

std::optional<ComputeTimeModel::Fit> ComputeTimeModel::Current() const {
  absl::MutexLock lock(&mu_);
  if (w_ == 0) return std::nullopt;
  const double mean_x = x_ / w_, mean_y = y_ / w_;
  const double var_x = xx_ / w_ - mean_x * mean_x;
  Fit fit;
  // Batches of (nearly) one size: all of the time is put on the work, which
  // over-estimates smaller batches rather than under-estimating larger ones.
  if (var_x > 1e-6 * std::max(mean_x * mean_x, 1e-12)) {
    fit.per_gmac = (xy_ / w_ - mean_x * mean_y) / var_x;
    fit.fixed = mean_y - fit.per_gmac * mean_x;
  }
  if (fit.per_gmac <= 0 || fit.fixed < 0) {
    fit.fixed = 0;
    fit.per_gmac = mean_x > 0 ? mean_y / mean_x : 0;
    if (mean_x <= 0) fit.fixed = mean_y;
  }
  return fit;
}

void ArrivalRate::Record(TimePoint now) {
  absl::MutexLock lock(&mu_);
  arrivals_.push_back(now);
  while (!arrivals_.empty() && arrivals_.front() <= now - window_) arrivals_.pop_front();
}

double ArrivalRate::PerSecond(TimePoint now) const {
  absl::MutexLock lock(&mu_);
  while (!arrivals_.empty() && arrivals_.front() <= now - window_) arrivals_.pop_front();
  return static_cast<double>(arrivals_.size()) / std::chrono::duration<double>(window_).count();
}

std::optional<size_t> ChooseKeepRate(const std::vector<RateCost>& rates,
                                     const ComputeTimeModel::Fit& fit, TimePoint now,
                                     Duration wait, TimePoint deadline, int batch_images) {
  if (rates.empty()) return std::nullopt;
  if (deadline == TimePoint::max()) return 0;
  const double left = std::chrono::duration<double>(deadline - now).count() -
                      std::chrono::duration<double>(wait).count();
  for (size_t i = 0; i < rates.size(); ++i) {
    if (fit.Seconds(std::max(1, batch_images) * rates[i].gmacs) <= left) return i;
  }
  return std::nullopt;
}

}  // namespace clca::server
