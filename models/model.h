// A CLCA Vision Transformer: backbone, token reduction, cross-layer cache and
// the cross-layer aggregation head, with the keep rate chosen per call.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "models/checkpoint.h"
#include "models/config.h"

namespace clca {

struct ForwardResult {
  // [batch, num_classes], float32, on the model's device.
  torch::Tensor logits;
  // Sequence length coming out of each block (before that block's cache
  // recovery is appended); for ragged methods the largest in the batch.
  std::vector<int64_t> tokens;
};

// Precision the forward pass computes in. Inputs and logits stay float32.
enum class Precision { kFloat32, kBFloat16, kFloat16 };

struct ModelOptions {
  // Where the weights live and the forward runs ("cpu", "cuda", "cuda:1").
  std::string device = "cpu";
  Precision precision = Precision::kFloat32;
  // Resample the position-embedding grid (bicubic) when the checkpoint was
  // trained at another input size than the configuration asks for.
  bool resize_pos_embed = true;
};

class ClcaModel {
 public:
  // Builds the model and loads `weights`. Missing, unexpected or mis-shaped
  // parameters are an INVALID_ARGUMENT that lists them; parameters known to be
  // unused (e.g. `head.*` beside a CLA head) are ignored.
  static absl::StatusOr<std::unique_ptr<ClcaModel>> Create(const ModelConfig& config,
                                                           const StateDict& weights,
                                                           const ModelOptions& options = {});

  // Builds a model with random weights (for benchmarks and tests).
  static absl::StatusOr<std::unique_ptr<ClcaModel>> CreateRandom(const ModelConfig& config,
                                                                 uint64_t seed,
                                                                 const ModelOptions& options = {});

  ~ClcaModel();
  ClcaModel(const ClcaModel&) = delete;
  ClcaModel& operator=(const ClcaModel&) = delete;

  // Runs images [B, 3, input_size, input_size] (any float dtype, any device) at
  // `keep_rate` (finite, 0 < keep_rate <= 1). Safe to call from many threads at
  // once: no per-call state lives on the model.
  absl::StatusOr<ForwardResult> Forward(const torch::Tensor& images, double keep_rate) const;

  const ModelConfig& config() const;
  const ModelOptions& options() const;
  torch::Device device() const;
  int64_t parameter_count() const;
  // The weights as loaded (float32, in reference names), e.g. for saving.
  StateDict state_dict() const;

 private:
  struct Impl;
  explicit ClcaModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Loads a checkpoint and builds the model: configuration fields not in
// `given_config` are taken from the checkpoint's `args`.
struct LoadedModel {
  std::unique_ptr<ClcaModel> model;
  Checkpoint checkpoint_info;  // state_dict emptied after loading
};
absl::StatusOr<LoadedModel> LoadModel(const std::string& checkpoint_path,
                                      const nlohmann::json& given_config,
                                      const ModelOptions& options = {});

// The message of an exception thrown by LibTorch, without its C++ backtrace.
std::string ExceptionMessage(const std::exception& e);

}  // namespace clca
