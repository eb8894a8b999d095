#include "server/batching/thread_pool.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace clca::server {

ThreadPool::ThreadPool(Options options) : options_(std::move(options)) {
  for (int i = 0; i < std::max(1, options_.num_threads); ++i) {
    threads_.emplace_back([this] { Loop(); });
  }
}

ThreadPool::~ThreadPool() {
  Stop();
  for (std::thread& thread : threads_) thread.join();
}

void ThreadPool::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
}

absl::Status ThreadPool::Schedule(std::function<void()> work) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the server is shutting down");
  if (pending_.size() >= options_.max_pending) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many images waiting to be decoded (", pending_.size(), "); retry later"));
  }
  pending_.push_back(std::move(work));
  return absl::OkStatus();
}

bool ThreadPool::HasWorkOrStopping() const { return stopping_ || !pending_.empty(); }

void ThreadPool::Loop() {
  if (options_.thread_started) options_.thread_started();
  while (true) {
    std::function<void()> work;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &ThreadPool::HasWorkOrStopping));
      if (pending_.empty()) return;
      work = std::move(pending_.front());
      pending_.pop_front();
    }
    work();
  }
}

}  // namespace clca::server
