#include "models/train/train.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "models/core/errors.h"

namespace clca {

double LearningRateAt(const TrainOptions& o, double epoch) {
  if (epoch < o.warmup_epochs) {
    return o.warmup_lr + (o.lr - o.warmup_lr) * epoch / o.warmup_epochs;
  }
  const double span = o.epochs - o.cooldown_epochs - o.warmup_epochs;
  if (span <= 0) return o.lr;
  const double t = (epoch - o.warmup_epochs) / span;
  if (t >= 1) return o.min_lr;
  return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1 + std::cos(M_PI * t));
}

torch::Tensor DctPatchEmbedding(int64_t channels, int64_t patch) {
  struct Basis {
    int64_t u, v, colour;
  };
  std::vector<Basis> order;
  for (int64_t u = 0; u < patch; ++u) {
    for (int64_t v = 0; v < patch; ++v) {
      for (int64_t c = 0; c < 3; ++c) order.push_back({u, v, c});
    }
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const Basis& a, const Basis& b) { return a.u + a.v < b.u + b.v; });
  torch::Tensor cos = torch::empty({patch, patch});  // cos[u][x]
  for (int64_t u = 0; u < patch; ++u) {
    for (int64_t x = 0; x < patch; ++x) {
      cos[u][x] = std::cos(M_PI * (x + 0.5) * u / patch);
    }
  }
  // Filter k has gain 1 + u + v against natural images' 1/f fall-off; all
  // gains are then scaled so the mean square filter norm equals that of
  // timm's initialisation (0.02 per weight), keeping the token stream at the
  // scale the blocks' initialisation expects.
  std::vector<Basis> chosen;
  double mean_square = 0;
  for (int64_t k = 0; k < channels; ++k) {
    chosen.push_back(order[static_cast<size_t>(k * static_cast<int64_t>(order.size()) / channels)]);
    const double gain = static_cast<double>(1 + chosen.back().u + chosen.back().v);
    mean_square += gain * gain / static_cast<double>(channels);
  }
  const double norm = 0.02 * std::sqrt(3.0 * patch * patch) / std::sqrt(mean_square);
  torch::Tensor weight = torch::zeros({channels, 3, patch, patch});
  for (int64_t k = 0; k < channels; ++k) {
    const Basis& b = chosen[static_cast<size_t>(k)];
    torch::Tensor f = torch::outer(cos[b.u], cos[b.v]);
    weight[k][b.colour] = f / f.norm() * norm * static_cast<double>(1 + b.u + b.v);
  }
  return weight;
}

bool ExemptFromWeightDecay(const std::string& name, const torch::Tensor& parameter) {
  return parameter.dim() <= 1 || name == "pos_embed" || name == "cls_token" || name == "clr";
}

Trainer::Trainer(ClcaModel* model, const TrainOptions& options, int64_t steps_per_epoch)
    : model_(model), options_(options), steps_per_epoch_(steps_per_epoch) {}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(ClcaModel* model,
                                                         const TrainOptions& options,
                                                         int64_t steps_per_epoch) {
  if (model == nullptr || !model->options().trainable) {
    return absl::InvalidArgumentError("training needs a model created trainable");
  }
  if (steps_per_epoch < 1 || options.epochs < 1 || options.warmup_epochs < 0 ||
      options.cooldown_epochs < 0 || !(options.lr > 0) || options.warmup_lr < 0 ||
      options.min_lr < 0 || options.weight_decay < 0 || options.label_smoothing < 0 ||
      options.label_smoothing >= 1) {
    return absl::InvalidArgumentError(
        "training options out of range (epochs >= 1, warm-up and cool-down >= 0, lr > 0, "
        "rates and weight decay >= 0, 0 <= label smoothing < 1)");
  }
  if (options.keep_rates.empty()) return absl::InvalidArgumentError("no keep rate to train at");
  for (double kr : options.keep_rates) {
    if (auto s = ValidateKeepRate(kr); !s.ok()) return s;
  }
  std::unique_ptr<Trainer> t(new Trainer(model, options, steps_per_epoch));
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& [name, p] : model->trainable_parameters()) {
    (ExemptFromWeightDecay(name, p) ? no_decay : decay).push_back(p);
    t->parameters_.push_back(p);
  }
  if (t->parameters_.empty()) return absl::InvalidArgumentError("the model has no parameters");
  try {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    auto with_decay = std::make_unique<torch::optim::AdamWOptions>(options.lr);
    with_decay->weight_decay(options.weight_decay);
    auto without_decay = std::make_unique<torch::optim::AdamWOptions>(options.lr);
    without_decay->weight_decay(0.0);
    groups.emplace_back(decay, std::move(with_decay));
    groups.emplace_back(no_decay, std::move(without_decay));
    t->optimizer_ = std::make_unique<torch::optim::AdamW>(
        groups, torch::optim::AdamWOptions(options.lr).weight_decay(options.weight_decay));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("cannot build the optimiser: ", ExceptionMessage(e)));
  }
  return t;
}

absl::StatusOr<StepResult> Trainer::Step(const torch::Tensor& images, const torch::Tensor& labels) {
  if (!labels.defined() || labels.dim() != 1 || !images.defined() ||
      labels.size(0) != images.size(0)) {
    return absl::InvalidArgumentError("labels must be a [B] tensor matching the images");
  }
  StepResult result;
  // The keep rate of a step depends on the step only, so a resumed run draws
  // the same ones.
  std::mt19937_64 draw(static_cast<uint64_t>(step_) * 0x9E3779B97F4A7C15ULL + 1);
  result.keep_rate = options_.keep_rates[draw() % options_.keep_rates.size()];
  result.lr = LearningRateAt(options_, static_cast<double>(step_) / steps_per_epoch_);
  auto out = model_->ForwardTrain(images, result.keep_rate);
  if (!out.ok()) return out.status();
  try {
    torch::Tensor target = labels.to(out->logits.device(), torch::kLong);
    const int64_t classes = out->logits.size(1);
    if (target.min().item<int64_t>() < 0 || target.max().item<int64_t>() >= classes) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels must lie in [0, ", classes, ") for this model"));
    }
    torch::Tensor ce = torch::nn::functional::cross_entropy(
        out->logits, target,
        torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(options_.label_smoothing));
    torch::Tensor loss = ce + out->auxiliary_loss;
    result.loss = loss.item<double>();
    if (!std::isfinite(result.loss)) {
      return absl::InternalError(absl::StrCat("the loss is not finite at step ", step_,
                                              " (lower the learning rate?)"));
    }
    for (auto& group : optimizer_->param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(result.lr);
    }
    optimizer_->zero_grad();
    loss.backward();
    if (options_.clip_grad > 0) torch::nn::utils::clip_grad_norm_(parameters_, options_.clip_grad);
    optimizer_->step();
    result.auxiliary_loss = out->auxiliary_loss.item<double>();
    result.correct = (out->logits.argmax(1) == target).sum().item<int64_t>();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("training step failed: ", ExceptionMessage(e)));
  }
  ++step_;
  return result;
}

absl::Status Trainer::SaveOptimizer(const std::string& path) const {
  try {
    torch::save(*optimizer_, path);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", ExceptionMessage(e)));
  }
  return absl::OkStatus();
}

absl::Status Trainer::LoadOptimizer(const std::string& path) {
  try {
    torch::load(*optimizer_, path);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read optimiser state ", path, ": ", ExceptionMessage(e)));
  }
  return absl::OkStatus();
}

}  // namespace clca
