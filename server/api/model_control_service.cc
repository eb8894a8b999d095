#include "server/api/model_control_service.h"

#include <optional>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "server/api/convert.h"
#include "server/observability/log_fields.h"

namespace clca::server {

template <typename Operation>
grpc::Status ModelControlService::Run(grpc::ServerContext* context, const char* method,
                                      const v1::ModelControlRequest& request,
                                      v1::ModelControlResponse* response, Operation operation) {
  if (authorizer_ != nullptr) {
    if (absl::Status status = authorizer_->Check(*context, method); !status.ok()) {
      return ToGrpcStatus(status);
    }
  }
  std::optional<int64_t> version;
  if (request.has_version()) {
    if (request.version() <= 0) {
      return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
          "version must be a positive number, got ", request.version(),
          "; leave it unset for every version")));
    }
    version = request.version();
  }
  if (request.model().empty()) {
    return ToGrpcStatus(absl::InvalidArgumentError("model is empty; name a model to control"));
  }
  spdlog::info("event=model_control method={} model={} version={} peer={}", method,
               LogQuoted(request.model(), 128), version.value_or(0), LogQuoted(context->peer()));
  absl::StatusOr<std::vector<VersionStatus>> statuses = operation(request.model(), version);
  if (!statuses.ok()) return ToGrpcStatus(statuses.status());
  const std::vector<int64_t> available = repository_->AvailableVersions(request.model());
  for (const VersionStatus& status : *statuses) {
    *response->add_models() = DescribeVersion(status, available, /*with_labels=*/false);
  }
  return grpc::Status::OK;
}

grpc::Status ModelControlService::Load(grpc::ServerContext* context,
                                       const v1::ModelControlRequest* request,
                                       v1::ModelControlResponse* response) {
  return Run(context, "Load", *request, response,
             [this](const std::string& model, std::optional<int64_t> version) {
               return repository_->Load(model, version);
             });
}

grpc::Status ModelControlService::Unload(grpc::ServerContext* context,
                                         const v1::ModelControlRequest* request,
                                         v1::ModelControlResponse* response) {
  return Run(context, "Unload", *request, response,
             [this](const std::string& model, std::optional<int64_t> version) {
               return repository_->Unload(model, version);
             });
}

grpc::Status ModelControlService::Reload(grpc::ServerContext* context,
                                         const v1::ModelControlRequest* request,
                                         v1::ModelControlResponse* response) {
  return Run(context, "Reload", *request, response,
             [this](const std::string& model, std::optional<int64_t> /*version*/) {
               return repository_->Reload(model);
             });
}

}  // namespace clca::server
