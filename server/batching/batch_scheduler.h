// Dynamic batching for one model version: a bounded queue, worker threads that
// form batches of one keep rate, and a timer that fails waiting tasks whose
// deadline passes or whose caller went away.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/batching/task.h"
#include "server/batching/task_queue.h"

namespace clca::server {

struct BatchSchedulerOptions {
  // Most images in one forward pass. Larger batches raise throughput on busy
  // servers at the price of latency; on CPUs the gain levels off around 8-16.
  int max_batch_size = 8;
  // How long the oldest waiting request may wait for its batch to fill,
  // measured from when it was queued. Zero runs whatever is waiting as soon as
  // a worker is free; raise it when requests arrive in bursts.
  std::chrono::microseconds max_queue_delay{2000};
  // Requests waiting beyond this are refused with RESOURCE_EXHAUSTED, so that
  // an overloaded server answers quickly instead of queueing without bound.
  int queue_capacity = 256;
  // Threads running batches, each one forward pass at a time. More than one
  // helps when a forward pass cannot use all cores (small models, GPUs).
  int num_workers = 1;
  // Used in thread and log names.
  std::string name = "model";

  // Tests only: the time the queue delay and deadlines are measured on;
  // null: the steady clock.
  Clock* clock = nullptr;
};

class BatchScheduler {
 public:
  // Runs one batch of tasks sharing one keep rate, and completes every one of
  // them (InferenceTask::Finish). Called on a worker thread.
  using ProcessBatchFn =
      std::function<void(std::vector<std::unique_ptr<InferenceTask>> batch, uint64_t batch_id)>;

  struct Hooks {
    // Runs first on each worker thread (e.g. to size LibTorch's thread pool).
    std::function<void()> worker_started;
    // Called with the number of waiting tasks whenever it changes.
    std::function<void(size_t)> queue_depth_changed;
  };

  static absl::StatusOr<std::unique_ptr<BatchScheduler>> Create(
      const BatchSchedulerOptions& options, ProcessBatchFn process, Hooks hooks = {});

  // Fails the tasks still waiting with UNAVAILABLE, lets running batches
  // finish and joins the threads.
  ~BatchScheduler();
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  // Queues `*task` and returns at once. Takes ownership only if it returns OK:
  // RESOURCE_EXHAUSTED when the queue is full.
  absl::Status Schedule(std::unique_ptr<InferenceTask>* task);

  // Asks the timer to drop tasks whose caller went away, now.
  void NotifyCancelled();

  // From now on, run batches as soon as a worker is free instead of waiting
  // for them to fill (used while draining).
  void Flush();

  size_t queue_depth() const;
  const BatchSchedulerOptions& options() const { return options_; }

 private:
  BatchScheduler(const BatchSchedulerOptions& options, ProcessBatchFn process, Hooks hooks);
  void WorkerLoop();
  void TimerLoop();
  void ReportDepth() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const BatchSchedulerOptions options_;
  const ProcessBatchFn process_;
  const Hooks hooks_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  TaskQueue queue_ ABSL_GUARDED_BY(mu_);
  bool flush_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Wakes workers: a task arrived, or a batch may have become ready.
  absl::CondVar work_cv_;
  // Wakes the timer: a new deadline, a cancellation, or stopping.
  absl::CondVar timer_cv_;

  std::vector<std::thread> workers_;
  std::thread timer_;
};

}  // namespace clca::server
