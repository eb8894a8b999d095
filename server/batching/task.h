// One image waiting to be classified, and what classifying it gave.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "server/batching/clock.h"

namespace clca::server {

// The outcome of one image's forward pass.
struct TaskResult {
  // Best first, at most the task's top_k.
  std::vector<int> class_ids;
  std::vector<float> scores;
  // Sequence length coming out of each block.
  std::vector<int64_t> tokens;
  double gmacs = 0;
  int batch_size = 0;
  uint64_t batch_id = 0;
  Duration queue_time{};
  Duration compute_time{};
};

// A preprocessed image on its way through the batch queue. Created by the
// request pipeline, owned by the queue while it waits, then by the batch that
// runs it. `Finish` is called once, by whoever owns it last; a task destroyed
// without an answer answers INTERNAL, so no caller is left waiting.
struct InferenceTask {
  using DoneCallback = std::function<void(absl::StatusOr<TaskResult>)>;

  InferenceTask() = default;
  InferenceTask(const InferenceTask&) = delete;
  InferenceTask& operator=(const InferenceTask&) = delete;
  ~InferenceTask() {
    if (done) {
      Finish(absl::InternalError(
          "the server dropped this request without an answer; see the server log"));
    }
  }

  std::string request_id;
  // [3, input_size, input_size], float32.
  torch::Tensor image;
  // Tasks run only in batches of one keep rate.
  double keep_rate = 1.0;
  int top_k = 5;
  // Set by the batch queue when the task enters it: when, and its place in
  // the order of arrival.
  TimePoint enqueue_time{};
  uint64_t sequence = 0;
  // The call's deadline; max() when it has none.
  TimePoint deadline = TimePoint::max();
  // The compute time this task is expected to add to the server's backlog
  // (0: unknown); see BatchScheduler::Backlog.
  Duration predicted_compute{};
  // A warm-up pass, not a request: left out of the metrics.
  bool warm_up = false;
  // False for a first pass, whose time (building kernels) says nothing of the
  // next ones: left out of the compute-time model.
  bool representative_time = true;
  // Set when the caller has gone away; may be null.
  std::shared_ptr<const std::atomic<bool>> cancelled;
  DoneCallback done;

  bool IsCancelled() const {
    return cancelled != nullptr && cancelled->load(std::memory_order_relaxed);
  }
  void Finish(absl::StatusOr<TaskResult> result) {
    DoneCallback callback = std::move(done);
    done = nullptr;
    if (callback) callback(std::move(result));
  }
};

}  // namespace clca::server
