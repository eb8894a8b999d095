// A small C++ client of the clca.v1.Classifier and ModelControl services and
// of gRPC health checks, over plaintext or
// TLS, with an optional bearer token. Depends on gRPC and protobuf only.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clca/v1/classifier.grpc.pb.h"
#include "client/security.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace clca {

struct ClientOptions {
  // Deadline of each call; zero means none.
  std::chrono::milliseconds timeout{0};
  // Largest response accepted, in bytes.
  int max_receive_message_bytes = 16 << 20;
  // TLS and the bearer token; the default is plaintext without a token.
  ClientSecurity security;
};

// What to ask of one classification.
struct ClassifyOptions {
  std::string model;
  // Absent: the highest loaded version.
  std::optional<int64_t> version;
  // Absent: the model's default keep rate.
  std::optional<float> keep_rate;
  // 0: the server's default (5).
  int top_k = 0;
};

// The gRPC target for `servers` as Client::Create takes them: comma-separated
// IPv4/IPv6 literals become one "ipv4:"/"ipv6:" target; anything else is
// returned as it is.
std::string ChannelTarget(const std::string& servers);

// The channel Client::Create uses: round_robin over every address of
// `target`, options.security's credentials and TLS server name, and the
// message size limit. The bearer token is not part of the channel: each
// call adds it (see AddBearerToken).
std::shared_ptr<grpc::Channel> CreateClientChannel(const std::string& target,
                                                   const ClientOptions& options = {});

// Converts a gRPC status to an absl::Status (the codes are the same).
absl::Status FromGrpcStatus(const grpc::Status& status);

// Thread-safe: one client may serve many threads.
class Client {
 public:
  // `target` is "host:port", several comma-separated "host:port" addresses
  // (IP literals or localhost), or any gRPC target such as "dns:///name:port".
  // Calls are spread over every address the target names or resolves to
  // (round_robin). The connection is made lazily. `options.security` should
  // pass ValidateClientSecurity (LoadClientSecurity checks it); otherwise
  // the calls fail.
  static std::unique_ptr<Client> Create(const std::string& target,
                                        const ClientOptions& options = {});
  // Uses an existing channel; of options.security only the bearer token
  // applies.
  Client(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options = {});

  absl::StatusOr<v1::ClassifyResponse> Classify(const v1::ClassifyRequest& request) const;
  // Classifies the encoded image `image`.
  absl::StatusOr<v1::ClassifyResponse> Classify(std::string image,
                                                const ClassifyOptions& options) const;
  // Reads the file at `path` and classifies it.
  absl::StatusOr<v1::ClassifyResponse> ClassifyFile(const std::string& path,
                                                    const ClassifyOptions& options) const;

  // Sends `requests` over one ClassifyStream call and returns the responses in
  // the order they arrived. Per-item failures are in each response's status;
  // the returned status is the stream's own.
  absl::StatusOr<std::vector<v1::ClassifyStreamResponse>> ClassifyBatchStream(
      const std::vector<v1::ClassifyStreamRequest>& requests) const;

  absl::StatusOr<v1::ListModelsResponse> ListModels() const;
  absl::StatusOr<v1::ModelInfo> GetModel(const std::string& model,
                                         std::optional<int64_t> version = std::nullopt) const;

  // clca.v1.ModelControl: Load, Unload or Reload `model`'s `version`, or,
  // without a version, the versions the service acts on for the whole model
  // (see classifier.proto). The response lists every version of the model
  // with its state afterwards; a version that failed to load is FAILED in
  // it, with the reason, not an error status.
  absl::StatusOr<v1::ModelControlResponse> LoadModel(
      const std::string& model, std::optional<int64_t> version = std::nullopt) const;
  absl::StatusOr<v1::ModelControlResponse> UnloadModel(
      const std::string& model, std::optional<int64_t> version = std::nullopt) const;
  absl::StatusOr<v1::ModelControlResponse> ReloadModel(
      const std::string& model, std::optional<int64_t> version = std::nullopt) const;

  // grpc.health.v1.Health/Check; `service` "" is the whole server.
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> CheckHealth(
      const std::string& service = "") const;

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  void PrepareContext(grpc::ClientContext* context) const;
  // Calls `method` of the ModelControl stub.
  using ControlMethod = grpc::Status (v1::ModelControl::Stub::*)(
      grpc::ClientContext*, const v1::ModelControlRequest&, v1::ModelControlResponse*);
  absl::StatusOr<v1::ModelControlResponse> ControlModel(ControlMethod method,
                                                        const std::string& model,
                                                        std::optional<int64_t> version) const;

  std::shared_ptr<grpc::Channel> channel_;
  ClientOptions options_;
  std::unique_ptr<v1::Classifier::Stub> stub_;
  std::unique_ptr<v1::ModelControl::Stub> control_stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_stub_;
};

// Reads a whole file (NOT_FOUND if it cannot be opened).
absl::StatusOr<std::string> ReadFileBytes(const std::string& path);

}  // namespace clca
