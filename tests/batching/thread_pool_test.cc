// The preprocessing pool: bounded, and closed for new work once stopped
// without dropping what it had accepted.
#include "server/batching/thread_pool.h"

#include <atomic>

#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"

namespace clca::server {
namespace {

TEST(ThreadPoolTest, RefusesWorkAfterStopAndRunsWhatItAccepted) {
  std::atomic<int> ran{0};
  absl::Notification release;
  {
    ThreadPool::Options options;
    options.num_threads = 1;
    ThreadPool pool(options);
    // The thread is held by the first closure; the next ones wait.
    ASSERT_TRUE(pool.Schedule([&] {
      release.WaitForNotification();
      ++ran;
    }).ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool.Schedule([&] { ++ran; }).ok());
    pool.Stop();
    const absl::Status refused = pool.Schedule([&] { ran += 100; });
    EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
    release.Notify();
  }
  // Destroyed: every accepted closure ran, the refused one did not.
  EXPECT_EQ(ran.load(), 4);
}

TEST(ThreadPoolTest, TooMuchWaitingIsResourceExhausted) {
  absl::Notification release;
  ThreadPool::Options options;
  options.num_threads = 1;
  options.max_pending = 2;
  ThreadPool pool(options);
  absl::Notification started;
  ASSERT_TRUE(pool.Schedule([&] {
    started.Notify();
    release.WaitForNotification();
  }).ok());
  started.WaitForNotification();
  EXPECT_TRUE(pool.Schedule([] {}).ok());
  EXPECT_TRUE(pool.Schedule([] {}).ok());
  EXPECT_EQ(pool.Schedule([] {}).code(), absl::StatusCode::kResourceExhausted);
  release.Notify();
}

}  // namespace
}  // namespace clca::server
