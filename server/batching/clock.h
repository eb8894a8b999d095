// The time batching runs on: the steady clock in the server, a clock moved by
// hand in tests, so that timing behaviour is tested without sleeping.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace clca::server {

using TimePoint = std::chrono::steady_clock::time_point;
using Duration = std::chrono::steady_clock::duration;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  // Waits on `cv` (the caller holds `mu`) until it is signalled or Now()
  // reaches `deadline` (max(): no deadline). May return early, as any
  // condition wait may: callers check their condition again.
  virtual void WaitUntil(absl::CondVar* cv, absl::Mutex* mu, TimePoint deadline) = 0;

  // The process's steady clock.
  static Clock* Real();
};

// A clock that stands still until Advance moves it. Threads waiting on it
// with a deadline are woken once time reaches their deadline.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint() + std::chrono::hours(1)) : now_(start) {}

  TimePoint Now() const override;
  void WaitUntil(absl::CondVar* cv, absl::Mutex* mu, TimePoint deadline) override;

  // Moves time forward and wakes the waiters whose deadline has come.
  void Advance(Duration by);
  // Blocks until at least `count` threads wait with a deadline (after this
  // returns, an Advance past their deadline wakes them).
  void BlockUntilWaiters(size_t count);
  // Threads waiting with a deadline now.
  size_t waiters() const;

 private:
  struct Waiter {
    absl::CondVar* cv;
    absl::Mutex* mu;
    TimePoint deadline;
  };

  mutable absl::Mutex mu_;
  TimePoint now_ ABSL_GUARDED_BY(mu_);
  std::vector<Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clca::server
