#include "server/server.h"

#include <algorithm>
#include <pthread.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <fstream>
#include <sstream>
#include <limits>
#include <utility>

#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "models/cpu/threads.h"

namespace clca::server {
namespace {

constexpr const char* kServiceName = "clca.v1.Classifier";
constexpr const char* kControlServiceName = "clca.v1.ModelControl";

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, ": cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is not a PEM file"));
  }
  return text.str();
}

// Plaintext, TLS, or mutual TLS.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const SecurityOptions& s) {
  if (s.tls_cert_file.empty() != s.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (s.tls_cert_file.empty()) {
    if (!s.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
    }
    return grpc::InsecureServerCredentials();
  }
  absl::StatusOr<std::string> cert = ReadPem("--tls-cert", s.tls_cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem("--tls-key", s.tls_key_file);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!s.tls_client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem("--tls-client-ca", s.tls_client_ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

void SetServing(grpc::Server* server, bool serving) {
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(serving);
  health->SetServingStatus(kServiceName, serving);
  health->SetServingStatus(kControlServiceName, serving);
}

}  // namespace

PoolLayout ResolvePoolLayout(const ServerOptions& options) {
  PoolLayout pool;
  int workers = options.workers;
  int threads = options.intra_op_threads;
  if (workers <= 0 || threads <= 0) {
    // What the version directories ask for, when they agree.
    std::set<std::pair<int, int>> asked;
    absl::StatusOr<std::vector<ModelOnDisk>> scan = ScanRepository(options.model_repository);
    if (scan.ok()) {
      for (const ModelOnDisk& model : *scan) {
        for (const VersionOnDisk& version : model.versions) {
          absl::StatusOr<ServingConfig> serving = ReadServingConfig(
              (std::filesystem::path(version.path) / "serving.json").string(),
              options.repository.serving_defaults);
          if (serving.ok() && (serving->workers > 0 || serving->intra_op_threads > 0)) {
            asked.insert({serving->workers, serving->intra_op_threads});
          }
        }
      }
    }
    if (asked.size() == 1) {
      if (workers <= 0) workers = asked.begin()->first;
      if (threads <= 0) threads = asked.begin()->second;
    } else if (asked.size() > 1) {
      spdlog::warn("event=pool_layout reason=\"the serving.json files ask for different "
                   "workers and intra_op_threads; set --workers and --intra-op-threads\"");
    }
  }
  pool.workers = std::max(1, workers);
  pool.intra_op_threads =
      threads > 0 ? threads : std::max(1, HardwareThreads() / pool.workers);
  return pool;
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  std::unique_ptr<Server> server(new Server(options));
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      Credentials(options.security);
  if (!credentials.ok()) return credentials.status();
  if (!options.security.auth_tokens_file.empty()) {
    absl::StatusOr<std::unique_ptr<TokenAuthorizer>> authorizer =
        TokenAuthorizer::FromFile(options.security.auth_tokens_file);
    if (!authorizer.ok()) return authorizer.status();
    server->authorizer_ = *std::move(authorizer);
  }
  absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Create();
  if (!metrics.ok()) return metrics.status();
  server->metrics_ = *std::move(metrics);

  // Only the batch workers compute on several threads. libgomp spins at a
  // barrier only while it manages no more threads than there are cores; a
  // team left by loading on this thread would make every worker's barrier a
  // sleep and a wake-up for the life of the process (docs/BENCHMARKS.md).
  const bool cpu = options.repository.device == "cpu";
  if (cpu) SetIntraOpThreads(1);
  const PoolLayout pool = ResolvePoolLayout(options);
  if (cpu) SetBlasThreads(options.blas_threads > 0 ? options.blas_threads : pool.intra_op_threads);
  BatchScheduler::Options scheduler_options;
  scheduler_options.num_workers = pool.workers;
  scheduler_options.worker_started = [threads = pool.intra_op_threads] {
    pthread_setname_np(pthread_self(), "clca-batch");
    SetIntraOpThreads(threads);
  };
  absl::StatusOr<std::unique_ptr<BatchScheduler>> scheduler =
      BatchScheduler::Create(scheduler_options);
  if (!scheduler.ok()) return scheduler.status();
  server->scheduler_ = *std::move(scheduler);
  RepositoryOptions repository_options = options.repository;
  repository_options.pool = pool;
  absl::StatusOr<std::unique_ptr<ModelRepository>> repository =
      ModelRepository::Open(options.model_repository, repository_options,
                            server->scheduler_.get(), server->metrics_.get());
  if (!repository.ok()) return repository.status();
  server->repository_ = *std::move(repository);
  server->metrics_->SetBlasThreads(BlasThreads());
  server->pipeline_ = std::make_unique<ClassifyPipeline>(
      server->repository_.get(), server->metrics_.get(), options.pipeline);
  if (server->authorizer_ != nullptr) server->authorizer_->set_metrics(server->metrics_.get());
  server->service_ = std::make_unique<ClassifierService>(
      server->repository_.get(), server->pipeline_.get(), server->authorizer_.get(),
      options.streams);
  server->control_ = std::make_unique<ModelControlService>(server->repository_.get(),
                                                           server->authorizer_.get());

  MetricsEndpointOptions metrics_options = options.metrics;
  if (metrics_options.host.empty()) metrics_options.host = options.host;
  absl::StatusOr<int> metrics_port = server->metrics_->Serve(metrics_options);
  if (!metrics_port.ok()) return metrics_port.status();
  server->metrics_port_ = *metrics_port;

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  const std::string address = absl::StrCat(options.host, ":", options.port);
  builder.AddListeningPort(address, *credentials, &server->port_);
  // Room for the largest accepted image plus the rest of the request.
  const int64_t max_message = std::min<int64_t>(options.pipeline.max_image_bytes + (1 << 20),
                                                std::numeric_limits<int>::max());
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message));
  grpc::ResourceQuota quota("clca-server");
  quota.Resize(static_cast<size_t>(options.grpc.memory_bytes));
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.grpc.max_concurrent_streams);
  builder.RegisterService(server->service_.get());
  builder.RegisterService(server->control_.get());
  if (options.security.reflection) {
    server->reflection_ = std::make_unique<ReflectionService>(
        std::vector<std::string>{kServiceName, kControlServiceName, "grpc.health.v1.Health",
                                 "grpc.reflection.v1alpha.ServerReflection"},
        server->authorizer_.get());
    builder.RegisterService(server->reflection_.get());
  }
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve gRPC on ", address,
        options.security.tls_cert_file.empty()
            ? ""
            : " (with TLS: are --tls-cert and --tls-key a matching PEM certificate and key?)"));
  }
  SetServing(server->grpc_server_.get(), true);
  // Health per model: a model is SERVING while it has an AVAILABLE version.
  grpc::HealthCheckServiceInterface* health = server->grpc_server_->GetHealthCheckService();
  server->repository_->SetServingListener([health](const std::string& model, bool serving) {
    if (health != nullptr) health->SetServingStatus(model, serving);
  });
  spdlog::info("event=serving grpc_port={} metrics_port={} versions={} workers={} "
               "intra_op_threads={} blas_threads={} tls={} mutual_tls={} tokens={} reflection={}",
               server->port_, server->metrics_port_, server->repository_->List().size(),
               pool.workers, pool.intra_op_threads, BlasThreads(), !options.security.tls_cert_file.empty(),
               !options.security.tls_client_ca_file.empty(), server->authorizer_ != nullptr,
               options.security.reflection);
  return server;
}

absl::StatusOr<size_t> Server::ReloadTokens() {
  if (authorizer_ == nullptr) return 0;
  return authorizer_->Reload();
}

Server::~Server() {
  if (!stopped_) Shutdown(absl::ZeroDuration());
  // The health service goes with the gRPC server.
  if (repository_ != nullptr) repository_->SetServingListener({});
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
