// Classification requests as the Classifier service receives them: the bytes
// of a clca.v1.ClassifyRequest, mapped by InputFromProto and submitted to a
// ClassifyPipeline serving a tiny model, which validates the request (model,
// version, keep rate, top_k, raw pixel sizes, image size), decodes and
// preprocesses the image and runs the model. Each run waits for the answer.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "clca/v1/classifier.pb.h"
#include "models/core/config.h"
#include "models/io/safetensors.h"
#include "models/vit/model.h"
#include "server/api/convert.h"
#include "server/batching/batch_scheduler.h"
#include "server/observability/metrics.h"
#include "server/pipeline/classify_pipeline.h"
#include "server/repository/model_repository.h"

namespace {

namespace fs = std::filesystem;

// The model the requests name: 32 x 32 pixels (2 x 2 patches), 3 blocks of
// width 16, 3 classes, EViT + CLCA, so that a forward pass takes microseconds.
constexpr const char* kModelJson = R"({
  "model": "evit_vit_tiny_patch16_224", "input_size": 32, "embed_dim": 16, "depth": 3,
  "num_heads": 2, "num_classes": 3, "reduction_loc": [0], "keep_rate": [0.5],
  "ifa_head": true, "clc": true, "num_clr": 1
})";
// One request at a time, run as soon as it is queued.
constexpr const char* kServingJson = R"({
  "max_batch_size": 1, "max_queue_delay_us": 0, "workers": 1, "intra_op_threads": 1,
  "keep_rate": {"default": 0.5, "min": 0.1, "max": 1.0}
})";
constexpr int kNumClasses = 3;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_request: %s\n", what.c_str());
  std::abort();
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) Fail("cannot write " + path.string());
}

struct Server {
  std::unique_ptr<clca::server::Metrics> metrics;
  std::unique_ptr<clca::server::BatchScheduler> scheduler;
  std::unique_ptr<clca::server::ModelRepository> repository;
  std::unique_ptr<clca::server::ClassifyPipeline> pipeline;
};
Server* server = nullptr;

// A repository with the tiny model as leafnet/1, randomly initialised.
fs::path WriteRepository() {
  const fs::path root = fs::temp_directory_path() / ("clca-fuzz-request-" + std::to_string(getpid()));
  const fs::path version = root / "leafnet" / "1";
  fs::create_directories(version);
  const nlohmann::json given = nlohmann::json::parse(kModelJson);
  absl::StatusOr<clca::ModelConfig> config = clca::ResolveConfig(given);
  if (!config.ok()) Fail(config.status().ToString());
  auto model = clca::ClcaModel::CreateRandom(*config, /*seed=*/1);
  if (!model.ok()) Fail(model.status().ToString());
  absl::Status written =
      clca::WriteSafetensors((version / "model.safetensors").string(), (*model)->state_dict());
  if (!written.ok()) Fail(written.ToString());
  WriteFile(version / "model.json", kModelJson);
  WriteFile(version / "serving.json", kServingJson);
  WriteFile(version / "labels.txt", "alpha\nbeta\ngamma\n");
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  spdlog::set_level(spdlog::level::off);
  torch::set_num_threads(1);
  const fs::path root = WriteRepository();
  server = new Server;
  auto metrics = clca::server::Metrics::Create();
  if (!metrics.ok()) Fail(metrics.status().ToString());
  server->metrics = *std::move(metrics);
  clca::server::BatchScheduler::Options scheduler_options;
  scheduler_options.num_workers = 1;
  auto scheduler = clca::server::BatchScheduler::Create(scheduler_options);
  if (!scheduler.ok()) Fail(scheduler.status().ToString());
  server->scheduler = *std::move(scheduler);
  auto repository = clca::server::ModelRepository::Open(
      root.string(), clca::server::RepositoryOptions{}, server->scheduler.get(),
      server->metrics.get());
  if (!repository.ok()) Fail(repository.status().ToString());
  server->repository = *std::move(repository);
  // Loaded: the files are no longer needed.
  fs::remove_all(root);
  clca::server::PipelineOptions pipeline_options;
  pipeline_options.preprocess_threads = 1;
  // As in fuzz_image: a header may claim any size up to the limit.
  pipeline_options.max_image_pixels = int64_t{4} << 20;
  server->pipeline = std::make_unique<clca::server::ClassifyPipeline>(
      server->repository.get(), server->metrics.get(), pipeline_options);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  clca::v1::ClassifyRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  const clca::server::ClassifyInput input = clca::server::InputFromProto(request);

  absl::Notification answered;
  absl::StatusOr<clca::server::ClassifyOutput> result;
  clca::server::CallContext call;
  call.request_id = "fuzz";
  server->pipeline->Submit(input, std::move(call),
                           [&](absl::StatusOr<clca::server::ClassifyOutput> r) {
                             result = std::move(r);
                             answered.Notify();
                           });
  answered.WaitForNotification();

  if (!result.ok()) {
    // A request is refused for what it asks, never failed by the server.
    const absl::StatusCode code = result.status().code();
    if (code != absl::StatusCode::kInvalidArgument && code != absl::StatusCode::kNotFound) {
      Fail("unexpected error " + result.status().ToString());
    }
    return 0;
  }
  const clca::server::ClassifyOutput& out = *result;
  const int top_k = input.top_k == 0 ? 5 : input.top_k;
  if (out.predictions.empty() ||
      out.predictions.size() > static_cast<size_t>(std::min(top_k, kNumClasses))) {
    Fail("wrong number of predictions");
  }
  for (const clca::server::Prediction& p : out.predictions) {
    if (p.class_id < 0 || p.class_id >= kNumClasses || !(p.score >= 0 && p.score <= 1)) {
      Fail("a prediction is out of range");
    }
  }
  if (!(out.keep_rate >= 0.1 && out.keep_rate <= 1.0)) Fail("keep rate outside the policy");
  clca::v1::ClassifyResponse response;
  clca::server::OutputToProto(out, &response);
  return 0;
}
