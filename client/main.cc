// clca-client: classify images, list models, load and unload them, check
// health and measure the throughput and latency of a clca-server.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/client.h"
#include "client/format.h"
#include "client/perf.h"
#include "client/perf_report.h"

namespace {

int Fail(const absl::Status& status) {
  std::cerr << "error: " << absl::StatusCodeToString(status.code()) << ": " << status.message()
            << "\n";
  return 1;
}

// With no --model, the server's only model; several models are an error that
// lists them.
absl::StatusOr<std::string> ResolveModel(const clca::Client& client, const std::string& model) {
  if (!model.empty()) return model;
  absl::StatusOr<clca::v1::ListModelsResponse> list = client.ListModels();
  if (!list.ok()) return list.status();
  std::vector<std::string> names;
  for (const auto& m : list->models()) {
    if (names.empty() || names.back() != m.name()) names.push_back(m.name());
  }
  if (names.size() == 1) return names[0];
  return absl::InvalidArgumentError(absl::StrCat(
      "choose a model with --model; the server has: ",
      names.empty() ? std::string("none") : absl::StrJoin(names, ", ")));
}

// The flags of `clca-client perf`; see docs/DEPLOY.md.
struct PerfFlags {
  std::string model;
  int64_t version = 0;
  std::vector<std::string> images;
  bool raw_input = false;
  std::string keep_rates;
  float min_keep_rate = 0;
  std::string concurrency;
  std::string concurrency_range;
  std::string request_rate;
  std::string request_rate_range;
  std::string distribution = "constant";
  int max_threads = 16;
  bool streaming = false;
  int window_ms = 2000;
  int warmup_ms = 0;
  double stability = 0.10;
  int max_windows = 10;
  int deadline_ms = 0;
  int top_k = 0;
  std::string format = "table";
  bool json = false;
  bool csv = false;
  std::string out;
  uint64_t seed = 0;
  bool quiet = false;
  CLI::Option* version_opt = nullptr;
  CLI::Option* deadline_opt = nullptr;
  CLI::Option* min_keep_rate_opt = nullptr;
};

void AddPerfCommand(CLI::App& app, PerfFlags* f) {
  CLI::App* perf = app.add_subcommand(
      "perf", "Measure throughput and latency over concurrency levels or request rates");
  perf->add_option("--model", f->model, "Model name (default: the server's only model)");
  f->version_opt = perf->add_option("--version", f->version, "Model version (default: highest)");
  auto* image = perf->add_option("--image", f->images,
                                 "Image file to send; repeat for several, sent in rotation");
  auto* raw = perf->add_flag("--raw-input", f->raw_input,
                             "Send random pixels of the model's input size as raw input instead "
                             "of encoded images (the server skips decoding and resizing)");
  image->excludes(raw);
  perf->add_option("--keep-rates", f->keep_rates,
                   "Keep-rate mix: rate:weight pairs (0.1:0.5,1.0:0.5), or rates with equal "
                   "weights (0.1,1.0); \"default\" is the model's own (default: only the "
                   "model's default)");
  f->min_keep_rate_opt = perf->add_option(
      "--min-keep-rate", f->min_keep_rate,
      "Let the server choose each request's keep rate: the highest from this one up that "
      "meets the deadline (ClassifyRequest.min_keep_rate); not with --keep-rates");
  auto* concurrency = perf->add_option("--concurrency", f->concurrency,
                                       "Concurrency levels, e.g. 1,2,4,8 (default 1)");
  auto* concurrency_range = perf->add_option(
      "--concurrency-range", f->concurrency_range, "Concurrency levels start:end[:step], linear");
  auto* rate = perf->add_option("--request-rate", f->request_rate,
                                "Fixed request rates per second, e.g. 50,100");
  auto* rate_range = perf->add_option("--request-rate-range", f->request_rate_range,
                                      "Request rates start:end[:step] per second, linear");
  for (CLI::Option* a : {concurrency, concurrency_range, rate, rate_range}) {
    for (CLI::Option* b : {concurrency, concurrency_range, rate, rate_range}) {
      if (a != b) a->excludes(b);
    }
  }
  perf->add_flag("--streaming", f->streaming,
                 "Send over ClassifyStream: each concurrency slot keeps one request in flight "
                 "on its own stream (no per-request deadline)")
      ->excludes(rate)
      ->excludes(rate_range);
  perf->add_option("--request-distribution", f->distribution,
                   "Intervals between requests in request-rate mode")
      ->check(CLI::IsMember({"constant", "poisson"}))
      ->capture_default_str();
  perf->add_option("--max-threads", f->max_threads,
                   "Sending threads in request-rate mode, one request in flight each")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  perf->add_option("--window-ms", f->window_ms, "Measurement window in milliseconds")
      ->check(CLI::Range(1, 3600 * 1000))
      ->capture_default_str();
  perf->add_option("--warmup-ms", f->warmup_ms,
                   "Load before the first window of each point, not measured")
      ->check(CLI::Range(0, 3600 * 1000))
      ->capture_default_str();
  perf->add_option("--stability", f->stability,
                   "A point is stable when the last 3 windows' throughput and p50 latency "
                   "are within this fraction of each other")
      ->check(CLI::Range(1e-6, 10.0))
      ->capture_default_str();
  perf->add_option("--max-windows", f->max_windows, "Windows per point at most")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  f->deadline_opt = perf->add_option("--deadline-ms", f->deadline_ms,
                                     "Deadline of each request in milliseconds "
                                     "(default: --timeout; 0: none)")
                        ->check(CLI::NonNegativeNumber);
  perf->add_option("--top-k", f->top_k, "Number of predictions asked for (default 5)")
      ->check(CLI::NonNegativeNumber);
  auto* format = perf->add_option("--format", f->format, "Output format")
                     ->check(CLI::IsMember({"table", "json", "csv"}))
                     ->capture_default_str();
  auto* json = perf->add_flag("--json", f->json, "Same as --format json");
  auto* csv = perf->add_flag("--csv", f->csv, "Same as --format csv");
  json->excludes(csv)->excludes(format);
  csv->excludes(format);
  perf->add_option("--out", f->out, "Write the results to this file instead of stdout");
  perf->add_option("--seed", f->seed, "Seed of the keep-rate draws and Poisson intervals")
      ->capture_default_str();
  perf->add_flag("--quiet", f->quiet, "No progress lines on stderr");
}

int FlagError(const std::string& flag, const absl::Status& status) {
  return Fail(absl::InvalidArgumentError(absl::StrCat(flag, ": ", status.message())));
}

// Exit code 0: every request succeeded; 1: bad flags, unreadable image, no
// server; 2: the sweep ran and some requests failed (counted in the results).
int RunPerfCommand(const PerfFlags& f, const std::string& server,
                   const clca::ClientOptions& client_options) {
  const int timeout_ms = static_cast<int>(client_options.timeout.count());
  namespace perf = clca::perf;
  perf::PerfOptions options;
  if (!f.keep_rates.empty()) {
    absl::StatusOr<std::vector<perf::KeepRateShare>> mix = perf::ParseKeepRateMix(f.keep_rates);
    if (!mix.ok()) return FlagError("--keep-rates", mix.status());
    options.keep_rates = *std::move(mix);
  }
  if (*f.min_keep_rate_opt) {
    if (!f.keep_rates.empty()) {
      return FlagError("--min-keep-rate",
                       absl::InvalidArgumentError(
                           "the server chooses each request's keep rate from the minimum; give "
                           "--min-keep-rate or --keep-rates, not both"));
    }
    if (!(f.min_keep_rate > 0 && f.min_keep_rate <= 1)) {
      return FlagError("--min-keep-rate",
                       absl::InvalidArgumentError(absl::StrCat(
                           "a keep rate must be in (0, 1], got ", f.min_keep_rate)));
    }
    options.min_keep_rate = f.min_keep_rate;
  }
  if (!f.concurrency.empty()) {
    absl::StatusOr<std::vector<int>> levels = perf::ParseConcurrencyList(f.concurrency);
    if (!levels.ok()) return FlagError("--concurrency", levels.status());
    options.concurrency = *std::move(levels);
  }
  if (!f.concurrency_range.empty()) {
    absl::StatusOr<std::vector<int>> levels = perf::ParseConcurrencyRange(f.concurrency_range);
    if (!levels.ok()) return FlagError("--concurrency-range", levels.status());
    options.concurrency = *std::move(levels);
  }
  if (!f.request_rate.empty()) {
    absl::StatusOr<std::vector<double>> rates = perf::ParseRateList(f.request_rate);
    if (!rates.ok()) return FlagError("--request-rate", rates.status());
    options.request_rates = *std::move(rates);
  }
  if (!f.request_rate_range.empty()) {
    absl::StatusOr<std::vector<double>> rates = perf::ParseRateRange(f.request_rate_range);
    if (!rates.ok()) return FlagError("--request-rate-range", rates.status());
    options.request_rates = *std::move(rates);
  }
  options.distribution = f.distribution == "poisson" ? perf::Distribution::kPoisson
                                                     : perf::Distribution::kConstant;
  options.max_threads = f.max_threads;
  options.streaming = f.streaming;
  options.window = std::chrono::milliseconds(f.window_ms);
  options.warmup = std::chrono::milliseconds(f.warmup_ms);
  options.stability = f.stability;
  options.max_windows = f.max_windows;
  options.deadline = std::chrono::milliseconds(*f.deadline_opt ? f.deadline_ms : timeout_ms);
  if (timeout_ms > 0) options.connect_timeout = std::chrono::milliseconds(timeout_ms);
  options.top_k = f.top_k;
  options.seed = f.seed;
  if (*f.version_opt) options.version = f.version;
  const std::string format = f.json ? "json" : f.csv ? "csv" : f.format;

  for (const std::string& path : f.images) {
    absl::StatusOr<std::string> image = clca::ReadFileBytes(path);
    if (!image.ok()) return Fail(image.status());
    options.images.push_back(*std::move(image));
  }
  if (options.images.empty() && !f.raw_input) {
    return Fail(absl::InvalidArgumentError("give --image FILE or --raw-input"));
  }
  options.bearer_token = client_options.security.bearer_token;
  std::unique_ptr<clca::Client> client = clca::Client::Create(server, client_options);
  absl::StatusOr<std::string> model = ResolveModel(*client, f.model);
  if (!model.ok()) return Fail(model.status());
  options.model = *model;
  if (f.raw_input) {
    absl::StatusOr<clca::v1::ModelInfo> info =
        client->GetModel(options.model, options.version);
    if (!info.ok()) return Fail(info.status());
    options.raw_images = perf::RandomRawImages(info->input_size(), 4, f.seed);
  }

  absl::StatusOr<perf::PerfReport> report =
      perf::RunPerf(client->channel(), options, [&f](const perf::PerfPoint& point) {
        if (!f.quiet) std::cerr << perf::DescribePoint(point) << "\n";
      });
  if (!report.ok()) return Fail(report.status());

  const perf::ReportContext context{server, options.model, options.version, options.keep_rates,
                                    options.min_keep_rate};
  const std::string text = format == "json"  ? perf::PerfJson(context, *report)
                           : format == "csv" ? perf::PerfCsv(context, *report)
                                             : perf::FormatPerfTable(context, *report);
  if (f.out.empty()) {
    std::cout << text << std::flush;
  } else {
    std::ofstream out(f.out, std::ios::binary);
    out << text;
    out.close();
    if (!out) return Fail(absl::PermissionDeniedError(absl::StrCat("cannot write ", f.out)));
  }
  for (const perf::PerfPoint& point : report->results) {
    if (point.error_count > 0) return 2;
  }
  return 0;
}

// The flags of `clca-client load`, `unload` and `reload`.
struct ControlFlags {
  CLI::App* command = nullptr;
  std::string model;
  int64_t version = 0;
  bool json = false;
  CLI::Option* version_opt = nullptr;
};

void AddControlCommand(CLI::App& app, const std::string& name, const std::string& description,
                       ControlFlags* f) {
  f->command = app.add_subcommand(name, description);
  f->command->add_option("--model", f->model, "Model name")->required();
  f->version_opt = f->command->add_option("--version", f->version,
                                          "Model version (default: the whole model)");
  f->command->add_flag("--json", f->json, "The response as one JSON object");
}

// Prints every version of the model after the call. Exit code 0: done;
// 1: the call failed; 2: the call returned but the version it acted on (or,
// without --version, any version) is FAILED.
int RunControlCommand(const clca::Client& client, const std::string& name,
                      const ControlFlags& f) {
  std::optional<int64_t> version;
  if (*f.version_opt) version = f.version;
  const absl::StatusOr<clca::v1::ModelControlResponse> response =
      name == "load"     ? client.LoadModel(f.model, version)
      : name == "unload" ? client.UnloadModel(f.model, version)
                         : client.ReloadModel(f.model, version);
  if (!response.ok()) return Fail(response.status());
  std::cout << (f.json ? clca::MessageJson(*response) + "\n"
                       : clca::FormatModelControlResponse(*response))
            << std::flush;
  for (const clca::v1::ModelInfo& info : response->models()) {
    if (info.state() == clca::v1::MODEL_STATE_FAILED &&
        (!version || info.version() == *version)) {
      return 2;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Client of the CLCA image classification service"};
  app.require_subcommand(1);
  // Options of the parent are accepted after the subcommand too.
  app.fallthrough();
  std::string server = "localhost:50051";
  int timeout_ms = 0;
  app.add_option("--server", server, "host:port of the clca-server; several comma-separated addresses or dns:///name:port spread calls over every server (round_robin)")->capture_default_str();
  app.add_option("--timeout", timeout_ms, "Deadline of each call in milliseconds (0: none)")
      ->check(CLI::NonNegativeNumber);
  clca::ClientSecurityFiles security;
  app.add_flag("--tls", security.tls,
               "Use TLS, verifying the server against the default root certificates");
  app.add_option("--tls-ca", security.tls_ca,
                 "PEM root certificates to verify the server with; implies TLS");
  app.add_option("--tls-cert", security.tls_cert,
                 "PEM client certificate for mutual TLS (with --tls-key)");
  app.add_option("--tls-key", security.tls_key, "PEM private key of --tls-cert");
  app.add_option("--tls-server-name", security.tls_server_name,
                 "Name to check the server's certificate against instead of the host of "
                 "--server, e.g. when connecting to an IP address");
  app.add_option("--token-file", security.token_file,
                 std::string("File whose first non-empty line is a bearer token, sent as "
                             "'authorization: Bearer <token>' with every call (default: $") +
                     clca::kTokenEnvironmentVariable + ")");

  CLI::App* classify = app.add_subcommand("classify", "Classify image files");
  std::vector<std::string> files;
  std::string model;
  int64_t version = 0;
  float keep_rate = 0;
  int top_k = 0;
  bool json = false;
  classify->add_option("files", files, "JPEG, PNG, WebP or BMP files")->required();
  classify->add_option("--model", model, "Model name (default: the server's only model)");
  auto* version_opt = classify->add_option("--version", version, "Model version (default: highest)");
  auto* keep_rate_opt =
      classify->add_option("--keep-rate", keep_rate, "Keep rate (default: the model's)");
  classify->add_option("--top-k", top_k, "Number of predictions (default 5)");
  classify->add_flag("--json", json, "One JSON object per file");

  app.add_subcommand("models", "List the model versions and their states");
  CLI::App* health = app.add_subcommand("health", "Check the server's health");
  std::string service;
  health->add_option("--service", service, "Service name (default: the whole server)");

  PerfFlags perf_flags;
  AddPerfCommand(app, &perf_flags);

  std::map<std::string, ControlFlags> control;
  AddControlCommand(app, "load",
                    "Load a model version (default: those its version policy selects) and wait "
                    "until it is AVAILABLE or FAILED",
                    &control["load"]);
  AddControlCommand(app, "unload",
                    "Stop serving a model version (default: every version) once its calls are "
                    "answered",
                    &control["unload"]);
  AddControlCommand(app, "reload",
                    "Read a model's directory again: load new and changed versions, unload "
                    "removed ones",
                    &control["reload"]);

  CLI11_PARSE(app, argc, argv);

  clca::ClientOptions options;
  options.timeout = std::chrono::milliseconds(timeout_ms);
  if (const char* token = std::getenv(clca::kTokenEnvironmentVariable)) {
    security.token_from_environment = token;
  }
  absl::StatusOr<clca::ClientSecurity> loaded = clca::LoadClientSecurity(security);
  if (!loaded.ok()) return Fail(loaded.status());
  options.security = *std::move(loaded);

  if (app.got_subcommand("perf")) return RunPerfCommand(perf_flags, server, options);

  std::unique_ptr<clca::Client> client = clca::Client::Create(server, options);
  for (const auto& [name, flags] : control) {
    if (flags.command->parsed()) return RunControlCommand(*client, name, flags);
  }

  if (app.got_subcommand("models")) {
    absl::StatusOr<clca::v1::ListModelsResponse> list = client->ListModels();
    if (!list.ok()) return Fail(list.status());
    std::cout << clca::FormatModelList(*list);
    return 0;
  }
  if (app.got_subcommand("health")) {
    auto status = client->CheckHealth(service);
    if (!status.ok()) return Fail(status.status());
    std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(*status) << "\n";
    return *status == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
  }

  absl::StatusOr<std::string> resolved = ResolveModel(*client, model);
  if (!resolved.ok()) return Fail(resolved.status());
  clca::ClassifyOptions request;
  request.model = *resolved;
  if (*version_opt) request.version = version;
  if (*keep_rate_opt) request.keep_rate = keep_rate;
  request.top_k = top_k;
  int exit_code = 0;
  for (const std::string& file : files) {
    absl::StatusOr<clca::v1::ClassifyResponse> response = client->ClassifyFile(file, request);
    if (!response.ok()) {
      std::cerr << file << ": ";
      exit_code = Fail(response.status());
      continue;
    }
    std::cout << (json ? clca::ClassifyResponseJson(file, *response) + "\n"
                       : clca::FormatClassifyResponse(file, *response));
  }
  std::cout.flush();
  return exit_code;
}
