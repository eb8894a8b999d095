// A fixed set of threads running closures in arrival order.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace clca::server {

class ThreadPool {
 public:
  struct Options {
    // Number of threads; at least 1.
    int num_threads = 1;
    // Closures waiting beyond this are refused with RESOURCE_EXHAUSTED.
    size_t max_pending = 1024;
    // Runs first on each thread.
    std::function<void()> thread_started;
  };

  explicit ThreadPool(Options options);
  // Refuses new work, runs what is already queued, then joins the threads.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `work` and returns at once; RESOURCE_EXHAUSTED when too much is
  // waiting, UNAVAILABLE once the pool is stopping (then `work` is not run).
  absl::Status Schedule(std::function<void()> work);
  // From now on Schedule refuses work; what is queued still runs.
  void Stop();

 private:
  void Loop();
  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace clca::server
