#include "server/api/reflection_service.h"

#include <set>
#include <utility>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include "absl/strings/str_cat.h"
#include "clca/v1/classifier.pb.h"
#include "grpc/health/v1/health.pb.h"
#include "server/api/convert.h"

namespace clca::server {
namespace {

namespace reflection = grpc::reflection::v1alpha;
using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;

// Appends `file` and every file it imports, each once.
void AddFileAndDependencies(const FileDescriptor* file, std::set<std::string>* seen,
                            reflection::FileDescriptorResponse* out) {
  if (!seen->insert(file->name()).second) return;
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  proto.SerializeToString(out->add_file_descriptor_proto());
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFileAndDependencies(file->dependency(i), seen, out);
  }
}

void SetError(grpc::StatusCode code, std::string message,
              reflection::ServerReflectionResponse* response) {
  response->mutable_error_response()->set_error_code(code);
  response->mutable_error_response()->set_error_message(std::move(message));
}

// Reads requests and writes their answers one at a time.
class ReflectionReactor final
    : public grpc::ServerBidiReactor<reflection::ServerReflectionRequest,
                                     reflection::ServerReflectionResponse> {
 public:
  explicit ReflectionReactor(const ReflectionService* service) : service_(service) {
    StartRead(&request_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);
    response_ = service_->Answer(request_);
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::UNKNOWN, "write failed"));
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  const ReflectionService* const service_;
  reflection::ServerReflectionRequest request_;
  reflection::ServerReflectionResponse response_;
};

class RefusedReactor final
    : public grpc::ServerBidiReactor<reflection::ServerReflectionRequest,
                                     reflection::ServerReflectionResponse> {
 public:
  explicit RefusedReactor(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

ReflectionService::ReflectionService(std::vector<std::string> services,
                                     const TokenAuthorizer* authorizer)
    : services_(std::move(services)), authorizer_(authorizer) {
  // The descriptors of the services listed, whether or not the server itself
  // uses their generated code.
  (void)v1::ClassifyRequest::descriptor();
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
}

grpc::ServerBidiReactor<reflection::ServerReflectionRequest,
                        reflection::ServerReflectionResponse>*
ReflectionService::ServerReflectionInfo(grpc::CallbackServerContext* context) {
  if (authorizer_ != nullptr) {
    if (absl::Status status = authorizer_->Check(*context, "ServerReflectionInfo");
        !status.ok()) {
      return new RefusedReactor(ToGrpcStatus(status));
    }
  }
  return new ReflectionReactor(this);
}

reflection::ServerReflectionResponse ReflectionService::Answer(
    const reflection::ServerReflectionRequest& request) const {
  reflection::ServerReflectionResponse response;
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  std::set<std::string> seen;
  switch (request.message_request_case()) {
    case reflection::ServerReflectionRequest::kListServices:
      for (const std::string& name : services_) {
        response.mutable_list_services_response()->add_service()->set_name(name);
      }
      break;
    case reflection::ServerReflectionRequest::kFileByFilename: {
      const FileDescriptor* file = pool->FindFileByName(request.file_by_filename());
      if (file == nullptr) {
        SetError(grpc::StatusCode::NOT_FOUND, "no such file", &response);
      } else {
        AddFileAndDependencies(file, &seen, response.mutable_file_descriptor_response());
      }
      break;
    }
    case reflection::ServerReflectionRequest::kFileContainingSymbol: {
      const FileDescriptor* file =
          pool->FindFileContainingSymbol(request.file_containing_symbol());
      if (file == nullptr) {
        SetError(grpc::StatusCode::NOT_FOUND, "no such symbol", &response);
      } else {
        AddFileAndDependencies(file, &seen, response.mutable_file_descriptor_response());
      }
      break;
    }
    case reflection::ServerReflectionRequest::kFileContainingExtension:
    case reflection::ServerReflectionRequest::kAllExtensionNumbersOfType:
      SetError(grpc::StatusCode::NOT_FOUND, "the server's services use no extensions",
               &response);
      break;
    case reflection::ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
      SetError(grpc::StatusCode::INVALID_ARGUMENT, "empty reflection request", &response);
      break;
  }
  return response;
}

}  // namespace clca::server
