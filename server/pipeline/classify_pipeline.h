// The path of one classification request, shared by the unary and streaming
// calls: validate, decode on the preprocessing threads, queue for the model's
// batcher, and turn the batch's result into the answer. Also counts accepted
// requests so that shutdown can wait for every one to be answered.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/batching/batch_scheduler.h"
#include "server/batching/clock.h"
#include "server/batching/thread_pool.h"
#include "server/observability/metrics.h"
#include "server/pipeline/classify_request.h"
#include "server/repository/model_repository.h"

namespace clca::server {

struct PipelineOptions {
  // Threads decoding and resizing images; 0: the number of hardware threads.
  int preprocess_threads = 0;
  // Requests waiting for a preprocessing thread beyond this are refused with
  // RESOURCE_EXHAUSTED.
  size_t max_pending_preprocess = 1024;
  // Bytes of images accepted but not yet decoded, at most; a request that
  // would go beyond is refused with RESOURCE_EXHAUSTED.
  int64_t max_pending_decode_bytes = int64_t{256} << 20;
  // Encoded images larger than this are refused (INVALID_ARGUMENT).
  int64_t max_image_bytes = 32 << 20;
  // Images whose width * height (read from the header, before decoding)
  // exceeds this are refused: 25 megapixels holds a 24 MP camera photo.
  int64_t max_image_pixels = 25'000'000;

  // Tests only: the time deadlines and durations are measured on; null: the
  // steady clock.
  Clock* clock = nullptr;
};

// Lets a call's reactor tell the pipeline that its caller went away.
class CancelToken {
 public:
  // Marks the call cancelled and wakes the batcher holding it, if any.
  void Cancel();
  bool cancelled() const { return cancelled_.load(); }
  // A view of the flag for InferenceTask::cancelled.
  static std::shared_ptr<const std::atomic<bool>> Flag(const std::shared_ptr<CancelToken>& token);
  // Called once the request is queued; returns whether it was cancelled
  // meanwhile.
  bool SetQueue(BatchScheduler::Queue* queue);

 private:
  std::atomic<bool> cancelled_{false};
  std::atomic<BatchScheduler::Queue*> queue_{nullptr};
};

// What the pipeline knows of the call a request came in.
struct CallContext {
  // The server's id for the request, written in logs and the response.
  std::string request_id;
  // The client's id, for stream items.
  std::string client_request_id;
  // Set by Submit when left unset.
  TimePoint arrival{};
  TimePoint deadline = TimePoint::max();
  std::shared_ptr<CancelToken> cancel;
};

class ClassifyPipeline {
 public:
  using Done = std::function<void(absl::StatusOr<ClassifyOutput>)>;

  ClassifyPipeline(const ModelRepository* repository, Metrics* metrics,
                   const PipelineOptions& options);
  // Finishes what is being decoded and waits (briefly) for answers still
  // being delivered; call after the last Submit.
  ~ClassifyPipeline();

  // Classifies `input` and calls `done` exactly once, possibly before Submit
  // returns (requests refused outright). The memory `input` points to must
  // stay valid until `done` is called. Never blocks.
  void Submit(ClassifyInput input, CallContext call, Done done);

  // From now on requests are refused with UNAVAILABLE.
  void StopAccepting();
  // Waits until every accepted request has been answered, or `timeout`
  // passes; returns whether all were.
  bool WaitUntilIdle(absl::Duration timeout);

  int64_t accepted() const;
  int64_t answered() const;

  // A new id, unique in the process.
  static std::string NewRequestId();

 private:
  struct Request;
  // Checks the request against its model, filling in the model, keep rate
  // and top_k.
  absl::Status Validate(Request& request) const;
  void Preprocess(std::shared_ptr<Request> request);
  void Complete(Request& request, absl::StatusOr<ClassifyOutput> result);
  bool IdleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return accepted_ == answered_; }
  // An average of the recent decoding times (exponentially weighted).
  void RecordPreprocessTime(Duration took);
  Duration RecentPreprocessTime() const;

  const ModelRepository* repository_;
  Metrics* metrics_;
  const PipelineOptions options_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  int64_t accepted_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t answered_ ABSL_GUARDED_BY(mu_) = 0;
  // Bytes of the images waiting to be decoded.
  int64_t pending_decode_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  Duration recent_preprocess_ ABSL_GUARDED_BY(mu_){};

  std::unique_ptr<ThreadPool> preprocess_pool_;
};

}  // namespace clca::server
