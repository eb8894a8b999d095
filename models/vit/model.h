// A CLCA Vision Transformer: backbone, token reduction, cross-layer cache and
// the cross-layer aggregation head, with the keep rate chosen per call.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "models/core/config.h"
#include "models/core/state_dict.h"

namespace clca {

struct ForwardResult {
  // [batch, num_classes], float32, on the model's device.
  torch::Tensor logits;
  // Sequence length coming out of each block (before that block's cache
  // recovery is appended); for ragged methods the largest in the batch.
  std::vector<int64_t> tokens;
};

// What a forward pass of images at different keep rates gives.
struct MixedForwardResult {
  // [batch, num_classes], float32, on the model's device, in input order.
  torch::Tensor logits;
  // Per image: its sequence length coming out of each block (as
  // ForwardResult::tokens for its keep rate).
  std::vector<std::vector<int64_t>> tokens;
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
  // Keep the floating-point weights as float32 tensors that record gradients,
  // so that ForwardTrain and an optimiser can update them in place. Needs
  // precision kFloat32.
  bool trainable = false;
  // Inference on the CPU computes attention for groups of (image, head) pairs
  // whose scores take at most this many bytes (at least one pair per group),
  // so the probabilities stay in cache. 0: all pairs at once.
  int64_t attention_group_bytes = int64_t{4} << 20;
  // Float32 inference on the CPU computes the blocks' linear layers with
  // oneDNN when LibTorch has it (see LinearWeights::PrepareOneDnn); false:
  // with LibTorch's BLAS.
  bool onednn_linear = true;
  // Inference on CUDA (with LibTorch 2.1 or later) computes attention with
  // scaled_dot_product_attention's fused kernels wherever no token selection
  // needs the whole probability matrix; false: explicit products and softmax.
  bool fused_attention = true;
};

// What a training forward pass gives.
struct TrainingOutput {
  // [batch, num_classes], float32, with gradient.
  torch::Tensor logits;
  // Scalar: the reduction method's own loss (DynamicViT's keep-ratio loss,
  // already weighted), zero for the other methods.
  torch::Tensor auxiliary_loss;
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

  // Runs image i at keep_rates[i] (one per image), all in one pass: the
  // blocks' norms and linear layers take the tokens of every image at once
  // whatever their number; attention and the token reduction run for each
  // group of images that share a keep rate. Each image gets what it would get
  // alone, up to float rounding.
  absl::StatusOr<MixedForwardResult> ForwardMixed(const torch::Tensor& images,
                                                  const std::vector<double>& keep_rates) const;

  // Training-mode forward (needs ModelOptions::trainable): BatchNorm in the
  // CLA head uses batch statistics and updates its running ones; DynamicViT
  // samples Gumbel-softmax keep decisions and masks attention with them
  // instead of dropping tokens. Not safe to run alongside other calls.
  absl::StatusOr<TrainingOutput> ForwardTrain(const torch::Tensor& images, double keep_rate);

  // The parameters an optimiser updates, in reference names (empty unless
  // trainable). Updating them in place changes the model.
  std::vector<std::pair<std::string, torch::Tensor>> trainable_parameters() const;

  const ModelConfig& config() const;
  const ModelOptions& options() const;
  torch::Device device() const;
  int64_t parameter_count() const;
  // The weights as loaded (float32, in reference names), e.g. for saving; for
  // a trainable model, their current values.
  StateDict state_dict() const;

 private:
  struct Impl;
  explicit ClcaModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Freshly initialised weights for `config` (timm's scheme: truncated normal
// 0.02 for matrices and embeddings, zero biases, unit norms; carriers start
// as copies of CLS). With `reference_complete`, also the entries the
// reference model holds but never uses (`norm.*` and `head.*` beside a CLA
// head, BatchNorm's num_batches_tracked), so that a saved checkpoint loads
// strictly into the reference code.
absl::StatusOr<StateDict> RandomWeights(const ModelConfig& config, uint64_t seed,
                                        bool reference_complete = false);


}  // namespace clca
