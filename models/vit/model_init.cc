// Building models from checkpoints, or with random weights.
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "models/reduction/methods.h"
#include "models/vit/model.h"

namespace clca {
namespace {

using Shapes = std::vector<std::pair<std::string, std::vector<int64_t>>>;

// Every parameter a configuration needs, in timm's order.
Shapes ExpectedParameters(const ModelConfig& c) {
  const int64_t dim = c.embed_dim;
  const int64_t hidden = static_cast<int64_t>(std::floor(dim * c.mlp_ratio));
  const bool deit3 = c.backbone == Backbone::kDeit3;
  const bool clip = c.backbone == Backbone::kClip;
  Shapes s;
  s.push_back({"cls_token", {1, 1, dim}});
  s.push_back({"pos_embed", {1, c.pos_embed_prefix() + c.num_patches() + c.pos_embed_suffix(), dim}});
  if (c.has_clr()) s.push_back({"clr", {1, c.num_clr, dim}});
  s.push_back({"patch_embed.proj.weight", {dim, 3, c.patch_size, c.patch_size}});
  if (!clip) s.push_back({"patch_embed.proj.bias", {dim}});
  if (clip) {
    s.push_back({"norm_pre.weight", {dim}});
    s.push_back({"norm_pre.bias", {dim}});
  }
  for (int i = 0; i < c.depth; ++i) {
    const std::string p = absl::StrCat("blocks.", i, ".");
    s.push_back({p + "norm1.weight", {dim}});
    s.push_back({p + "norm1.bias", {dim}});
    s.push_back({p + "attn.qkv.weight", {3 * dim, dim}});
    s.push_back({p + "attn.qkv.bias", {3 * dim}});
    s.push_back({p + "attn.proj.weight", {dim, dim}});
    s.push_back({p + "attn.proj.bias", {dim}});
    if (deit3) s.push_back({p + "ls1.gamma", {dim}});
    s.push_back({p + "norm2.weight", {dim}});
    s.push_back({p + "norm2.bias", {dim}});
    s.push_back({p + "mlp.fc1.weight", {hidden, dim}});
    s.push_back({p + "mlp.fc1.bias", {hidden}});
    s.push_back({p + "mlp.fc2.weight", {dim, hidden}});
    s.push_back({p + "mlp.fc2.bias", {dim}});
    if (deit3) s.push_back({p + "ls2.gamma", {dim}});
  }
  for (auto& extra : ReducerParameterShapes(c)) s.push_back(extra);
  if (c.ifa_head) {
    const int64_t stages = static_cast<int64_t>(c.reduction_loc.size()) + 1;
    const int64_t k = c.ifa_dws_conv_groups;
    auto bn = [&](const std::string& p, int64_t ch) {
      for (const char* n : {".weight", ".bias", ".running_mean", ".running_var"}) {
        s.push_back({p + n, {ch}});
      }
    };
    if (k > 0) {
      bn("ifa_head.0.0", dim);
      s.push_back({"ifa_head.0.1.weight", {dim * k, 1, stages}});
      s.push_back({"ifa_head.0.1.bias", {dim * k}});
      bn("ifa_head.0.2", dim * k);
      s.push_back({"ifa_head.0.4.weight", {c.num_classes, dim * k, 1}});
      s.push_back({"ifa_head.0.4.bias", {c.num_classes}});
    } else {
      s.push_back({"ifa_head.0.0.weight", {1, stages}});
      s.push_back({"ifa_head.0.0.bias", {1}});
      s.push_back({"ifa_head.0.3.weight", {dim}});
      s.push_back({"ifa_head.0.3.bias", {dim}});
      s.push_back({"ifa_head.0.4.weight", {c.num_classes, dim}});
      s.push_back({"ifa_head.0.4.bias", {c.num_classes}});
    }
  } else {
    s.push_back({"norm.weight", {dim}});
    s.push_back({"norm.bias", {dim}});
    s.push_back({"head.weight", {c.num_classes, dim}});
    s.push_back({"head.bias", {c.num_classes}});
  }
  return s;
}

// Roughly timm's initialisation: truncated-normal(0.02) matrices and
// embeddings, zero biases, unit norms, unit layer scale.
torch::Tensor InitialValue(const std::string& name, const std::vector<int64_t>& shape,
                           at::Generator& gen) {
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  if (absl::EndsWith(name, "running_var") || absl::StrContains(name, "norm") ||
      absl::EndsWith(name, ".gamma") ||
      (absl::StartsWith(name, "ifa_head.0.0.") && !absl::EndsWith(name, "running_mean")) ||
      (absl::StartsWith(name, "ifa_head.0.2.") && !absl::EndsWith(name, "running_mean"))) {
    if (absl::EndsWith(name, ".bias")) return torch::zeros(shape, f32);
    if (absl::EndsWith(name, "running_mean")) return torch::zeros(shape, f32);
    return torch::ones(shape, f32);
  }
  if (absl::EndsWith(name, ".bias") || absl::EndsWith(name, "running_mean")) {
    return torch::zeros(shape, f32);
  }
  return (at::normal(0.0, 1.0, shape, gen, f32).clamp(-2, 2) * 0.02).contiguous();
}

}  // namespace

absl::StatusOr<StateDict> RandomWeights(const ModelConfig& config, uint64_t seed,
                                        bool reference_complete) {
  StateDict weights;
  try {
    c10::InferenceMode guard(!reference_complete);
    at::Generator gen = at::detail::createCPUGenerator(seed);
    Shapes shapes = ExpectedParameters(config);
    if (reference_complete && config.ifa_head) {
      const int64_t dim = config.embed_dim;
      shapes.push_back({"norm.weight", {dim}});
      shapes.push_back({"norm.bias", {dim}});
      shapes.push_back({"head.weight", {config.num_classes, dim}});
      shapes.push_back({"head.bias", {config.num_classes}});
    }
    for (const auto& [name, shape] : shapes) {
      weights.push_back({name, InitialValue(name, shape, gen)});
      if (reference_complete && absl::EndsWith(name, ".running_var")) {
        const std::string prefix = name.substr(0, name.size() - std::string("running_var").size());
        weights.push_back({prefix + "num_batches_tracked", torch::zeros({}, torch::kLong)});
      }
    }
    // Carriers start as copies of CLS, as in the reference.
    torch::Tensor cls;
    for (auto& [name, t] : weights) {
      if (name == "cls_token") cls = t;
      if (name == "clr") t = cls.expand_as(t).clone();
    }
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("random initialisation failed: ", e.what()));
  }
  return weights;
}

absl::StatusOr<std::unique_ptr<ClcaModel>> ClcaModel::CreateRandom(const ModelConfig& config,
                                                                   uint64_t seed,
                                                                   const ModelOptions& options) {
  auto weights = RandomWeights(config, seed, options.trainable);
  if (!weights.ok()) return weights.status();
  return Create(config, *weights, options);
}

}  // namespace clca
