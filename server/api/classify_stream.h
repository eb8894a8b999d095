// The reactor of one ClassifyStream call: reads requests while earlier ones
// are being classified, writes each answer (or its error) as soon as it is
// ready, and finishes once the client is done and every answer is written.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <unordered_set>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "clca/v1/classifier.grpc.pb.h"
#include "server/pipeline/classify_pipeline.h"

namespace clca::server {

class ClassifyStreamReactor final
    : public grpc::ServerBidiReactor<v1::ClassifyStreamRequest, v1::ClassifyStreamResponse> {
 public:
  // Longest request_id an item may carry.
  static constexpr size_t kMaxRequestIdBytes = 256;

  // Starts reading, with at most `max_in_flight` items read but not yet
  // answered (reading pauses beyond); deletes itself when the call is done,
  // decrementing `open_streams`.
  ClassifyStreamReactor(grpc::CallbackServerContext* context, ClassifyPipeline* pipeline,
                        size_t max_in_flight, std::atomic<int>* open_streams);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override {
    open_streams_->fetch_sub(1);
    delete this;
  }

 private:
  struct Item;
  // What to do once the lock is released: reactor operations must not be
  // started while holding it.
  struct Actions {
    bool read = false;
    bool write = false;
    bool finish = false;
    grpc::Status status;
  };

  void ItemDone(const std::shared_ptr<Item>& item, absl::StatusOr<ClassifyOutput> result);
  bool CanReadLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Plans the next read, write or finish.
  void PlanLocked(Actions* actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run(const Actions& actions);

  ClassifyPipeline* const pipeline_;
  const size_t max_in_flight_;
  std::atomic<int>* const open_streams_;
  const TimePoint deadline_;
  const std::string stream_id_;
  // Filled by the one outstanding read.
  v1::ClassifyStreamRequest read_buffer_;

  absl::Mutex mu_;
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  size_t in_pipeline_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<v1::ClassifyStreamResponse> to_write_ ABSL_GUARDED_BY(mu_);
  // The response being written; stays untouched until OnWriteDone.
  v1::ClassifyStreamResponse write_buffer_;
  std::unordered_set<std::shared_ptr<CancelToken>> tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clca::server
