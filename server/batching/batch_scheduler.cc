#include "server/batching/batch_scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

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

// A task whose batch, started at `now`, is predicted to end at `end`, past
// the task's deadline.
absl::Status PredictedLateStatus(const InferenceTask& task, TimePoint now, TimePoint end) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  return absl::DeadlineExceededError(absl::StrCat(
      "predicted to finish ", duration_cast<milliseconds>(end - task.deadline).count(),
      " ms after the deadline after ", duration_cast<milliseconds>(now - task.enqueue_time).count(),
      " ms in the batch queue; not computed: allow a longer deadline or send fewer requests"));
}

absl::Status ShuttingDown() { return absl::UnavailableError("the server is shutting down"); }

void FinishAll(std::vector<std::unique_ptr<InferenceTask>>* tasks, const absl::Status& status) {
  for (auto& task : *tasks) task->Finish(status);
  tasks->clear();
}

}  // namespace

struct BatchScheduler::QueueState {
  QueueOptions options;
  BatchingPolicy policy;
  ProcessBatchFn process;
  QueueHooks hooks;
  TaskQueue tasks;
  // Tasks that arrived at or before this run at once (max(): draining).
  TimePoint flush_before = TimePoint::min();
  // Removed by its Queue handle: no new tasks, no new batches.
  bool closed = false;
  // Removed from inside one of its batches: the worker erases it after.
  bool erase_when_idle = false;
  int running = 0;
  double last_keep_rate = -1;

  QueueState(const QueueOptions& o, ProcessBatchFn p, QueueHooks h)
      : options(o),
        process(std::move(p)),
        hooks(std::move(h)),
        tasks(static_cast<size_t>(o.queue_capacity)) {
    policy.max_batch_size = static_cast<size_t>(o.max_batch_size);
    policy.max_queue_delay = o.max_queue_delay;
    policy.mix_keep_rates = o.mix_keep_rates;
  }
  void ReportDepth() const {
    if (hooks.queue_depth_changed) hooks.queue_depth_changed(tasks.size());
  }
};

namespace {
// The queue whose batch the current thread is running, if any.
thread_local const void* running_queue = nullptr;
}  // namespace

absl::StatusOr<std::unique_ptr<BatchScheduler>> BatchScheduler::Create(const Options& options) {
  if (options.num_workers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("workers must be at least 1, got ", options.num_workers));
  }
  return std::unique_ptr<BatchScheduler>(new BatchScheduler(options));
}

BatchScheduler::BatchScheduler(const Options& options)
    : options_(options), clock_(options.clock != nullptr ? options.clock : Clock::Real()) {
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
    for (auto& queue : queues_) {
      for (auto& task : queue->tasks.RemoveAll()) left.push_back(std::move(task));
      queue->ReportDepth();
    }
  }
  FinishAll(&left, ShuttingDown());
}

absl::StatusOr<std::unique_ptr<BatchScheduler::Queue>> BatchScheduler::AddQueue(
    const QueueOptions& options, ProcessBatchFn process, QueueHooks hooks) {
  if (options.max_batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch_size must be at least 1, got ", options.max_batch_size));
  }
  if (options.queue_capacity < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("queue_capacity must be at least 1, got ", options.queue_capacity));
  }
  if (options.max_concurrent_batches < 0) {
    return absl::InvalidArgumentError(absl::StrCat("workers must not be negative, got ",
                                                   options.max_concurrent_batches));
  }
  if (options.max_queue_delay.count() < 0) {
    return absl::InvalidArgumentError("max_queue_delay must not be negative");
  }
  if (!process) return absl::InvalidArgumentError("no batch function given");
  auto state = std::make_unique<QueueState>(options, std::move(process), std::move(hooks));
  QueueState* raw = state.get();
  absl::MutexLock lock(&mu_);
  if (flush_) raw->flush_before = TimePoint::max();
  queues_.push_back(std::move(state));
  return std::unique_ptr<Queue>(new Queue(this, raw));
}

void BatchScheduler::FlushAll() {
  absl::MutexLock lock(&mu_);
  flush_ = true;
  for (auto& queue : queues_) queue->flush_before = TimePoint::max();
  work_cv_.SignalAll();
}

size_t BatchScheduler::queue_count() const {
  absl::MutexLock lock(&mu_);
  return queues_.size();
}

BatchScheduler::QueueState* BatchScheduler::TakeBatch(
    TimePoint now, std::vector<std::unique_ptr<InferenceTask>>* batch, TimePoint* wake_at) {
  const size_t n = queues_.size();
  for (size_t k = 0; k < n; ++k) {
    const size_t index = (cursor_ + k) % n;
    QueueState& q = *queues_[index];
    if (q.closed || q.tasks.empty()) continue;
    if (q.options.max_concurrent_batches > 0 && q.running >= q.options.max_concurrent_batches) {
      continue;
    }
    const BatchDecision decision =
        DecideNextBatch(q.tasks, q.policy, now, q.flush_before, q.last_keep_rate);
    if (!decision.ready) {
      *wake_at = std::min(*wake_at, decision.wake_at);
      continue;
    }
    const size_t max_size = q.policy.max_batch_size;
    *batch = q.policy.mix_keep_rates ? q.tasks.PopOldest(max_size)
                                     : q.tasks.PopBatch(decision.keep_rate, max_size);
    q.last_keep_rate = decision.keep_rate;
    cursor_ = index + 1;
    return &q;
  }
  return nullptr;
}

void BatchScheduler::WorkerLoop() {
  if (options_.worker_started) options_.worker_started();
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    const TimePoint now = clock_->Now();
    std::vector<std::unique_ptr<InferenceTask>> batch;
    TimePoint wake_at = TimePoint::max();
    QueueState* queue = TakeBatch(now, &batch, &wake_at);
    if (queue == nullptr) {
      clock_->WaitUntil(&work_cv_, &mu_, wake_at);
      continue;
    }
    ++queue->running;
    queue->ReportDepth();
    Duration predicted{};
    for (const auto& task : batch) predicted += task->predicted_compute;
    const auto running = running_.insert(running_.end(), RunningBatch{now, predicted});
    // Another idle worker may be able to start the next batch.
    work_cv_.Signal();
    mu_.Unlock();
    // A caller may have gone away since the task was queued, and one whose
    // deadline falls before the batch is predicted to end would get its
    // answer too late: neither is computed.
    const TimePoint predicted_end = now + predicted;
    auto live =
        std::stable_partition(batch.begin(), batch.end(), [now, predicted_end](const auto& task) {
          return !task->IsCancelled() && task->deadline > now &&
                 (task->predicted_compute == Duration::zero() ||
                  task->deadline >= predicted_end);
        });
    for (auto it = live; it != batch.end(); ++it) {
      InferenceTask& task = **it;
      task.Finish(task.IsCancelled() || task.deadline <= now
                      ? ExpiredStatus(task, now)
                      : PredictedLateStatus(task, now, predicted_end));
    }
    batch.erase(live, batch.end());
    if (!batch.empty()) {
      const uint64_t batch_id = next_batch_id.fetch_add(1);
      running_queue = queue;
      try {
        queue->process(std::move(batch), batch_id);
      } catch (const std::exception& e) {
        // The batch's tasks, destroyed unanswered, answer INTERNAL.
        if (queue->hooks.batch_failed) queue->hooks.batch_failed(batch_id, e.what());
      } catch (...) {
        if (queue->hooks.batch_failed) queue->hooks.batch_failed(batch_id, "unknown exception");
      }
      running_queue = nullptr;
    }
    mu_.Lock();
    running_.erase(running);
    --queue->running;
    if (queue->erase_when_idle && queue->running == 0) EraseLocked(queue);
    done_cv_.SignalAll();
    work_cv_.Signal();
  }
}

Duration BatchScheduler::Backlog() const {
  const TimePoint now = clock_->Now();
  absl::MutexLock lock(&mu_);
  Duration total{};
  // What the running batches have left, as predicted.
  for (const RunningBatch& running : running_) {
    total += std::max(Duration::zero(), running.predicted - (now - running.start));
  }
  for (const auto& queue : queues_) {
    for (const auto& [keep_rate, group] : queue->tasks.groups()) {
      for (const auto& task : group) total += task->predicted_compute;
    }
  }
  return total;
}

void BatchScheduler::TimerLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    const TimePoint now = clock_->Now();
    std::vector<std::unique_ptr<InferenceTask>> expired;
    TimePoint next = TimePoint::max();
    for (auto& queue : queues_) {
      std::vector<std::unique_ptr<InferenceTask>> gone = queue->tasks.RemoveExpired(now);
      if (!gone.empty()) {
        queue->ReportDepth();
        for (auto& task : gone) expired.push_back(std::move(task));
      }
      next = std::min(next, queue->tasks.EarliestDeadline());
    }
    if (!expired.empty()) {
      // A batch may now be ready or its oldest task gone: let workers look.
      work_cv_.SignalAll();
      mu_.Unlock();
      for (auto& task : expired) task->Finish(ExpiredStatus(*task, now));
      expired.clear();
      mu_.Lock();
      continue;
    }
    clock_->WaitUntil(&timer_cv_, &mu_, next);
  }
}

void BatchScheduler::EraseLocked(QueueState* queue) {
  queues_.erase(std::remove_if(queues_.begin(), queues_.end(),
                               [queue](const auto& q) { return q.get() == queue; }),
                queues_.end());
  cursor_ = 0;
}

void BatchScheduler::RemoveQueue(QueueState* queue) {
  std::vector<std::unique_ptr<InferenceTask>> left;
  {
    absl::MutexLock lock(&mu_);
    queue->closed = true;
    left = queue->tasks.RemoveAll();
    queue->ReportDepth();
    if (running_queue == queue) {
      // Inside one of its own batches: the worker erases it afterwards.
      queue->erase_when_idle = true;
    } else {
      while (queue->running > 0) done_cv_.Wait(&mu_);
      EraseLocked(queue);
    }
  }
  FinishAll(&left, ShuttingDown());
}

BatchScheduler::Queue::~Queue() { scheduler_->RemoveQueue(state_); }

absl::Status BatchScheduler::Queue::Schedule(std::unique_ptr<InferenceTask>* task) {
  BatchScheduler& s = *scheduler_;
  absl::MutexLock lock(&s.mu_);
  if (s.stopping_ || state_->closed) return ShuttingDown();
  const bool has_deadline = (*task)->deadline != TimePoint::max();
  absl::Status status = state_->tasks.Push(task, s.clock_->Now());
  if (!status.ok()) return status;
  state_->ReportDepth();
  s.work_cv_.Signal();
  if (has_deadline) s.timer_cv_.Signal();
  return absl::OkStatus();
}

void BatchScheduler::Queue::NotifyCancelled() {
  absl::MutexLock lock(&scheduler_->mu_);
  scheduler_->timer_cv_.Signal();
}

void BatchScheduler::Queue::Flush() {
  absl::MutexLock lock(&scheduler_->mu_);
  state_->flush_before = TimePoint::max();
  scheduler_->work_cv_.SignalAll();
}

void BatchScheduler::Queue::RunNow() {
  absl::MutexLock lock(&scheduler_->mu_);
  state_->flush_before = std::max(state_->flush_before, scheduler_->clock_->Now());
  scheduler_->work_cv_.SignalAll();
}

size_t BatchScheduler::Queue::depth() const {
  absl::MutexLock lock(&scheduler_->mu_);
  return state_->tasks.size();
}

const QueueOptions& BatchScheduler::Queue::options() const { return state_->options; }

}  // namespace clca::server
