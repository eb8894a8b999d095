#include "client/client.h"

#include <fstream>
#include <string>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"

namespace clca {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

std::string ChannelTarget(const std::string& servers) {
  if (servers.find(',') == std::string::npos || servers.find(':') == std::string::npos ||
      servers.find("://") != std::string::npos) {
    return servers;
  }
  std::vector<std::string> addresses;
  bool ipv6 = false;
  size_t start = 0;
  while (start <= servers.size()) {
    size_t end = servers.find(',', start);
    if (end == std::string::npos) end = servers.size();
    std::string address = servers.substr(start, end - start);
    if (address.rfind("localhost:", 0) == 0) address = "127.0.0.1" + address.substr(9);
    ipv6 = ipv6 || (!address.empty() && address[0] == '[');
    if (!address.empty()) addresses.push_back(address);
    start = end + 1;
  }
  std::string target = ipv6 ? "ipv6:" : "ipv4:";
  for (size_t i = 0; i < addresses.size(); ++i) target += (i ? "," : "") + addresses[i];
  return target;
}

std::shared_ptr<grpc::Channel> CreateClientChannel(const std::string& target,
                                                   const ClientOptions& options) {
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  args.SetMaxSendMessageSize(-1);
  if (options.security.UsesTls() && !options.security.target_name_override.empty()) {
    args.SetSslTargetNameOverride(options.security.target_name_override);
  }
  return grpc::CreateCustomChannel(ChannelTarget(target),
                                   MakeChannelCredentials(options.security), args);
}

std::unique_ptr<Client> Client::Create(const std::string& target, const ClientOptions& options) {
  return std::make_unique<Client>(CreateClientChannel(target, options), options);
}

Client::Client(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options)
    : channel_(std::move(channel)),
      options_(options),
      stub_(v1::Classifier::NewStub(channel_)),
      control_stub_(v1::ModelControl::NewStub(channel_)),
      health_stub_(grpc::health::v1::Health::NewStub(channel_)) {}

void Client::PrepareContext(grpc::ClientContext* context) const {
  if (options_.timeout.count() > 0) {
    context->set_deadline(std::chrono::system_clock::now() + options_.timeout);
  }
  AddBearerToken(options_.security.bearer_token, context);
}

absl::StatusOr<v1::ClassifyResponse> Client::Classify(const v1::ClassifyRequest& request) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::ClassifyResponse response;
  grpc::Status status = stub_->Classify(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::ClassifyResponse> Client::Classify(std::string image,
                                                      const ClassifyOptions& options) const {
  v1::ClassifyRequest request;
  request.set_model(options.model);
  if (options.version) request.set_version(*options.version);
  if (options.keep_rate) request.set_keep_rate(*options.keep_rate);
  request.set_top_k(options.top_k);
  request.set_image(std::move(image));
  return Classify(request);
}

absl::StatusOr<v1::ClassifyResponse> Client::ClassifyFile(const std::string& path,
                                                          const ClassifyOptions& options) const {
  absl::StatusOr<std::string> image = ReadFileBytes(path);
  if (!image.ok()) return image.status();
  return Classify(*std::move(image), options);
}

absl::StatusOr<std::vector<v1::ClassifyStreamResponse>> Client::ClassifyBatchStream(
    const std::vector<v1::ClassifyStreamRequest>& requests) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  auto stream = stub_->ClassifyStream(&context);
  // Read on another thread so that neither side stalls on flow control.
  std::vector<v1::ClassifyStreamResponse> responses;
  std::thread reader([&stream, &responses] {
    v1::ClassifyStreamResponse response;
    while (stream->Read(&response)) responses.push_back(response);
  });
  for (const v1::ClassifyStreamRequest& request : requests) {
    if (!stream->Write(request)) break;
  }
  stream->WritesDone();
  reader.join();
  grpc::Status status = stream->Finish();
  if (!status.ok()) return FromGrpcStatus(status);
  return responses;
}

absl::StatusOr<v1::ListModelsResponse> Client::ListModels() const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::ListModelsResponse response;
  grpc::Status status = stub_->ListModels(&context, v1::ListModelsRequest(), &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::ModelInfo> Client::GetModel(const std::string& model,
                                               std::optional<int64_t> version) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::GetModelRequest request;
  request.set_model(model);
  if (version) request.set_version(*version);
  v1::ModelInfo response;
  grpc::Status status = stub_->GetModel(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::ModelControlResponse> Client::ControlModel(
    ControlMethod method, const std::string& model, std::optional<int64_t> version) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::ModelControlRequest request;
  request.set_model(model);
  if (version) request.set_version(*version);
  v1::ModelControlResponse response;
  grpc::Status status = (control_stub_.get()->*method)(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::ModelControlResponse> Client::LoadModel(const std::string& model,
                                                           std::optional<int64_t> version) const {
  return ControlModel(&v1::ModelControl::Stub::Load, model, version);
}

absl::StatusOr<v1::ModelControlResponse> Client::UnloadModel(
    const std::string& model, std::optional<int64_t> version) const {
  return ControlModel(&v1::ModelControl::Stub::Unload, model, version);
}

absl::StatusOr<v1::ModelControlResponse> Client::ReloadModel(
    const std::string& model, std::optional<int64_t> version) const {
  return ControlModel(&v1::ModelControl::Stub::Reload, model, version);
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> Client::CheckHealth(
    const std::string& service) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = health_stub_->Check(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.status();
}

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return std::move(bytes).str();
}

}  // namespace clca
