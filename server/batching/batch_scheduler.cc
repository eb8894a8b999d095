#include "server/batching/batch_scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/batching/batch_policy.h"

namespace clca::server {
namespace {

// Batch ids are unique in the process, so responses from different models
// never share one.
std::atomic<uint64_t> next_batch_id{1};

// gRPC cancels a call when its deadline passes, possibly a moment before the
// queue's own timer fires: such a cancellation is the deadline.
constexpr auto kDeadlineSlack = std::chrono::milliseconds(20);

absl::Status ExpiredStatus(const InferenceTask& task, TimePoint now) {
  const auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(now - task.enqueue_time).count();
  if (task.deadline <= now + kDeadlineSlack) {
    return absl::DeadlineExceededError(absl::StrCat(
        "deadline passed after ", waited,
        " ms waiting in the batch queue; allow a longer deadline or send fewer requests"));
  }
  return absl::CancelledError(absl::StrCat("call cancelled after ", waited, " ms in the queue"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<BatchScheduler>> BatchScheduler::Create(
    const BatchSchedulerOptions& options, ProcessBatchFn process, Hooks hooks) {
  if (options.max_batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch_size must be at least 1, got ", options.max_batch_size));
  }
  if (options.queue_capacity < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("queue_capacity must be at least 1, got ", options.queue_capacity));
  }
  if (options.num_workers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("workers must be at least 1, got ", options.num_workers));
  }
  if (options.max_queue_delay.count() < 0) {
    return absl::InvalidArgumentError("max_queue_delay must not be negative");
  }
  if (!process) return absl::InvalidArgumentError("no batch function given");
  return std::unique_ptr<BatchScheduler>(
      new BatchScheduler(options, std::move(process), std::move(hooks)));
}

BatchScheduler::BatchScheduler(const BatchSchedulerOptions& options, ProcessBatchFn process,
                               Hooks hooks)
    : options_(options),
      process_(std::move(process)),
      hooks_(std::move(hooks)),
      clock_(options.clock != nullptr ? options.clock : Clock::Real()),
      queue_(static_cast<size_t>(options.queue_capacity)) {
  for (int i = 0; i < options_.num_workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  timer_ = std::thread([this] { TimerLoop(); });
}

BatchScheduler::~BatchScheduler() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    work_cv_.SignalAll();
    timer_cv_.SignalAll();
  }
  for (std::thread& worker : workers_) worker.join();
  timer_.join();
  std::vector<std::unique_ptr<InferenceTask>> left;
  {
    absl::MutexLock lock(&mu_);
    left = queue_.RemoveAll();
    ReportDepth();
  }
  for (auto& task : left) task->Finish(absl::UnavailableError("the server is shutting down"));
}

absl::Status BatchScheduler::Schedule(std::unique_ptr<InferenceTask>* task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the server is shutting down");
  const bool has_deadline = (*task)->deadline != TimePoint::max();
  absl::Status status = queue_.Push(task, clock_->Now());
  if (!status.ok()) return status;
  ReportDepth();
  work_cv_.Signal();
  if (has_deadline) timer_cv_.Signal();
  return absl::OkStatus();
}

void BatchScheduler::NotifyCancelled() {
  absl::MutexLock lock(&mu_);
  timer_cv_.Signal();
}

void BatchScheduler::Flush() {
  absl::MutexLock lock(&mu_);
  flush_ = true;
  work_cv_.SignalAll();
}

size_t BatchScheduler::queue_depth() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void BatchScheduler::ReportDepth() {
  if (hooks_.queue_depth_changed) hooks_.queue_depth_changed(queue_.size());
}

void BatchScheduler::WorkerLoop() {
  if (hooks_.worker_started) hooks_.worker_started();
  const auto max_batch_size = static_cast<size_t>(options_.max_batch_size);
  while (true) {
    std::vector<std::unique_ptr<InferenceTask>> batch;
    {
      absl::MutexLock lock(&mu_);
      while (batch.empty()) {
        if (stopping_) return;
        BatchDecision decision = DecideNextBatch(queue_, max_batch_size, options_.max_queue_delay,
                                                 clock_->Now(), flush_);
        if (decision.ready) {
          batch = queue_.PopBatch(decision.keep_rate, max_batch_size);
          ReportDepth();
          // Another idle worker may be able to start the next batch.
          if (!queue_.empty()) work_cv_.Signal();
        } else {
          clock_->WaitUntil(&work_cv_, &mu_, decision.wake_at);
        }
      }
    }
    // A caller may have gone away since the task was queued.
    const TimePoint now = clock_->Now();
    auto live = std::stable_partition(batch.begin(), batch.end(), [now](const auto& task) {
      return !task->IsCancelled() && task->deadline > now;
    });
    for (auto it = live; it != batch.end(); ++it) (*it)->Finish(ExpiredStatus(**it, now));
    batch.erase(live, batch.end());
    if (!batch.empty()) process_(std::move(batch), next_batch_id.fetch_add(1));
  }
}

void BatchScheduler::TimerLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    const TimePoint now = clock_->Now();
    std::vector<std::unique_ptr<InferenceTask>> expired = queue_.RemoveExpired(now);
    if (!expired.empty()) {
      ReportDepth();
      // A batch may now be ready or its oldest task gone: let workers look.
      work_cv_.SignalAll();
      mu_.Unlock();
      for (auto& task : expired) task->Finish(ExpiredStatus(*task, now));
      expired.clear();
      mu_.Lock();
      continue;
    }
    const TimePoint next = queue_.EarliestDeadline();
    clock_->WaitUntil(&timer_cv_, &mu_, next);
  }
}

}  // namespace clca::server
