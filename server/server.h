// The whole server: model repository, metrics endpoint, request pipeline and
// the gRPC server with the Classifier, health and reflection services.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/api/auth.h"
#include "server/api/classifier_service.h"
#include "server/api/model_control_service.h"
#include "server/api/reflection_service.h"
#include "server/observability/metrics.h"
#include "server/pipeline/classify_pipeline.h"
#include "server/repository/model_repository.h"

namespace clca::server {

// Who may call the server, and over what.
struct SecurityOptions {
  // PEM certificate chain and private key: TLS on the gRPC port. Both or
  // neither; neither: plaintext.
  std::string tls_cert_file;
  std::string tls_key_file;
  // PEM CA bundle: clients must present a certificate it signed (mutual
  // TLS). Needs tls_cert_file.
  std::string tls_client_ca_file;
  // One bearer token per line: every clca.v1 call and reflection must carry
  // `authorization: Bearer <token>`; grpc.health.v1 stays open. Re-read by
  // Server::ReloadTokens (SIGHUP). Empty: no token needed.
  std::string auth_tokens_file;
  // Serve grpc.reflection.v1alpha (behind the tokens when they are set).
  bool reflection = true;
};

// What gRPC itself may hold.
struct GrpcLimits {
  // Memory gRPC may use for connections and messages (a resource quota);
  // beyond it, new calls are refused.
  int64_t memory_bytes = int64_t{1} << 30;
  // Calls at once on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS).
  int max_concurrent_streams = 100;
};

struct ServerOptions {
  std::string model_repository;
  // Address the gRPC port binds to.
  std::string host = "0.0.0.0";
  // 0 picks a free port.
  int port = 50051;
  // The Prometheus endpoint: its own address (metrics.host; empty: `host`),
  // port (0 picks a free one), per-connection deadline and connection cap.
  MetricsEndpointOptions metrics;
  RepositoryOptions repository;
  PipelineOptions pipeline;
  SecurityOptions security;
  GrpcLimits grpc;
  StreamLimits streams;
  // The batch workers every model version shares, and the LibTorch intra-op
  // threads of each. 0: what the serving.json files of the repository ask
  // for when they agree (`workers`, `intra_op_threads`), else 1 worker on
  // every core.
  int workers = 0;
  int intra_op_threads = 0;
  // OpenBLAS's threads, one count for the whole process (see
  // models/cpu/threads.h); 0: the workers' intra-op threads, so that
  // single-threaded workers compute their matrix products side by side.
  int blas_threads = 0;
};

// The pool layout `options` asks for, resolved against the repository's
// serving.json files (see ServerOptions::workers).
PoolLayout ResolvePoolLayout(const ServerOptions& options);

class Server {
 public:
  // Loads every model, then starts serving.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);
  // Stops at once if Shutdown was not called.
  ~Server();

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }

  // Reports NOT_SERVING, refuses new requests with UNAVAILABLE, answers every
  // request already accepted (waiting at most `drain_timeout`), then stops.
  // Returns whether everything accepted was answered.
  bool Shutdown(absl::Duration drain_timeout);

  const ClassifyPipeline& pipeline() const { return *pipeline_; }

  // Reads --auth-tokens again; on failure the tokens in use stay. OK and 0
  // when the server needs no tokens.
  absl::StatusOr<size_t> ReloadTokens();

 private:
  explicit Server(const ServerOptions& options) : options_(options) {}

  const ServerOptions options_;
  // Destroyed in reverse order: the pipeline's threads stop before the
  // models they hand tasks to.
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<BatchScheduler> scheduler_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<ClassifyPipeline> pipeline_;
  std::unique_ptr<TokenAuthorizer> authorizer_;
  std::unique_ptr<ClassifierService> service_;
  std::unique_ptr<ModelControlService> control_;
  std::unique_ptr<ReflectionService> reflection_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  int metrics_port_ = 0;
  bool stopped_ = false;
};

}  // namespace clca::server
