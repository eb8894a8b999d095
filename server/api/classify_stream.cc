#include "server/api/classify_stream.h"

#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "server/api/classifier_service.h"
#include "server/api/convert.h"
#include "server/observability/log_fields.h"

namespace clca::server {

struct ClassifyStreamReactor::Item {
  v1::ClassifyStreamRequest message;
  std::shared_ptr<CancelToken> cancel = std::make_shared<CancelToken>();
};

ClassifyStreamReactor::ClassifyStreamReactor(grpc::CallbackServerContext* context,
                                             ClassifyPipeline* pipeline, size_t max_in_flight,
                                             std::atomic<int>* open_streams)
    : pipeline_(pipeline),
      max_in_flight_(max_in_flight),
      open_streams_(open_streams),
      deadline_(SteadyDeadline(*context)),
      stream_id_(ClassifyPipeline::NewRequestId()) {
  spdlog::debug("event=stream_open stream_id={} peer={}", stream_id_, LogQuoted(context->peer()));
  {
    absl::MutexLock lock(&mu_);
    read_pending_ = true;
  }
  StartRead(&read_buffer_);
}

void ClassifyStreamReactor::OnReadDone(bool ok) {
  Actions actions;
  if (!ok) {
    absl::MutexLock lock(&mu_);
    read_pending_ = false;
    reads_done_ = true;
    PlanLocked(&actions);
  }
  if (!ok) return Run(actions);

  auto item = std::make_shared<Item>();
  item->message = std::move(read_buffer_);
  read_buffer_.Clear();
  {
    absl::MutexLock lock(&mu_);
    read_pending_ = false;
    ++in_pipeline_;
    tokens_.insert(item->cancel);
    PlanLocked(&actions);
  }
  Run(actions);

  if (item->message.request_id().size() > kMaxRequestIdBytes) {
    return ItemDone(item, absl::InvalidArgumentError(absl::StrCat(
                              "request_id is ", item->message.request_id().size(),
                              " bytes; ids have at most ", kMaxRequestIdBytes)));
  }
  CallContext call;
  call.request_id = ClassifyPipeline::NewRequestId();
  call.client_request_id = item->message.request_id();
  call.deadline = deadline_;
  call.cancel = item->cancel;
  pipeline_->Submit(InputFromProto(item->message.request()), std::move(call),
                    [this, item](absl::StatusOr<ClassifyOutput> result) {
                      ItemDone(item, std::move(result));
                    });
}

void ClassifyStreamReactor::ItemDone(const std::shared_ptr<Item>& item,
                                     absl::StatusOr<ClassifyOutput> result) {
  v1::ClassifyStreamResponse response;
  response.set_request_id(item->message.request_id());
  response.mutable_status()->set_code(static_cast<int>(result.status().code()));
  if (result.ok()) {
    OutputToProto(*std::move(result), response.mutable_response());
  } else {
    response.mutable_status()->set_message(std::string(result.status().message()));
  }
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    --in_pipeline_;
    tokens_.erase(item->cancel);
    if (!cancelled_) to_write_.push_back(std::move(response));
    PlanLocked(&actions);
  }
  Run(actions);
}

void ClassifyStreamReactor::OnWriteDone(bool ok) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      // The client is gone: nothing more can be written.
      cancelled_ = true;
      to_write_.clear();
    }
    PlanLocked(&actions);
  }
  Run(actions);
}

void ClassifyStreamReactor::OnCancel() {
  std::vector<std::shared_ptr<CancelToken>> tokens;
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    to_write_.clear();
    if (!read_pending_) reads_done_ = true;
    tokens.assign(tokens_.begin(), tokens_.end());
    PlanLocked(&actions);
  }
  for (const auto& token : tokens) token->Cancel();
  Run(actions);
}

bool ClassifyStreamReactor::CanReadLocked() const {
  return !reads_done_ && !read_pending_ && !cancelled_ &&
         in_pipeline_ + to_write_.size() < max_in_flight_;
}

void ClassifyStreamReactor::PlanLocked(Actions* actions) {
  if (finished_) return;
  if (CanReadLocked()) {
    read_pending_ = true;
    actions->read = true;
  }
  if (!writing_ && !to_write_.empty() && !cancelled_) {
    write_buffer_ = std::move(to_write_.front());
    to_write_.pop_front();
    writing_ = true;
    actions->write = true;
  }
  if (cancelled_ && !read_pending_) reads_done_ = true;
  if (reads_done_ && !read_pending_ && in_pipeline_ == 0 && !writing_ && to_write_.empty()) {
    finished_ = true;
    actions->finish = true;
    actions->status = cancelled_ ? grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled")
                                 : grpc::Status::OK;
    spdlog::debug("event=stream_close stream_id={} cancelled={}", stream_id_, cancelled_);
  }
}

void ClassifyStreamReactor::Run(const Actions& actions) {
  if (actions.read) StartRead(&read_buffer_);
  if (actions.write) StartWrite(&write_buffer_);
  if (actions.finish) Finish(actions.status);
}

}  // namespace clca::server
