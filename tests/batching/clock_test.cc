// The fake clock the batching tests run on, and the real one.
#include "server/batching/clock.h"

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"

namespace clca::server {
namespace {

using std::chrono::milliseconds;

TEST(FakeClockTest, StandsStillUntilAdvanced) {
  FakeClock clock;
  const TimePoint start = clock.Now();
  EXPECT_EQ(clock.Now(), start);
  clock.Advance(milliseconds(7));
  EXPECT_EQ(clock.Now() - start, milliseconds(7));
}

TEST(FakeClockTest, WakesAWaiterOnceItsDeadlineComes) {
  FakeClock clock;
  absl::Mutex mu;
  absl::CondVar cv;
  std::atomic<bool> woke{false};
  const TimePoint deadline = clock.Now() + milliseconds(10);
  std::thread waiter([&] {
    absl::MutexLock lock(&mu);
    while (clock.Now() < deadline) clock.WaitUntil(&cv, &mu, deadline);
    woke = true;
  });
  clock.BlockUntilWaiters(1);
  clock.Advance(milliseconds(9));
  EXPECT_FALSE(woke.load());
  clock.Advance(milliseconds(1));
  waiter.join();
  EXPECT_TRUE(woke.load());
  EXPECT_EQ(clock.waiters(), 0u);
}

TEST(FakeClockTest, APassedDeadlineDoesNotWait) {
  FakeClock clock;
  absl::Mutex mu;
  absl::CondVar cv;
  absl::MutexLock lock(&mu);
  clock.WaitUntil(&cv, &mu, clock.Now());
  clock.WaitUntil(&cv, &mu, clock.Now() - milliseconds(1));
  EXPECT_EQ(clock.waiters(), 0u);
}

TEST(FakeClockTest, ASignalStillWakesAWaiter) {
  FakeClock clock;
  absl::Mutex mu;
  absl::CondVar cv;
  bool ready = false;
  std::thread waiter([&] {
    absl::MutexLock lock(&mu);
    while (!ready) clock.WaitUntil(&cv, &mu, clock.Now() + std::chrono::hours(1));
  });
  clock.BlockUntilWaiters(1);
  {
    absl::MutexLock lock(&mu);
    ready = true;
    cv.Signal();
  }
  waiter.join();
  EXPECT_EQ(clock.waiters(), 0u);
}

TEST(RealClockTest, WaitUntilAPassedDeadlineReturns) {
  Clock* clock = Clock::Real();
  absl::Mutex mu;
  absl::CondVar cv;
  absl::MutexLock lock(&mu);
  const TimePoint before = clock->Now();
  clock->WaitUntil(&cv, &mu, before - milliseconds(1));
  EXPECT_GE(clock->Now(), before);
}

}  // namespace
}  // namespace clca::server
