// clca-server: serves the models of a model repository over gRPC.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <map>
#include <regex>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "models/cpu/process_setup.h"
#include "server/server.h"

namespace {

// Written to by the signal handler, read by main: the only work done in the
// handler is one write(2).
int signal_pipe[2] = {-1, -1};

void OnSignal(int signal_number) {
  const int saved_errno = errno;
  const auto byte = static_cast<unsigned char>(signal_number);
  (void)!write(signal_pipe[1], &byte, 1);
  errno = saved_errno;
}

// Handles SIGTERM, SIGINT and SIGHUP on whichever thread they arrive
// (libraries start threads before main, so blocking them in main is not
// enough).
bool InstallSignalHandlers() {
  if (pipe2(signal_pipe, O_CLOEXEC) != 0) return false;
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  return sigaction(SIGTERM, &action, nullptr) == 0 && sigaction(SIGINT, &action, nullptr) == 0 &&
         sigaction(SIGHUP, &action, nullptr) == 0;
}

// Blocks until a signal arrives; returns which.
int WaitForSignal() {
  unsigned char byte = 0;
  while (read(signal_pipe[0], &byte, 1) != 1) {
  }
  return byte;
}

void SetUpLogging(const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("clca-server");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ level=%l %v", spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

}  // namespace

int main(int argc, char** argv) {
  clca::SetUpProcess(argv);
  CLI::App app{"Serves CLCA image classifiers over gRPC"};
  clca::server::ServerOptions options;
  std::string log_level = "info";
  double drain_timeout_s = 30;
  app.add_option("--model-repository", options.model_repository,
                 "Directory of <model>/<version>/ directories")
      ->required();
  app.add_option("--host", options.host, "Address to bind")->capture_default_str();
  app.add_option("--port", options.port, "gRPC port (0: any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app.add_option("--metrics-host", options.metrics.host,
                 "Address the metrics endpoint binds (default: --host)");
  app.add_option("--metrics-port", options.metrics.port,
                 "Prometheus /metrics port (0: any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app.add_option("--device", options.repository.device, "cpu, cuda or cuda:N")
      ->capture_default_str()
      ->check([](const std::string& device) -> std::string {
        static const std::regex pattern("cpu|cuda(:[0-9]+)?");
        return std::regex_match(device, pattern) ? "" : "expected cpu, cuda or cuda:N";
      });
  const std::map<std::string, clca::Precision> precisions = {
      {"float32", clca::Precision::kFloat32}, {"fp32", clca::Precision::kFloat32},
      {"bfloat16", clca::Precision::kBFloat16}, {"bf16", clca::Precision::kBFloat16},
      {"float16", clca::Precision::kFloat16}, {"fp16", clca::Precision::kFloat16}};
  app.add_option("--precision", options.repository.serving_defaults.precision,
                 "float32, bfloat16 or float16: for versions whose serving.json names none "
                 "(default: float16 with --device cuda, float32 on the CPU)")
      ->transform(CLI::CheckedTransformer(precisions, CLI::ignore_case))
      ->option_text("float32|bfloat16|float16");
  app.add_option("--workers", options.workers,
                 "Batch workers shared by every model version (0: what the repository's "
                 "serving.json files ask for when they agree, else 1)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--intra-op-threads", options.intra_op_threads,
                 "LibTorch threads of each batch worker (0: what the serving.json files ask "
                 "for when they agree, else the hardware threads divided among the workers)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  double poll_seconds = 0;
  app.add_option("--repository-poll-seconds", poll_seconds,
                 "Read the model repository again every N seconds, loading new versions and "
                 "unloading removed ones (0: only at start and on ModelControl calls)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--blas-threads", options.blas_threads,
                 "OpenBLAS threads, one count for the whole process (0: the workers' intra-op "
                 "threads)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--preprocess-threads", options.pipeline.preprocess_threads,
                 "Threads decoding images (0: hardware threads)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-image-bytes", options.pipeline.max_image_bytes,
                 "Largest encoded image accepted")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  app.add_option("--max-image-pixels", options.pipeline.max_image_pixels,
                 "Most pixels (width * height, read from the image's header) accepted")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  int64_t pending_decode_mib = options.pipeline.max_pending_decode_bytes >> 20;
  app.add_option("--max-pending-decode-mib", pending_decode_mib,
                 "MiB of images accepted but not yet decoded, at most (beyond: "
                 "RESOURCE_EXHAUSTED)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  int64_t grpc_memory_mib = options.grpc.memory_bytes >> 20;
  app.add_option("--max-grpc-memory-mib", grpc_memory_mib,
                 "MiB gRPC may hold for connections and messages (a resource quota)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 20));
  app.add_option("--max-concurrent-streams", options.grpc.max_concurrent_streams,
                 "Calls at once on one HTTP/2 connection")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-open-streams", options.streams.max_open_streams,
                 "Open ClassifyStream calls at once, server-wide (beyond: RESOURCE_EXHAUSTED)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--stream-max-in-flight", options.streams.max_in_flight,
                 "Items of one ClassifyStream read but not yet answered; reading pauses "
                 "beyond")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--tls-cert", options.security.tls_cert_file,
                 "PEM certificate chain: TLS on the gRPC port (with --tls-key)")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", options.security.tls_key_file, "PEM private key of --tls-cert")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-client-ca", options.security.tls_client_ca_file,
                 "PEM CA bundle: require client certificates it signed (mutual TLS)")
      ->check(CLI::ExistingFile);
  app.add_option("--auth-tokens", options.security.auth_tokens_file,
                 "File of bearer tokens, one per line: every clca.v1 call must carry "
                 "'authorization: Bearer <token>' (health stays open); re-read on SIGHUP")
      ->check(CLI::ExistingFile);
  app.add_option("--reflection", options.security.reflection,
                 "Serve gRPC server reflection (behind the tokens when they are set)")
      ->capture_default_str();
  app.add_option("--drain-timeout", drain_timeout_s,
                 "Seconds to answer accepted requests after SIGTERM/SIGINT")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  CLI11_PARSE(app, argc, argv);
  options.repository.poll_interval =
      std::chrono::milliseconds(static_cast<int64_t>(poll_seconds * 1000));
  options.pipeline.max_pending_decode_bytes = pending_decode_mib << 20;
  options.grpc.memory_bytes = grpc_memory_mib << 20;

  if (!InstallSignalHandlers()) {
    std::cerr << "clca-server: cannot install signal handlers: " << std::strerror(errno)
              << std::endl;
    return 1;
  }
  SetUpLogging(log_level);
  absl::StatusOr<std::unique_ptr<clca::server::Server>> server =
      clca::server::Server::Start(options);
  if (!server.ok()) {
    spdlog::critical("event=startup_failed cause=\"{}\"", std::string(server.status().message()));
    std::cerr << "clca-server: " << server.status().message() << std::endl;
    return 1;
  }
  std::cout << "clca-server listening grpc=" << options.host << ":" << (*server)->port()
            << " metrics="
            << (options.metrics.host.empty() ? options.host : options.metrics.host) << ":"
            << (*server)->metrics_port() << std::endl;

  int signal_number = WaitForSignal();
  while (signal_number == SIGHUP) {
    absl::StatusOr<size_t> tokens = (*server)->ReloadTokens();
    if (tokens.ok()) {
      spdlog::info("event=tokens_reloaded tokens={}", *tokens);
    } else {
      spdlog::error("event=tokens_reload_failed cause=\"{}\" kept=previous",
                    std::string(tokens.status().message()));
    }
    signal_number = WaitForSignal();
  }
  spdlog::info("event=shutdown signal={} drain_timeout_s={}", strsignal(signal_number),
               drain_timeout_s);
  const bool drained = (*server)->Shutdown(absl::Seconds(drain_timeout_s));
  const auto& pipeline = (*server)->pipeline();
  std::cout << "clca-server stopped accepted=" << pipeline.accepted()
            << " answered=" << pipeline.answered() << " drained=" << (drained ? "true" : "false")
            << std::endl;
  server->reset();
  spdlog::shutdown();
  return 0;
}
