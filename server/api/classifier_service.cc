#include "server/api/classifier_service.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/api/classify_stream.h"
#include "server/api/convert.h"
#include "server/observability/log_fields.h"

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

// A unary call answered at once with `status`.
grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// A stream refused before it reads anything.
class RefusedStream final
    : public grpc::ServerBidiReactor<v1::ClassifyStreamRequest, v1::ClassifyStreamResponse> {
 public:
  explicit RefusedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
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

absl::Status ClassifierService::Authorize(const grpc::CallbackServerContext& context,
                                          const char* method) const {
  return authorizer_ == nullptr ? absl::OkStatus() : authorizer_->Check(context, method);
}

grpc::ServerUnaryReactor* ClassifierService::Classify(grpc::CallbackServerContext* context,
                                                      const v1::ClassifyRequest* request,
                                                      v1::ClassifyResponse* response) {
  if (absl::Status status = Authorize(*context, "Classify"); !status.ok()) {
    return FinishNow(context, status);
  }
  return new ClassifyReactor(context, request, response, pipeline_);
}

grpc::ServerBidiReactor<v1::ClassifyStreamRequest, v1::ClassifyStreamResponse>*
ClassifierService::ClassifyStream(grpc::CallbackServerContext* context) {
  if (absl::Status status = Authorize(*context, "ClassifyStream"); !status.ok()) {
    return new RefusedStream(ToGrpcStatus(status));
  }
  if (open_streams_.fetch_add(1) >= streams_.max_open_streams) {
    open_streams_.fetch_sub(1);
    return new RefusedStream(ToGrpcStatus(absl::ResourceExhaustedError(absl::StrCat(
        "the server holds ", streams_.max_open_streams,
        " open ClassifyStream calls (--max-open-streams); retry later or use Classify"))));
  }
  return new ClassifyStreamReactor(context, pipeline_, streams_.max_in_flight, &open_streams_);
}

grpc::ServerUnaryReactor* ClassifierService::ListModels(grpc::CallbackServerContext* context,
                                                        const v1::ListModelsRequest* request,
                                                        v1::ListModelsResponse* response) {
  if (absl::Status status = Authorize(*context, "ListModels"); !status.ok()) {
    return FinishNow(context, status);
  }
  for (const VersionStatus& status : repository_->List()) {
    *response->add_models() = DescribeVersion(
        status, repository_->AvailableVersions(status.model), /*with_labels=*/false);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ClassifierService::GetModel(grpc::CallbackServerContext* context,
                                                      const v1::GetModelRequest* request,
                                                      v1::ModelInfo* response) {
  if (absl::Status status = Authorize(*context, "GetModel"); !status.ok()) {
    return FinishNow(context, status);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::optional<int64_t>> version =
      RequestedVersion(request->has_version(), request->version());
  if (!version.ok()) {
    reactor->Finish(ToGrpcStatus(version.status()));
    return reactor;
  }
  // A version asked for by number is described in whatever state it is;
  // otherwise the highest AVAILABLE one.
  int64_t number = 0;
  if (*version) {
    number = **version;
  } else {
    absl::StatusOr<std::shared_ptr<const ServableModel>> servable =
        repository_->Find(request->model(), std::nullopt);
    if (!servable.ok()) {
      reactor->Finish(ToGrpcStatus(servable.status()));
      return reactor;
    }
    number = (*servable)->version();
  }
  absl::StatusOr<std::vector<VersionStatus>> statuses = repository_->ListModel(request->model());
  if (!statuses.ok()) {
    reactor->Finish(ToGrpcStatus(statuses.status()));
    return reactor;
  }
  for (const VersionStatus& status : *statuses) {
    if (status.version != number) continue;
    *response = DescribeVersion(status, repository_->AvailableVersions(request->model()),
                                /*with_labels=*/true);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  reactor->Finish(ToGrpcStatus(absl::NotFoundError(
      absl::StrCat("model \"", ClientText(request->model()), "\" has no version ", number))));
  return reactor;
}

}  // namespace clca::server
