// The whole server: model repository, metrics endpoint, request pipeline and
// the gRPC server with the Classifier, health and reflection services.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/api/classifier_service.h"
#include "server/observability/metrics.h"
#include "server/pipeline/classify_pipeline.h"
#include "server/repository/model_repository.h"

namespace clca::server {

struct ServerOptions {
  std::string model_repository;
  // Address the gRPC and metrics ports bind to.
  std::string host = "0.0.0.0";
  // 0 picks a free port.
  int port = 50051;
  int metrics_port = 8080;
  RepositoryOptions repository;
  PipelineOptions pipeline;
  // OpenBLAS's threads, one count for the whole process (see
  // models/threads.h); 0: the fewest intra-op threads of any worker, so that
  // single-threaded workers compute their matrix products side by side.
  int blas_threads = 0;
};

class Server {
 public:
  // Loads every model, then starts serving.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);
  // Stops at once if Shutdown was not called.
  ~Server();

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  const std::string& host() const { return options_.host; }

  // Reports NOT_SERVING, refuses new requests with UNAVAILABLE, answers every
  // request already accepted (waiting at most `drain_timeout`), then stops.
  // Returns whether everything accepted was answered.
  bool Shutdown(absl::Duration drain_timeout);

  const ClassifyPipeline& pipeline() const { return *pipeline_; }

 private:
  explicit Server(const ServerOptions& options) : options_(options) {}

  const ServerOptions options_;
  // Destroyed in reverse order: the pipeline's threads stop before the
  // models they hand tasks to.
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<ClassifyPipeline> pipeline_;
  std::unique_ptr<ClassifierService> service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  int metrics_port_ = 0;
  bool stopped_ = false;
};

}  // namespace clca::server
