#include "server/batching/clock.h"

#include <algorithm>

#include "absl/time/time.h"

namespace clca::server {
namespace {

class RealClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  void WaitUntil(absl::CondVar* cv, absl::Mutex* mu, TimePoint deadline) override {
    if (deadline == TimePoint::max()) {
      cv->Wait(mu);
      return;
    }
    const Duration left = deadline - Now();
    if (left <= Duration::zero()) return;
    cv->WaitWithTimeout(mu, absl::FromChrono(left));
  }
};

}  // namespace

Clock* Clock::Real() {
  static RealClock* clock = new RealClock();
  return clock;
}

TimePoint FakeClock::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

void FakeClock::WaitUntil(absl::CondVar* cv, absl::Mutex* mu, TimePoint deadline) {
  if (deadline == TimePoint::max()) {
    cv->Wait(mu);
    return;
  }
  Waiter waiter{cv, mu, deadline};
  {
    absl::MutexLock lock(&mu_);
    // Time may have passed the deadline since the caller read it.
    if (deadline <= now_) return;
    waiters_.push_back(&waiter);
  }
  // Advance signals `cv` holding `mu`, which the caller holds until Wait
  // releases it: no wake-up is lost.
  cv->Wait(mu);
  absl::MutexLock lock(&mu_);
  waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), &waiter), waiters_.end());
}

void FakeClock::Advance(Duration by) {
  std::vector<Waiter> due;
  {
    absl::MutexLock lock(&mu_);
    now_ += by;
    for (Waiter* waiter : waiters_) {
      if (waiter->deadline <= now_) due.push_back(*waiter);
    }
  }
  for (const Waiter& waiter : due) {
    absl::MutexLock lock(waiter.mu);
    waiter.cv->SignalAll();
  }
}

void FakeClock::BlockUntilWaiters(size_t count) {
  struct Arg {
    const std::vector<Waiter*>* waiters;
    size_t count;
  } arg{&waiters_, count};
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](Arg* a) { return a->waiters->size() >= a->count; }, &arg));
}

size_t FakeClock::waiters() const {
  absl::MutexLock lock(&mu_);
  return waiters_.size();
}

}  // namespace clca::server
