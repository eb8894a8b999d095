#include "server/server.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <utility>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "models/cpu/threads.h"

namespace clca::server {
namespace {

constexpr const char* kServiceName = "clca.v1.Classifier";

void SetServing(grpc::Server* server, bool serving) {
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(serving);
  health->SetServingStatus(kServiceName, serving);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  std::unique_ptr<Server> server(new Server(options));
  absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Create();
  if (!metrics.ok()) return metrics.status();
  server->metrics_ = *std::move(metrics);

  // Only the batch workers compute on several threads. libgomp spins at a
  // barrier only while it manages no more threads than there are cores; a
  // team left by loading on this thread would make every worker's barrier a
  // sleep and a wake-up for the life of the process (docs/BENCHMARKS.md).
  if (options.repository.device == "cpu") SetIntraOpThreads(1);
  absl::StatusOr<std::unique_ptr<ModelRepository>> repository =
      ModelRepository::Load(options.model_repository, options.repository, server->metrics_.get());
  if (!repository.ok()) return repository.status();
  server->repository_ = *std::move(repository);
  if (options.repository.device == "cpu") {
    int blas_threads = options.blas_threads;
    if (blas_threads <= 0) {
      blas_threads = std::numeric_limits<int>::max();
      for (const ServableModel* model : server->repository_->All()) {
        blas_threads = std::min(blas_threads, model->intra_op_threads());
      }
    }
    SetBlasThreads(blas_threads);
  }
  server->metrics_->SetBlasThreads(BlasThreads());
  server->pipeline_ = std::make_unique<ClassifyPipeline>(
      server->repository_.get(), server->metrics_.get(), options.pipeline);
  server->service_ =
      std::make_unique<ClassifierService>(server->repository_.get(), server->pipeline_.get());

  absl::StatusOr<int> metrics_port = server->metrics_->Serve(options.host, options.metrics_port);
  if (!metrics_port.ok()) return metrics_port.status();
  server->metrics_port_ = *metrics_port;

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address = absl::StrCat(options.host, ":", options.port);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &server->port_);
  // Room for the largest accepted image plus the rest of the request.
  const int64_t max_message = std::min<int64_t>(options.pipeline.max_image_bytes + (1 << 20),
                                                std::numeric_limits<int>::max());
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message));
  builder.RegisterService(server->service_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot serve gRPC on ", address));
  }
  SetServing(server->grpc_server_.get(), true);
  spdlog::info("event=serving grpc_port={} metrics_port={} models={} blas_threads={}",
               server->port_, server->metrics_port_, server->repository_->All().size(),
               BlasThreads());
  return server;
}

Server::~Server() {
  if (!stopped_) Shutdown(absl::ZeroDuration());
}

bool Server::Shutdown(absl::Duration drain_timeout) {
  if (stopped_) return true;
  stopped_ = true;
  if (grpc_server_ == nullptr) return true;  // Start failed before serving.
  const absl::Time start = absl::Now();
  SetServing(grpc_server_.get(), false);
  pipeline_->StopAccepting();
  // Queued requests run now instead of waiting for their batches to fill.
  repository_->FlushAll();
  const bool drained = pipeline_->WaitUntilIdle(drain_timeout);
  spdlog::info("event=drained complete={} accepted={} answered={} drain_ms={}", drained,
               pipeline_->accepted(), pipeline_->answered(),
               absl::ToInt64Milliseconds(absl::Now() - start));
  // Open streams get a moment to send what they hold, then are cancelled.
  const absl::Duration grace =
      std::min(absl::Seconds(1), std::max(absl::ZeroDuration(),
                                          drain_timeout - (absl::Now() - start)));
  grpc_server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  grpc_server_->Wait();
  return drained;
}

}  // namespace clca::server
