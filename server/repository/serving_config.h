// How one model version is served: `serving.json` and `labels.txt` of its
// directory in the model repository.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "models/vit/model.h"
#include "server/batching/batch_scheduler.h"

namespace clca::server {

// The keep rates a model version accepts.
struct KeepRatePolicy {
  // Used when a request gives none; absent: the model configuration's.
  std::optional<double> default_rate;
  // Requests outside [min, max] are refused with INVALID_ARGUMENT.
  double min = 0.1;
  double max = 1.0;
  // Set: a request with neither keep_rate nor min_keep_rate is served as if
  // it asked for min_keep_rate = adaptive_min (the server picks the highest
  // keep rate that meets its deadline).
  std::optional<double> adaptive_min;
};

// The forward passes a version runs before it takes calls, so that its first
// real call finds its kernels and buffers ready.
struct WarmUpConfig {
  // false ("warmup": false): the version takes calls once loaded, and its
  // first calls pay for what warm-up would have done.
  bool enabled = true;
  // Empty: 1 and max_batch_size.
  std::vector<int> batch_sizes;
  // Empty: the default keep rate.
  std::vector<double> keep_rates;
};

struct ServingConfig {
  // max_batch_size, max_queue_delay_us, queue_capacity, workers (as
  // max_concurrent_batches), mix_keep_rates. Batches mix keep rates unless
  // serving.json says "mix_keep_rates": false: the model runs them in one
  // mixed forward pass (ClcaModel::ForwardMixed).
  QueueOptions batching = [] {
    QueueOptions options;
    options.mix_keep_rates = true;
    return options;
  }();
  KeepRatePolicy keep_rate;
  // The worker pool's layout this version asks for: workers and LibTorch
  // intra-op threads of each (0: not given). The pool is shared by every
  // version; see PoolLayout in model_repository.h.
  int workers = 0;
  int intra_op_threads = 0;
  // "float32", "bfloat16" or "float16" (also "fp32", "bf16", "fp16").
  // Absent: float16 on a GPU, float32 on the CPU (see PrecisionFor).
  std::optional<Precision> precision;
  // On a GPU: replay CUDA graphs for batches of one keep rate (see
  // clca::BatchRunner); false: every batch runs eagerly. Ignored on the CPU.
  bool cuda_graphs = true;
  WarmUpConfig warmup;
};

// Parses serving.json. Unknown keys and out-of-range values are
// INVALID_ARGUMENT naming them. Fields not given keep `defaults`.
absl::StatusOr<ServingConfig> ParseServingConfig(const nlohmann::json& json,
                                                 const ServingConfig& defaults = {});

// Reads serving.json at `path`; a missing file gives `defaults`.
absl::StatusOr<ServingConfig> ReadServingConfig(const std::string& path,
                                                const ServingConfig& defaults = {});

// Reads labels.txt (one label per line, trailing blank lines ignored). A
// missing file gives "class_<i>"; a file with another count of labels than
// `num_classes` is INVALID_ARGUMENT.
absl::StatusOr<std::vector<std::string>> ReadLabels(const std::string& path, int num_classes);

const char* PrecisionName(Precision precision);

// The precision a version computes in on `device` ("cpu", "cuda", "cuda:N").
Precision PrecisionFor(const ServingConfig& config, const std::string& device);

}  // namespace clca::server
