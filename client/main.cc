// clca-client: classify images, list models and check health of a clca-server.
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/client.h"
#include "client/format.h"

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

  app.add_subcommand("models", "List the loaded models");
  CLI::App* health = app.add_subcommand("health", "Check the server's health");
  std::string service;
  health->add_option("--service", service, "Service name (default: the whole server)");

  CLI11_PARSE(app, argc, argv);

  clca::ClientOptions options;
  options.timeout = std::chrono::milliseconds(timeout_ms);
  std::unique_ptr<clca::Client> client = clca::Client::Create(server, options);

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
