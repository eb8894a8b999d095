// Dynamic batching on one pool of worker threads shared by every model
// version of the process, as TF Serving's shared batch scheduler: each
// version has its own bounded queue, and an idle worker takes the next ready
// batch going round the queues in turn, so no model (and, within a queue, no
// keep rate) waits behind another's steady stream. A timer fails waiting
// tasks whose deadline passes or whose caller went away.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/batching/batch_policy.h"
#include "server/batching/clock.h"
#include "server/batching/task.h"
#include "server/batching/task_queue.h"

namespace clca::server {

// How one model version's requests are batched (serving.json).
struct QueueOptions {
  // Most images in one forward pass. Larger batches raise throughput on busy
  // servers at the price of latency; on CPUs the gain levels off around 8-16.
  int max_batch_size = 8;
  // How long the oldest waiting request may wait for its batch to fill,
  // measured from when it was queued. Zero runs whatever is waiting as soon as
  // a worker is free; raise it when requests arrive in bursts.
  std::chrono::microseconds max_queue_delay{2000};
  // Requests waiting beyond this are refused with RESOURCE_EXHAUSTED, so that
  // an overloaded server answers quickly and one model cannot fill the
  // server's memory at the expense of the others.
  int queue_capacity = 256;
  // Batches of this version computed at once, at most; 0: as many as the
  // pool has workers.
  int max_concurrent_batches = 0;
  // One batch may hold several keep rates (the model runs mixed batches);
  // otherwise each batch has one keep rate.
  bool mix_keep_rates = false;
  // Used in log lines.
  std::string name = "model";
};

class BatchScheduler {
 public:
  struct Options {
    // Threads running batches, each one forward pass at a time.
    int num_workers = 1;
    // Runs first on each worker thread (e.g. to size LibTorch's thread pool).
    std::function<void()> worker_started;
    // Tests only: the time queue delays and deadlines are measured on; null:
    // the steady clock.
    Clock* clock = nullptr;
  };

  // Runs one batch and completes every task of it (InferenceTask::Finish).
  // Called on a worker thread; tasks left unanswered answer INTERNAL.
  using ProcessBatchFn =
      std::function<void(std::vector<std::unique_ptr<InferenceTask>> batch, uint64_t batch_id)>;

  struct QueueHooks {
    // Called with the number of waiting tasks whenever it changes.
    std::function<void(size_t)> queue_depth_changed;
    // Called when the batch function throws; the batch's unanswered tasks
    // answer INTERNAL and the workers go on.
    std::function<void(uint64_t batch_id, const std::string& cause)> batch_failed;
  };

  class Queue;

  static absl::StatusOr<std::unique_ptr<BatchScheduler>> Create(const Options& options);
  // Joins the workers; queues still registered fail their waiting tasks with
  // UNAVAILABLE.
  ~BatchScheduler();
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  // A new queue whose batches `process` runs. INVALID_ARGUMENT for bad
  // options.
  absl::StatusOr<std::unique_ptr<Queue>> AddQueue(const QueueOptions& options,
                                                  ProcessBatchFn process, QueueHooks hooks = {});

  // From now on, run every queue's batches as soon as a worker is free
  // instead of waiting for them to fill (used while draining).
  void FlushAll();

  int num_workers() const { return static_cast<int>(workers_.size()); }
  // The predicted compute time (InferenceTask::predicted_compute) of every
  // task waiting in any queue, and what the running batches have left of
  // theirs: how long the workers are busy, all together, before a task
  // queued now could run.
  Duration Backlog() const;
  size_t queue_count() const;

 private:
  struct QueueState;
  explicit BatchScheduler(const Options& options);
  void WorkerLoop();
  void TimerLoop();
  // Takes the next ready batch going round the queues; null when none.
  QueueState* TakeBatch(TimePoint now, std::vector<std::unique_ptr<InferenceTask>>* batch,
                        TimePoint* wake_at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveQueue(QueueState* queue);
  void EraseLocked(QueueState* queue) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<QueueState>> queues_ ABSL_GUARDED_BY(mu_);
  // Where the next round over the queues starts.
  size_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
  bool flush_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // The running batches' start and predicted compute.
  struct RunningBatch {
    TimePoint start;
    Duration predicted;
  };
  std::list<RunningBatch> running_ ABSL_GUARDED_BY(mu_);
  // Wakes workers: a task arrived, or a batch may have become ready.
  absl::CondVar work_cv_;
  // Wakes the timer: a new deadline, a cancellation, or stopping.
  absl::CondVar timer_cv_;
  // Signalled when a queue's running batches finish.
  absl::CondVar done_cv_;

  std::vector<std::thread> workers_;
  std::thread timer_;
};

// One model version's queue on the shared scheduler.
class BatchScheduler::Queue {
 public:
  // Fails the tasks still waiting with UNAVAILABLE, waits for this queue's
  // running batches (unless called from one of them) and leaves the
  // scheduler: its batch function is not called again.
  ~Queue();
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  // Queues `*task` and returns at once. Takes ownership only if it returns
  // OK: RESOURCE_EXHAUSTED when the queue is full.
  absl::Status Schedule(std::unique_ptr<InferenceTask>* task);
  // Asks the timer to drop tasks whose caller went away, now.
  void NotifyCancelled();
  // Runs this queue's batches as soon as a worker is free from now on.
  void Flush();
  // Runs the tasks waiting now as soon as a worker is free, without waiting
  // for their batches to fill.
  void RunNow();

  size_t depth() const;
  const QueueOptions& options() const;

 private:
  friend class BatchScheduler;
  Queue(BatchScheduler* scheduler, QueueState* state) : scheduler_(scheduler), state_(state) {}

  BatchScheduler* const scheduler_;
  QueueState* const state_;
};

}  // namespace clca::server
