// Training a ClcaModel: the reference recipe (AdamW without weight decay on
// 1-D parameters and embeddings, cosine schedule with warm-up and cool-down,
// cross-entropy) and resumable optimiser state. Data loading is the caller's.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "models/vit/model.h"

namespace clca {

// The reference recipe's defaults (CLCA train.py on the UFG datasets).
struct TrainOptions {
  int epochs = 45;
  int warmup_epochs = 2;
  // Epochs at min_lr after the cosine has run its course (within `epochs`).
  int cooldown_epochs = 5;
  double lr = 1e-4;
  double warmup_lr = 1e-6;
  double min_lr = 1e-5;
  double weight_decay = 0.05;
  double label_smoothing = 0.0;
  // Keep rates to train at: each step draws one (uniformly).
  std::vector<double> keep_rates = {1.0};
  // Clip the gradient norm to this when > 0.
  double clip_grad = 0.0;
};

// Learning rate at fractional epoch `epoch` (0 = start): linear warm-up from
// warmup_lr to lr, cosine from lr to min_lr until epochs - cooldown_epochs,
// then min_lr.
double LearningRateAt(const TrainOptions& options, double epoch);

// Whether the recipe exempts a parameter from weight decay: 1-D tensors
// (biases, norms, layer scale), pos_embed, cls_token and the carriers (clr).
bool ExemptFromWeightDecay(const std::string& name, const torch::Tensor& parameter);

// A patch embedding [channels, 3, patch, patch] for training from scratch:
// 2-D DCT-II basis functions spread over every frequency band (channel k is
// the one of rank k * 3 patch^2 / channels in order of u + v, colour last),
// with norms proportional to (1 + u + v), so that the weak high frequencies
// of photographs, where fine structure lives, come out about as strong as the
// low ones, and scaled so the mean square row norm is that of a random row
// (0.02 per weight), the token scale the blocks' initialisation expects.
torch::Tensor DctPatchEmbedding(int64_t channels, int64_t patch);

struct StepResult {
  double loss = 0;            // classification + auxiliary
  double auxiliary_loss = 0;  // the reduction method's own loss
  int64_t correct = 0;        // top-1 hits in the batch
  double lr = 0;
  double keep_rate = 1.0;
};

class Trainer {
 public:
  // `model` must be trainable and outlive the trainer. `steps_per_epoch`
  // turns steps into the fractional epochs the schedule uses.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(ClcaModel* model,
                                                         const TrainOptions& options,
                                                         int64_t steps_per_epoch);

  // One optimisation step on images [B, 3, S, S] and labels [B] (int64).
  // Uses the rate of step step() and advances it.
  absl::StatusOr<StepResult> Step(const torch::Tensor& images, const torch::Tensor& labels);

  int64_t step() const { return step_; }
  void set_step(int64_t step) { step_ = step; }

  // The optimiser's state (moments, step counts), for resuming.
  absl::Status SaveOptimizer(const std::string& path) const;
  absl::Status LoadOptimizer(const std::string& path);

 private:
  Trainer(ClcaModel* model, const TrainOptions& options, int64_t steps_per_epoch);
  ClcaModel* model_;
  TrainOptions options_;
  int64_t steps_per_epoch_;
  int64_t step_ = 0;
  std::vector<torch::Tensor> parameters_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
};

}  // namespace clca
