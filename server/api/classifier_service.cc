#include "server/api/classifier_service.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/api/classify_stream.h"
#include "server/api/convert.h"

namespace clca::server {
namespace {

// A client-supplied "x-request-id" if it is short and printable, else a new id.
std::string RequestIdFor(const grpc::CallbackServerContext& context) {
  auto it = context.client_metadata().find("x-request-id");
  if (it != context.client_metadata().end()) {
    std::string id(it->second.data(), it->second.size());
    bool printable = !id.empty() && id.size() <= 64;
    for (char c : id) printable = printable && absl::ascii_isgraph(c) && c != '"';
    if (printable) return id;
  }
  return ClassifyPipeline::NewRequestId();
}

class ClassifyReactor final : public grpc::ServerUnaryReactor {
 public:
  ClassifyReactor(grpc::CallbackServerContext* context, const v1::ClassifyRequest* request,
                  v1::ClassifyResponse* response, ClassifyPipeline* pipeline) {
    CallContext call;
    call.request_id = RequestIdFor(*context);
    call.deadline = SteadyDeadline(*context);
    call.cancel = cancel_;
    pipeline->Submit(InputFromProto(*request), std::move(call),
                     [this, response](absl::StatusOr<ClassifyOutput> result) {
                       if (result.ok()) {
                         OutputToProto(*std::move(result), response);
                         Finish(grpc::Status::OK);
                       } else {
                         Finish(ToGrpcStatus(result.status()));
                       }
                     });
  }

  void OnCancel() override { cancel_->Cancel(); }
  void OnDone() override { delete this; }

 private:
  const std::shared_ptr<CancelToken> cancel_ = std::make_shared<CancelToken>();
};

absl::StatusOr<std::optional<int64_t>> RequestedVersion(bool has_version, int64_t version) {
  if (!has_version) return std::optional<int64_t>();
  if (version <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "version must be a positive number, got ", version,
        "; leave it unset for the highest version"));
  }
  return std::optional<int64_t>(version);
}

}  // namespace

TimePoint SteadyDeadline(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return TimePoint::max();
  const auto remaining = deadline - std::chrono::system_clock::now();
  // Deadlines years away are as good as none.
  if (remaining > std::chrono::hours(24 * 365)) return TimePoint::max();
  return Clock::Real()->Now() + std::chrono::duration_cast<Duration>(remaining);
}

grpc::ServerUnaryReactor* ClassifierService::Classify(grpc::CallbackServerContext* context,
                                                      const v1::ClassifyRequest* request,
                                                      v1::ClassifyResponse* response) {
  return new ClassifyReactor(context, request, response, pipeline_);
}

grpc::ServerBidiReactor<v1::ClassifyStreamRequest, v1::ClassifyStreamResponse>*
ClassifierService::ClassifyStream(grpc::CallbackServerContext* context) {
  return new ClassifyStreamReactor(context, pipeline_);
}

grpc::ServerUnaryReactor* ClassifierService::ListModels(grpc::CallbackServerContext* context,
                                                        const v1::ListModelsRequest* request,
                                                        v1::ListModelsResponse* response) {
  for (const ServableModel* servable : repository_->All()) {
    *response->add_models() =
        DescribeModel(*servable, repository_->Versions(servable->name()), /*with_labels=*/false);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ClassifierService::GetModel(grpc::CallbackServerContext* context,
                                                      const v1::GetModelRequest* request,
                                                      v1::ModelInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::optional<int64_t>> version =
      RequestedVersion(request->has_version(), request->version());
  if (!version.ok()) {
    reactor->Finish(ToGrpcStatus(version.status()));
    return reactor;
  }
  absl::StatusOr<const ServableModel*> servable = repository_->Find(request->model(), *version);
  if (!servable.ok()) {
    reactor->Finish(ToGrpcStatus(servable.status()));
    return reactor;
  }
  *response = DescribeModel(**servable, repository_->Versions(request->model()),
                            /*with_labels=*/true);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace clca::server
