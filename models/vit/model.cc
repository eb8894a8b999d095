#include "models/vit/model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include <ATen/Parallel.h>
#include <torch/version.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "models/core/errors.h"
#include "models/core/layers.h"
#include "models/core/weights.h"
#include "models/cpu/onednn.h"
#include "models/reduction/methods.h"

namespace clca {
namespace {

using torch::Tensor;

absl::StatusOr<torch::ScalarType> ComputeType(Precision p) {
  switch (p) {
    case Precision::kFloat32: return torch::kFloat32;
    case Precision::kBFloat16: return torch::kBFloat16;
    case Precision::kFloat16: return torch::kFloat16;
  }
  return absl::InvalidArgumentError("unknown precision");
}

// Bicubic resampling of the position-embedding grid, keeping the prefix (CLS)
// and suffix (carrier) entries as they are.
Tensor ResizePositionGrid(const Tensor& pos_embed, int64_t prefix, int64_t suffix, int64_t new_grid) {
  const int64_t total = pos_embed.size(1);
  const int64_t old_cells = total - prefix - suffix;
  const auto old_grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(old_cells))));
  const int64_t c = pos_embed.size(2);
  Tensor grid = pos_embed.narrow(1, prefix, old_cells)
                    .reshape({1, old_grid, old_grid, c})
                    .permute({0, 3, 1, 2});
  grid = torch::nn::functional::interpolate(
      grid, torch::nn::functional::InterpolateFuncOptions()
                .size(std::vector<int64_t>{new_grid, new_grid})
                .mode(torch::kBicubic)
                .align_corners(false)
                .antialias(new_grid < old_grid));
  grid = grid.permute({0, 2, 3, 1}).reshape({1, new_grid * new_grid, c});
  return torch::cat({pos_embed.narrow(1, 0, prefix), grid, pos_embed.narrow(1, prefix + old_cells, suffix)},
                    1)
      .contiguous();
}

// Names the size fields that disagree with the checkpoint, before the
// per-tensor comparison would list every tensor.
absl::Status CheckSizes(const ModelConfig& c, const StateDict& weights) {
  int64_t dim = -1, depth = 0;
  for (const auto& [name, t] : weights) {
    if (name == "cls_token" && t.dim() == 3) dim = t.size(2);
    if (name.rfind("blocks.", 0) == 0) {
      depth = std::max<int64_t>(depth, std::atoll(name.c_str() + 7) + 1);
    }
  }
  std::vector<std::string> hints;
  if (dim > 0 && dim != c.embed_dim) {
    hints.push_back(absl::StrCat("embed_dim is ", dim, " in the checkpoint but ", c.embed_dim,
                                 " in the configuration"));
  }
  if (depth > 0 && depth != c.depth) {
    hints.push_back(absl::StrCat("depth is ", depth, " in the checkpoint but ", c.depth,
                                 " in the configuration"));
  }
  if (hints.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("checkpoint does not match the configuration of '", c.model, "': ",
                   absl::StrJoin(hints, "; "), " (set embed_dim, depth and num_heads)"));
}

// Softmax over `scores` [B, H, N, N] in which tokens whose `policy` [B, N, 1]
// is 0 are hidden from every query but themselves (DynamicViT training), in
// float32 as the reference does for stability.
Tensor PolicySoftmax(const Tensor& scores, const Tensor& policy) {
  const double eps = 1e-6;
  const int64_t batch = scores.size(0), length = scores.size(-1);
  Tensor keep = policy.reshape({batch, 1, 1, length}).to(torch::kFloat32);
  Tensor eye = torch::eye(length, keep.options()).reshape({1, 1, length, length});
  keep = keep + (1 - keep) * eye;
  Tensor e = (scores - std::get<0>(scores.max(-1, /*keepdim=*/true))).to(torch::kFloat32).exp() * keep;
  return ((e + eps / length) / (e.sum(-1, /*keepdim=*/true) + eps)).to(scores.scalar_type());
}

// Scores, softmax and value product of attention one group of (image, head)
// pairs at a time, so the probabilities of a group stay in the CPU's cache
// instead of all [B, H, N, N] of them going through memory. A group's scores
// take at most `group_bytes`
// (0: one group). `q`, `k`, `v` are [B, H, N, d] (q scaled);
// `bias` [B, N] (or undefined) is added to every query's scores. The CLS
// query's probabilities [B, H, N] go to `cls_rows` if it is not null.
Tensor ChunkedAttention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias,
                        int64_t group_bytes, Tensor* cls_rows) {
  const int64_t batch = q.size(0), heads = q.size(1), length = q.size(2), head_dim = q.size(3);
  const int64_t pairs = batch * heads;
  Tensor qf = q.reshape({pairs, length, head_dim});
  Tensor kt = k.reshape({pairs, length, head_dim}).transpose(1, 2);
  Tensor vf = v.reshape({pairs, length, head_dim});
  Tensor bf;
  if (bias.defined()) {
    bf = bias.reshape({batch, 1, 1, length}).expand({batch, heads, 1, length}).reshape({pairs, 1, length});
  }
  Tensor out = torch::empty({pairs, length, head_dim}, q.options());
  if (cls_rows) *cls_rows = torch::empty({pairs, length}, q.options());
  const int64_t pair_bytes = length * length * static_cast<int64_t>(q.element_size());
  const int64_t group = group_bytes > 0 ? std::max<int64_t>(1, group_bytes / pair_bytes) : pairs;
  for (int64_t start = 0; start < pairs; start += group) {
    const int64_t n = std::min(group, pairs - start);
    Tensor scores = at::bmm(qf.narrow(0, start, n), kt.narrow(0, start, n));
    if (bf.defined()) scores.add_(bf.narrow(0, start, n));
    Tensor probs = scores.softmax(-1);
    if (cls_rows) cls_rows->narrow(0, start, n).copy_(probs.select(1, 0));
    Tensor slice = out.narrow(0, start, n);
    at::bmm_out(slice, probs, vf.narrow(0, start, n));
  }
  if (cls_rows) *cls_rows = cls_rows->view({batch, heads, length});
  return out.view({batch, heads, length, head_dim});
}

}  // namespace

struct ClcaModel::Impl {
  ModelConfig config;
  ModelOptions options;
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;
  StateDict loaded;
  // Entries of `loaded` left undefined: float32 weights kept only packed.
  std::map<std::string, const LinearWeights*> packed_weights;
  // Trainable models: the parameters, in reference names.
  std::vector<std::pair<std::string, Tensor>> parameters;

  Tensor cls_token, pos_embed, clr;
  Tensor patch_weight, patch_bias;
  LayerNormWeights norm_pre;  // CLIP only
  std::vector<BlockWeights> blocks;
  LayerNormWeights norm;      // without the CLA head
  LinearWeights head;
  // CLA head, depthwise-convolution form (ifa_dws_conv_groups > 0).
  BatchNormWeights cla_norm_in, cla_norm_mid;
  Tensor cla_conv_weight, cla_conv_bias, cla_out_weight, cla_out_bias;
  // cla_out_* as a linear layer, for oneDNN (set with PrepareOneDnn).
  LinearWeights cla_out;
  // CLA head, linear form (ifa_dws_conv_groups == 0).
  LinearWeights cla_pool, cla_fc;
  LayerNormWeights cla_norm;
  std::unique_ptr<TokenReducer> reducer;

  absl::Status Load(const StateDict& weights);
  // Multi-head attention given `projected` [B, N, 3C] (= qkv of norm1 of
  // the tokens). `summary` (if not null) receives what an after-attention
  // reducer needs; `select` (if not null) is an inside-attention step: only
  // the rows it picks are output and their indices are stored in
  // `*selected`. Returns the heads' outputs side by side [B, rows, C], before
  // the output projection.
  Tensor Attention(const BlockWeights& b, const Tensor& projected, Tokens& tokens,
                   AttentionSummary* summary, const ReductionStep* select,
                   Tensor* selected) const;
  // [B, N] added to every query's scores: proportional attention (a merged
  // token counts as many) and padding (invisible to every query); undefined
  // when neither applies.
  Tensor AttentionBias(const Tokens& tokens, const Tensor& like) const;
  // Whether the CPU's own attention (onednn::Attention) computes these
  // tokens' attention in block `b` (no inside-attention step).
  bool CpuAttention(const BlockWeights& b, const Tensor& projected, const Tokens& tokens) const;
  // What an after-attention reducer ranks tokens by: `cls_rows` [B, H, N]
  // (the CLS query's probabilities) averaged over heads, and the keys' mean.
  void Summarise(const Tensor& projected, const Tensor& cls_rows,
                 AttentionSummary* summary) const;
  // Mean of tokens [start, end) per image, over real tokens only.
  static Tensor PoolTokens(const Tokens& tokens, int64_t start, int64_t end);
  // The last `count` real tokens of each image.
  static Tensor LastTokens(const Tokens& tokens, int64_t count);
  Tensor Embed(const Tensor& images) const;
  Tensor Head(const Tensor& tokens, const std::vector<Tensor>& cls_per_stage,
              bool training) const;
  // A forward pass; a training one also appends the reducer's losses to
  // `*losses`.
  ForwardResult Run(const Tensor& images, double keep_rate, bool training = false,
                    std::vector<Tensor>* losses = nullptr) const;
  // A forward pass of groups of images, each at its own keep rate: the first
  // sizes[0] images at keep_rates[0], the next sizes[1] at keep_rates[1], ...
  // Returns one result per group.
  std::vector<ForwardResult> RunGroups(const Tensor& images, const std::vector<int64_t>& sizes,
                                       const std::vector<double>& keep_rates, bool training,
                                       std::vector<Tensor>* losses) const;
  absl::Status CheckImages(const Tensor& images) const;
};

absl::Status ClcaModel::Impl::Load(const StateDict& weights) {
  const ModelConfig& c = config;
  if (auto s = CheckSizes(c, weights); !s.ok()) return s;
  const int64_t dim = c.embed_dim;
  const int64_t hidden = static_cast<int64_t>(std::floor(dim * c.mlp_ratio));
  const bool deit3 = c.backbone == Backbone::kDeit3;
  const bool clip = c.backbone == Backbone::kClip;
  const double eps = c.layer_norm_eps();
  WeightStore w(weights);

  cls_token = w.Take("cls_token", {1, 1, dim});
  if (c.has_clr()) clr = w.Take("clr", {1, c.num_clr, dim});
  // Standard layout: pos_embed covers [CLS, patches, carriers]; DeiT-3: patches.
  const int64_t prefix = c.pos_embed_prefix();
  const int64_t suffix = c.pos_embed_suffix();
  pos_embed = w.TakeAnyShape("pos_embed");
  if (pos_embed.defined()) {
    const int64_t cells = pos_embed.dim() == 3 ? pos_embed.size(1) - prefix - suffix : -1;
    const auto side = static_cast<int64_t>(std::lround(std::sqrt(std::max<double>(cells, 0))));
    const int64_t want = prefix + c.num_patches() + suffix;
    if (pos_embed.dim() != 3 || pos_embed.size(0) != 1 || pos_embed.size(2) != dim ||
        side * side != cells || cells <= 0) {
      w.AddProblem(absl::StrCat("pos_embed has shape [", absl::StrJoin(pos_embed.sizes(), ","),
                                "], expected [1,", want, ",", dim, "]"));
    } else if (side != c.grid_size()) {
      if (!options.resize_pos_embed) {
        w.AddProblem(absl::StrCat("pos_embed is for a ", side, "x", side, " grid, the input size ",
                                  c.input_size, " needs ", c.grid_size(), "x", c.grid_size()));
      } else {
        pos_embed = ResizePositionGrid(pos_embed, prefix, suffix, c.grid_size());
        if (options.trainable) pos_embed = pos_embed.detach().requires_grad_(true);
      }
    }
  }
  patch_weight = w.Take("patch_embed.proj.weight", {dim, 3, c.patch_size, c.patch_size});
  if (!clip) patch_bias = w.Take("patch_embed.proj.bias", {dim});
  if (clip) norm_pre.Load(w, "norm_pre", dim, eps);

  blocks.resize(c.depth);
  for (int i = 0; i < c.depth; ++i) {
    const std::string p = absl::StrCat("blocks.", i, ".");
    BlockWeights& b = blocks[i];
    b.norm1.Load(w, p + "norm1", dim, eps);
    b.norm2.Load(w, p + "norm2", dim, eps);
    b.qkv.Load(w, p + "attn.qkv", dim, 3 * dim);
    b.proj.Load(w, p + "attn.proj", dim, dim);
    b.fc1.Load(w, p + "mlp.fc1", dim, hidden);
    b.fc2.Load(w, p + "mlp.fc2", hidden, dim);
    if (deit3) {
      b.ls1 = w.Take(p + "ls1.gamma", {dim});
      b.ls2 = w.Take(p + "ls2.gamma", {dim});
    }
  }

  if (c.ifa_head) {
    const int64_t stages = static_cast<int64_t>(c.reduction_loc.size()) + 1;
    const int64_t k = c.ifa_dws_conv_groups;
    if (k > 0) {
      cla_norm_in.Load(w, "ifa_head.0.0", dim);
      cla_conv_weight = w.Take("ifa_head.0.1.weight", {dim * k, 1, stages});
      cla_conv_bias = w.Take("ifa_head.0.1.bias", {dim * k});
      cla_norm_mid.Load(w, "ifa_head.0.2", dim * k);
      cla_out_weight = w.Take("ifa_head.0.4.weight", {c.num_classes, dim * k, 1});
      cla_out_bias = w.Take("ifa_head.0.4.bias", {c.num_classes});
    } else {
      cla_pool.Load(w, "ifa_head.0.0", stages, 1);
      cla_norm.Load(w, "ifa_head.0.3", dim, 1e-5);
      cla_fc.Load(w, "ifa_head.0.4", dim, c.num_classes);
    }
    // The reference keeps the unused linear head (and drops the final norm).
    w.Ignore("head.");
    w.Ignore("norm.");
  } else {
    norm.Load(w, "norm", dim, eps);
    head.Load(w, "head", dim, c.num_classes);
  }

  auto r = MakeReducer(c, w);
  if (!r.ok()) return r.status();
  reducer = std::move(*r);
  if (auto s = w.Finish(); !s.ok()) return s;

  // Keep the float32 weights (with a resized grid) for state_dict().
  loaded = weights;
  for (auto& [name, t] : loaded) {
    if (name == "pos_embed") t = pos_embed;
  }
  // Move everything to the compute device and type.
  auto move = [&](Tensor& t) {
    if (t.defined()) t = t.to(device, t.is_floating_point() ? dtype : t.scalar_type()).contiguous();
  };
  for (Tensor* t : {&cls_token, &pos_embed, &clr, &patch_weight, &patch_bias, &norm_pre.weight,
                    &norm_pre.bias, &norm.weight, &norm.bias, &head.weight, &head.bias,
                    &cla_conv_weight, &cla_conv_bias, &cla_out_weight, &cla_out_bias,
                    &cla_pool.weight, &cla_pool.bias, &cla_fc.weight, &cla_fc.bias,
                    &cla_norm.weight, &cla_norm.bias}) {
    move(*t);
  }
  for (BatchNormWeights* bn : {&cla_norm_in, &cla_norm_mid}) {
    for (Tensor* t : {&bn->weight, &bn->bias, &bn->running_mean, &bn->running_var}) move(*t);
  }
  for (BlockWeights& b : blocks) {
    for (Tensor* t : {&b.norm1.weight, &b.norm1.bias, &b.norm2.weight, &b.norm2.bias,
                      &b.qkv.weight, &b.qkv.bias, &b.proj.weight, &b.proj.bias, &b.fc1.weight,
                      &b.fc1.bias, &b.fc2.weight, &b.fc2.bias, &b.ls1, &b.ls2}) {
      move(*t);
    }
  }
  if (reducer) reducer->MoveTo(device, dtype);
  if (options.onednn_linear && !options.trainable) {
    // PrepareOneDnn packs the weights or lays them out anew. Only that copy
    // is kept: state_dict() gives the re-laid tensors and unpacks the packed
    // ones.
    std::map<const c10::TensorImpl*, Tensor> relaid;
    std::map<const c10::TensorImpl*, const LinearWeights*> packed;
    for (BlockWeights& b : blocks) {
      // The residual adds and the GELU go into the packed products; layer
      // scale comes between product and residual.
      const auto after_product = [](const Tensor& scale) {
        return scale.defined() ? onednn::Epilogue::kNone : onednn::Epilogue::kResidual;
      };
      const std::pair<LinearWeights*, onednn::Epilogue> layers[] = {
          {&b.qkv, onednn::Epilogue::kNone},
          {&b.proj, after_product(b.ls1)},
          {&b.fc1, onednn::Epilogue::kGelu},
          {&b.fc2, after_product(b.ls2)}};
      for (const auto& [l, epilogue] : layers) {
        const Tensor before = l->weight;
        if (!l->PrepareOneDnn(epilogue)) continue;
        if (l->packed) {
          l->weight = Tensor();
          packed[before.unsafeGetTensorImpl()] = l;
        } else {
          relaid[before.unsafeGetTensorImpl()] = l->weight;
        }
      }
    }
    for (auto& [name, t] : loaded) {
      if (auto it = relaid.find(t.unsafeGetTensorImpl()); it != relaid.end()) {
        t = it->second;
      } else if (auto p = packed.find(t.unsafeGetTensorImpl()); p != packed.end()) {
        packed_weights[name] = p->second;
        t = Tensor();
      }
    }
    // The head's small products too: one OpenBLAS call would leave OpenBLAS's
    // threads spinning beside oneDNN's (docs/BENCHMARKS.md).
    for (LinearWeights* l : {&head, &cla_pool, &cla_fc}) l->PrepareOneDnn();
    if (cla_out_weight.defined()) {
      cla_out.weight = cla_out_weight.squeeze(-1);
      cla_out.bias = cla_out_bias;
      cla_out.PrepareOneDnn();
    }
  }
  if (options.trainable) {
    // Moving was a no-op (the weights already are float32 on the device), so
    // these are the very tensors the forward pass uses.
    for (const auto& [name, t] : loaded) {
      if (t.requires_grad()) parameters.push_back({name, t});
    }
  }
  return absl::OkStatus();
}

Tensor ClcaModel::Impl::AttentionBias(const Tokens& tokens, const Tensor& like) const {
  const int64_t batch = like.size(0), length = like.size(1);
  Tensor bias;
  if (tokens.size.defined() && reducer->proportional_attention()) {
    bias = tokens.size.log().reshape({batch, length});
  }
  if (tokens.mask.defined()) {
    Tensor hidden = torch::zeros({batch, length}, like.options())
                        .masked_fill(tokens.mask.logical_not(), -std::numeric_limits<float>::infinity());
    bias = bias.defined() ? bias + hidden : hidden;
  }
  return bias;
}

bool ClcaModel::Impl::CpuAttention(const BlockWeights& b, const Tensor& projected,
                                   const Tokens& tokens) const {
  // Wherever the projections use oneDNN, so does attention: batched
  // products would wake OpenBLAS's threads, which then spin beside oneDNN's.
  return b.qkv.onednn && !tokens.policy.defined() && projected.device().is_cpu() &&
         !torch::GradMode::is_enabled() &&
         (projected.scalar_type() == torch::kFloat32 ||
          (projected.scalar_type() == torch::kBFloat16 && onednn::AttentionBf16Available()));
}

void ClcaModel::Impl::Summarise(const Tensor& projected, const Tensor& cls_rows,
                                AttentionSummary* summary) const {
  if (!summary) return;
  const int64_t batch = projected.size(0), length = projected.size(1);
  if (reducer->needs_cls_attention()) {
    summary->cls_attention =
        cls_rows.narrow(-1, 1, length - 1).mean(1).to(projected.scalar_type());
  }
  if (reducer->needs_key_mean()) {
    const int64_t dim = projected.size(2) / 3, heads = config.num_heads;
    summary->key_mean = projected.reshape({batch, length, 3, heads, dim / heads})
                            .permute({2, 0, 3, 1, 4})[1]
                            .mean(1);
  }
}

Tensor ClcaModel::Impl::Attention(const BlockWeights& b, const Tensor& projected,
                                  Tokens& tokens, AttentionSummary* summary,
                                  const ReductionStep* select, Tensor* selected) const {
  const Tensor& x = projected;  // for its options, device and type
  const int64_t batch = x.size(0), length = x.size(1), dim = x.size(2) / 3;
  const int64_t heads = config.num_heads, head_dim = dim / heads;
  const Tensor bias = AttentionBias(tokens, x);
  const bool want_cls = summary && reducer->needs_cls_attention();
  if (!select && CpuAttention(b, x, tokens)) {
    Tensor cls_rows;
    Tensor out = onednn::Attention(projected, heads, bias, want_cls ? &cls_rows : nullptr);
    Summarise(projected, cls_rows, summary);
    return out;
  }
  Tensor qkv = projected.reshape({batch, length, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});
  Tensor q = qkv[0] * (1.0 / std::sqrt(static_cast<double>(head_dim)));
  Tensor k = qkv[1], v = qkv[2];
  auto summarise = [&](const Tensor& cls_rows) { Summarise(projected, cls_rows, summary); };
  if (!select && !tokens.policy.defined() && x.device().is_cpu() &&
      !torch::GradMode::is_enabled()) {
    Tensor cls_rows;
    Tensor out = ChunkedAttention(q, k, v, bias, options.attention_group_bytes,
                                  want_cls ? &cls_rows : nullptr)
                     .transpose(1, 2)
                     .reshape({batch, length, dim});
    summarise(cls_rows);
    return out;
  }
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
  if (options.fused_attention && !select && !tokens.policy.defined() && x.is_cuda() &&
      !torch::GradMode::is_enabled()) {
    // Fused kernels (flash or memory-efficient) never write the [B, H, N, N]
    // probabilities; a reducer that ranks by the CLS query's gets that row alone.
    Tensor mask;
    if (bias.defined()) mask = bias.to(q.scalar_type()).reshape({batch, 1, 1, length});
    Tensor out = mask.defined() ? at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, 1.0)
                                : at::scaled_dot_product_attention(q, k, v, {}, 0.0, false, 1.0);
    Tensor cls_rows;
    if (summary && reducer->needs_cls_attention()) {
      Tensor cls = torch::matmul(q.narrow(2, 0, 1), k.transpose(-2, -1));
      if (mask.defined()) cls = cls + mask;
      cls_rows = cls.softmax(-1).select(2, 0);
    }
    summarise(cls_rows);
    return out.transpose(1, 2).reshape({batch, length, dim});
  }
#endif
  Tensor scores = torch::matmul(q, k.transpose(-2, -1));
  if (bias.defined()) scores = scores + bias.reshape({batch, 1, 1, length});
  Tensor attn = tokens.policy.defined() ? PolicySoftmax(scores, tokens.policy) : scores.softmax(-1);
  summarise(attn.select(2, 0));
  if (select) {
    *selected = reducer->SelectTokens(*select, attn, v, tokens);
    attn = attn.gather(2, selected->reshape({batch, 1, -1, 1}).expand({batch, heads, -1, length}));
  }
  const int64_t rows = attn.size(2);
  return torch::matmul(attn, v).transpose(1, 2).reshape({batch, rows, dim});
}

Tensor ClcaModel::Impl::PoolTokens(const Tokens& tokens, int64_t start, int64_t end) {
  Tensor span = tokens.x.narrow(1, start, end - start);
  if (!tokens.mask.defined()) return span.mean(1, /*keepdim=*/true);
  Tensor real = tokens.mask.narrow(1, start, end - start).unsqueeze(-1).to(span.scalar_type());
  return (span * real).sum(1, /*keepdim=*/true) / real.sum(1, /*keepdim=*/true).clamp_min(1);
}

Tensor ClcaModel::Impl::LastTokens(const Tokens& tokens, int64_t count) {
  const int64_t length = tokens.x.size(1);
  if (!tokens.mask.defined()) return tokens.x.narrow(1, length - count, count);
  // Positions of real tokens (padding scores -1); the largest `count`, in order.
  Tensor position = torch::arange(length, tokens.mask.options().dtype(torch::kLong))
                        .unsqueeze(0)
                        .masked_fill(tokens.mask.logical_not(), -1);
  Tensor last = std::get<0>(std::get<0>(position.topk(count, 1)).sort(1));
  return tokens.x.gather(1, last.unsqueeze(-1).expand({-1, -1, tokens.x.size(2)}));
}

Tensor ClcaModel::Impl::Embed(const Tensor& images) const {
  const int64_t batch = images.size(0);
  Tensor x;  // [B, n, C]
  if (images.is_cuda()) {
    // On a GPU the patches go through a matrix product: cuDNN would compute a
    // float32 convolution in TF32.
    const int64_t p = config.patch_size, h = images.size(2) / p, w = images.size(3) / p;
    Tensor patches = images.narrow(2, 0, h * p).narrow(3, 0, w * p)
                         .reshape({batch, 3, h, p, w, p})
                         .permute({0, 2, 4, 1, 3, 5})
                         .reshape({batch, h * w, 3 * p * p});
    x = at::linear(patches, patch_weight.reshape({patch_weight.size(0), -1}), patch_bias);
  } else {
    x = at::conv2d(images, patch_weight, patch_bias, {config.patch_size, config.patch_size})
            .flatten(2)
            .transpose(1, 2);
  }
  std::vector<Tensor> parts = {cls_token.expand({batch, -1, -1})};
  if (config.backbone == Backbone::kDeit3) {
    parts.push_back(x + pos_embed);
    if (clr.defined()) parts.push_back(clr.expand({batch, -1, -1}));
    x = torch::cat(parts, 1);
  } else {
    parts.push_back(x);
    if (clr.defined()) parts.push_back(clr.expand({batch, -1, -1}));
    x = torch::cat(parts, 1) + pos_embed;
  }
  if (config.backbone == Backbone::kClip) x = norm_pre(x);
  return x;
}

Tensor ClcaModel::Impl::Head(const Tensor& x, const std::vector<Tensor>& cls_per_stage,
                             bool training) const {
  if (!config.ifa_head) return head(norm(x.select(1, 0)));
  Tensor stacked = torch::stack(cls_per_stage, -1);  // [B, C, G]
  if (config.ifa_dws_conv_groups > 0) {
    // The reference's two Conv1d as products, which stay float32 on a GPU
    // (cuDNN computes float32 convolutions in TF32): each of the C·k outputs
    // weighs all stages of its own channel, then a 1×1 convolution.
    Tensor y = cla_norm_in(stacked, training).repeat_interleave(config.ifa_dws_conv_groups, 1);
    y = (y * cla_conv_weight.squeeze(1)).sum(-1) + cla_conv_bias;  // [B, C·k]
    y = at::gelu(cla_norm_mid(y.unsqueeze(-1), training)).squeeze(-1);
    return cla_out.onednn ? cla_out(y) : at::linear(y, cla_out_weight.squeeze(-1), cla_out_bias);
  }
  Tensor y = cla_pool(stacked).squeeze(-1).relu();
  return cla_fc(cla_norm(y));
}

namespace {

// The images of a forward pass that share a keep rate: their tokens, the
// cross-layer cache and the CLS token of each stage.
struct RunGroup {
  double keep_rate = 1.0;
  Tokens tokens;
  int64_t pool_end = 0;  // tokens before this index are pooled into the GAP carrier
  std::vector<Tensor> cache;
  std::vector<Tensor> cls_per_stage;
  ForwardResult result;
};

// Each of `like` [B, N, *] gets its rows of `rows` [sum of B·N, C] as [B, N, C].
std::vector<Tensor> SplitRows(const Tensor& rows, const std::vector<Tensor>& like) {
  std::vector<Tensor> parts;
  parts.reserve(like.size());
  int64_t start = 0;
  for (const Tensor& t : like) {
    const int64_t n = t.size(0) * t.size(1);
    parts.push_back(rows.narrow(0, start, n).view({t.size(0), t.size(1), rows.size(-1)}));
    start += n;
  }
  return parts;
}

// The rows of `parts` one after another, padded with zero rows to a multiple
// of kRowGranule: mixed keep rates give every batch its own row counts, and
// oneDNN's products are built per row count.
constexpr int64_t kRowGranule = 32;

int64_t PaddedRows(int64_t rows) { return (rows + kRowGranule - 1) / kRowGranule * kRowGranule; }

// `want` (if not -1) asks for that many rows, at least the parts' own.
Tensor JoinRows(const std::vector<Tensor>& parts, int64_t want = -1) {
  int64_t total = 0;
  bool adjacent = true;  // contiguous parts one after another in one buffer
  const int64_t width = parts.front().size(-1);
  for (const Tensor& t : parts) {
    adjacent = adjacent && t.is_contiguous() && t.size(-1) == width &&
               t.storage().is_alias_of(parts.front().storage()) &&
               t.storage_offset() == parts.front().storage_offset() + total * width;
    total += t.size(0) * t.size(1);
  }
  const int64_t padded = want >= 0 ? want : PaddedRows(total);
  if (adjacent) {
    // The rows as they lie, with the buffer's rows after them up to the
    // padded count where it has them (SplitRows' views of a padded result).
    const Tensor& first = parts.front();
    const int64_t available =
        static_cast<int64_t>(first.storage().nbytes() / first.element_size()) -
        first.storage_offset();
    if (available >= padded * width) {
      return torch::from_blob(first.data_ptr(), {padded, width}, first.options());
    }
    if (want < 0 || want == total) {
      return torch::from_blob(first.data_ptr(), {total, width}, first.options());
    }
  }
  Tensor rows = torch::empty({padded, width}, parts.front().options());
  int64_t start = 0;
  for (const Tensor& t : parts) {
    const int64_t n = t.size(0) * t.size(1);
    rows.narrow(0, start, n).copy_(t.reshape({n, width}));
    start += n;
  }
  if (padded > total) rows.narrow(0, total, padded - total).zero_();
  return rows;
}

// The row-wise `f` (norms, linear layers, residual adds) over the tokens of
// every group in one call, so the products see the rows of the whole batch
// whatever each group's length.
template <typename F>
std::vector<Tensor> Rowwise(const std::vector<Tensor>& x, const F& f) {
  if (x.size() == 1) return {f(x[0])};
  return SplitRows(f(JoinRows(x)), x);
}

// As above, over two inputs with the same rows.
template <typename F>
std::vector<Tensor> Rowwise(const std::vector<Tensor>& x, const std::vector<Tensor>& y,
                            const F& f) {
  if (x.size() == 1) return {f(x[0], y[0])};
  const Tensor joined = JoinRows(x);
  return SplitRows(f(joined, JoinRows(y, joined.size(0))), x);
}

// `whole` as groups of sizes[g] images at keep_rates[g], in order.
std::vector<RunGroup> SplitGroup(RunGroup whole, const std::vector<int64_t>& sizes,
                                 const std::vector<double>& keep_rates) {
  std::vector<RunGroup> groups(sizes.size());
  int64_t first = 0;
  const auto part = [&](const Tensor& t, int64_t size) {
    return t.defined() ? t.narrow(0, first, size) : t;
  };
  for (size_t g = 0; g < sizes.size(); ++g) {
    RunGroup& group = groups[g];
    const int64_t n = sizes[g];
    group.keep_rate = keep_rates[g];
    group.tokens.x = part(whole.tokens.x, n);
    group.tokens.size = part(whole.tokens.size, n);
    group.tokens.mask = part(whole.tokens.mask, n);
    group.tokens.recovered = part(whole.tokens.recovered, n);
    group.tokens.policy = part(whole.tokens.policy, n);
    group.pool_end = whole.pool_end;
    for (const Tensor& t : whole.cache) group.cache.push_back(part(t, n));
    for (const Tensor& t : whole.cls_per_stage) group.cls_per_stage.push_back(part(t, n));
    group.result.tokens = whole.result.tokens;
    first += n;
  }
  if (!whole.tokens.losses.empty()) {
    groups.front().tokens.losses = std::move(whole.tokens.losses);
  }
  return groups;
}

std::vector<Tensor> TokensOf(const std::vector<RunGroup>& groups) {
  std::vector<Tensor> x;
  x.reserve(groups.size());
  for (const RunGroup& g : groups) x.push_back(g.tokens.x);
  return x;
}

// Appends `count` tokens of value 1 to a [B, N] or [B, N, 1] per-token tensor.
void AppendOnes(Tensor& t, int64_t count) {
  if (!t.defined()) return;
  std::vector<int64_t> shape = t.sizes().vec();
  shape[1] = count;
  t = torch::cat({t, torch::ones(shape, t.options())}, 1);
}

// f(g) for each of `count` groups. With `side_by_side`, the groups share
// the intra-op threads in one parallel loop, each group's small operations on
// one thread, instead of a parallel region for each operation of each group.
template <typename F>
void EachGroup(size_t count, bool side_by_side, const F& f) {
  if (count < 2 || !side_by_side) {
    for (size_t g = 0; g < count; ++g) f(g);
    return;
  }
  // LibTorch's worker threads do not inherit the caller's modes.
  const bool inference = c10::InferenceMode::is_enabled();
  at::parallel_for(0, static_cast<int64_t>(count), 1, [&](int64_t first, int64_t last) {
    c10::InferenceMode mode(inference);
    for (int64_t g = first; g < last; ++g) f(static_cast<size_t>(g));
  });
}

}  // namespace

ForwardResult ClcaModel::Impl::Run(const Tensor& images, double keep_rate, bool training,
                                   std::vector<Tensor>* losses) const {
  return std::move(RunGroups(images, {images.size(0)}, {keep_rate}, training, losses).front());
}

std::vector<ForwardResult> ClcaModel::Impl::RunGroups(const Tensor& images,
                                                      const std::vector<int64_t>& sizes,
                                                      const std::vector<double>& keep_rates,
                                                      bool training,
                                                      std::vector<Tensor>* losses) const {
  const ModelConfig& c = config;
  // The images go on as one group up to the first reduction, the first block
  // where their keep rates make a difference.
  std::vector<RunGroup> groups(1);
  groups.front().keep_rate = keep_rates.front();
  const Tensor embedded = Embed(images);
  groups.front().tokens.x = embedded;
  if (reducer && reducer->tracks_recovered()) {
    groups.front().tokens.recovered =
        torch::zeros({embedded.size(0), embedded.size(1), 1}, embedded.options());
  }
  groups.front().pool_end =
      embedded.size(1) - (c.has_clr() && !c.clc_pool_clr ? c.num_clr : 0);
  const int64_t n = c.num_patches();
  const bool side_by_side =
      images.device().is_cpu() && !training && !torch::GradMode::is_enabled();
  const std::vector<int> recovery = c.recovery_layers();
  const std::set<int> recovery_set(recovery.begin(), recovery.end());
  size_t step_index = 0;

  for (int i = 0; i < c.depth; ++i) {
    const BlockWeights& b = blocks[i];
    const bool at_location =
        step_index < c.reduction_loc.size() && c.reduction_loc[step_index] == i;
    const bool reduces = reducer && at_location;
    if (reduces && groups.size() < sizes.size()) {
      groups = SplitGroup(std::move(groups.front()), sizes, keep_rates);
    }
    const auto step = [&](const RunGroup& g) {
      return ReductionStep{static_cast<int>(step_index), g.keep_rate, n, training};
    };
    const bool after_attention =
        reduces && reducer->stage() == TokenReducer::Stage::kAfterAttention;
    const bool inside_attention =
        reduces && reducer->stage() == TokenReducer::Stage::kInsideAttention;
    if (reduces && reducer->stage() == TokenReducer::Stage::kBeforeBlock) {
      EachGroup(groups.size(), side_by_side, [&](size_t g) {
        reducer->Reduce(step(groups[g]), AttentionSummary{}, groups[g].tokens);
      });
    }
    const std::vector<Tensor> projected =
        Rowwise(TokensOf(groups), [&](const Tensor& x) { return b.qkv(b.norm1(x)); });
    std::vector<Tensor> heads(groups.size());
    std::vector<AttentionSummary> summaries(groups.size());
    bool ragged = groups.size() > 1 && !inside_attention;
    for (size_t g = 0; ragged && g < groups.size(); ++g) {
      ragged = CpuAttention(b, projected[g], groups[g].tokens);
    }
    if (ragged) {
      // Every group's attention in one parallel loop, written where the
      // output projection reads its rows (JoinRows finds them adjacent).
      int64_t total = 0;
      for (const Tensor& p : projected) total += p.size(0) * p.size(1);
      const int64_t dim = projected.front().size(2) / 3;
      const Tensor rows = torch::empty({PaddedRows(total), dim}, projected.front().options());
      rows.narrow(0, total, rows.size(0) - total).zero_();
      std::vector<onednn::AttentionBatch> batches(groups.size());
      std::vector<Tensor> cls_rows(groups.size());
      int64_t start = 0;
      for (size_t g = 0; g < groups.size(); ++g) {
        const Tensor& p = projected[g];
        batches[g].qkv = p;
        batches[g].bias = AttentionBias(groups[g].tokens, p);
        batches[g].out =
            rows.narrow(0, start, p.size(0) * p.size(1)).view({p.size(0), p.size(1), dim});
        if (after_attention && reducer->needs_cls_attention()) batches[g].cls_rows = &cls_rows[g];
        start += p.size(0) * p.size(1);
      }
      onednn::Attention(batches, c.num_heads);
      for (size_t g = 0; g < groups.size(); ++g) heads[g] = batches[g].out;
      if (after_attention) {
        EachGroup(groups.size(), side_by_side,
                  [&](size_t g) { Summarise(projected[g], cls_rows[g], &summaries[g]); });
      }
    }
    for (size_t g = 0; !ragged && g < groups.size(); ++g) {
      Tokens& tokens = groups[g].tokens;
      const ReductionStep select = step(groups[g]);
      Tensor selected;
      heads[g] = Attention(b, projected[g], tokens, after_attention ? &summaries[g] : nullptr,
                           inside_attention ? &select : nullptr, &selected);
      if (selected.defined()) {
        tokens.x = tokens.x.gather(1, selected.unsqueeze(-1).expand({-1, -1, tokens.x.size(2)}));
      }
    }
    std::vector<Tensor> x =
        Rowwise(TokensOf(groups), heads, [&](const Tensor& residual, const Tensor& h) {
          return b.ls1.defined() ? residual + b.proj(h) * b.ls1 : b.proj.AddTo(residual, h);
        });
    for (size_t g = 0; g < groups.size(); ++g) groups[g].tokens.x = x[g];
    if (after_attention) {
      EachGroup(groups.size(), side_by_side, [&](size_t g) {
        reducer->Reduce(step(groups[g]), summaries[g], groups[g].tokens);
      });
    }
    x = Rowwise(TokensOf(groups), [&](const Tensor& residual) {
      Tensor hidden = b.fc1.Gelu(b.norm2(residual));
      return b.ls2.defined() ? residual + b.fc2(hidden) * b.ls2 : b.fc2.AddTo(residual, hidden);
    });
    if (at_location) ++step_index;

    EachGroup(groups.size(), side_by_side, [&](size_t g) {
      RunGroup& group = groups[g];
      Tokens& tokens = group.tokens;
      tokens.x = x[g];
      group.result.tokens.push_back(tokens.x.size(1));
      if (c.clc && recovery_set.count(i)) {
        group.pool_end = tokens.x.size(1);
        if (!group.cache.empty()) {
          Tensor recovered = torch::cat(group.cache, 1);
          group.cache.clear();
          const int64_t count = recovered.size(1);
          AppendOnes(tokens.size, count);
          AppendOnes(tokens.mask, count);
          AppendOnes(tokens.policy, count);
          AppendOnes(tokens.recovered, count);
          tokens.x = torch::cat({tokens.x, recovered}, 1);
        }
      }
      if (c.clc && i < recovery.back()) {
        // Carriers: the mean of the current patch tokens, then the last tokens
        // (positionally: after EViT that slot holds the fused token).
        std::vector<Tensor> carriers;
        if (c.clc_include_gap) {
          const int64_t start = c.clc_pool_cls ? 0 : 1;
          carriers.push_back(PoolTokens(tokens, start, group.pool_end));
        }
        if (c.has_clr()) carriers.push_back(LastTokens(tokens, c.num_clr));
        group.cache.push_back(torch::cat(carriers, 1));
      }
      if (c.ifa_head && (at_location || i == c.depth - 1)) {
        group.cls_per_stage.push_back(tokens.x.select(1, 0));
      }
    });
  }
  if (groups.size() < sizes.size()) {
    groups = SplitGroup(std::move(groups.front()), sizes, keep_rates);
  }
  // One head for every group: it reads only each image's CLS tokens.
  Tensor logits;
  if (groups.size() > 1) {
    std::vector<Tensor> cls;
    std::vector<std::vector<Tensor>> stages(groups.front().cls_per_stage.size());
    for (const RunGroup& group : groups) {
      cls.push_back(group.tokens.x.narrow(1, 0, 1));
      for (size_t s = 0; s < stages.size(); ++s) stages[s].push_back(group.cls_per_stage[s]);
    }
    std::vector<Tensor> cls_per_stage;
    for (const std::vector<Tensor>& stage : stages) cls_per_stage.push_back(torch::cat(stage));
    logits = Head(torch::cat(cls), cls_per_stage, training).to(torch::kFloat32);
  }
  std::vector<ForwardResult> results;
  results.reserve(groups.size());
  int64_t first = 0;
  for (RunGroup& group : groups) {
    const int64_t n = group.tokens.x.size(0);
    group.result.logits =
        logits.defined()
            ? logits.narrow(0, first, n)
            : Head(group.tokens.x, group.cls_per_stage, training).to(torch::kFloat32);
    first += n;
    if (losses) {
      for (Tensor& l : group.tokens.losses) losses->push_back(std::move(l));
    }
    results.push_back(std::move(group.result));
  }
  return results;
}

ClcaModel::ClcaModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClcaModel::~ClcaModel() = default;

absl::StatusOr<std::unique_ptr<ClcaModel>> ClcaModel::Create(const ModelConfig& config,
                                                             const StateDict& weights,
                                                             const ModelOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->options = options;
  auto dtype = ComputeType(options.precision);
  if (!dtype.ok()) return dtype.status();
  impl->dtype = *dtype;
  if (options.trainable && options.precision != Precision::kFloat32) {
    return absl::InvalidArgumentError("a trainable model computes in float32");
  }
  try {
    impl->device = torch::Device(options.device);
    if (impl->device.is_cuda() && !torch::cuda::is_available()) {
      return absl::FailedPreconditionError(
          absl::StrCat("device '", options.device, "' requested but CUDA is not available"));
    }
    if (options.trainable) {
      // Own float32 copies on the device; statistics and counters are buffers.
      StateDict own;
      for (const auto& [name, t] : weights) {
        Tensor copy = t.detach().to(impl->device, t.is_floating_point() ? torch::kFloat32
                                                                         : t.scalar_type(),
                                    /*non_blocking=*/false, /*copy=*/true)
                          .contiguous();
        const bool buffer = name.find("running_") != std::string::npos || !t.is_floating_point();
        if (!buffer) copy.requires_grad_(true);
        own.push_back({name, copy});
      }
      if (auto s = impl->Load(own); !s.ok()) return s;
    } else {
      c10::InferenceMode guard;
      if (auto s = impl->Load(weights); !s.ok()) return s;
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot build model '", config.model, "': ", ExceptionMessage(e)));
  }
  return std::unique_ptr<ClcaModel>(new ClcaModel(std::move(impl)));
}

absl::Status ClcaModel::Impl::CheckImages(const Tensor& images) const {
  const ModelConfig& c = config;
  if (!images.defined() || images.dim() != 4 || images.size(1) != 3 ||
      images.size(2) != c.input_size || images.size(3) != c.input_size || images.size(0) < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input must be a [B,3,", c.input_size, ",", c.input_size, "] tensor, got [",
        images.defined() ? absl::StrJoin(images.sizes(), ",") : "undefined", "]"));
  }
  if (!images.is_floating_point()) {
    return absl::InvalidArgumentError("input must be a floating-point tensor");
  }
  return absl::OkStatus();
}

absl::StatusOr<ForwardResult> ClcaModel::Forward(const torch::Tensor& images, double keep_rate) const {
  if (auto s = ValidateKeepRate(keep_rate); !s.ok()) return s;
  if (auto s = impl_->CheckImages(images); !s.ok()) return s;
  try {
    c10::InferenceMode guard;
    return impl_->Run(images.to(impl_->device, impl_->dtype), keep_rate);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("forward pass failed: ", ExceptionMessage(e)));
  }
}

absl::StatusOr<MixedForwardResult> ClcaModel::ForwardMixed(
    const torch::Tensor& images, const std::vector<double>& keep_rates) const {
  if (auto s = impl_->CheckImages(images); !s.ok()) return s;
  if (static_cast<int64_t>(keep_rates.size()) != images.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat("got ", keep_rates.size(), " keep rates for ",
                                                   images.size(0), " images"));
  }
  for (double kr : keep_rates) {
    if (auto s = ValidateKeepRate(kr); !s.ok()) return s;
  }
  // Groups of one keep rate, in order of first appearance.
  std::vector<double> rates;
  std::vector<std::vector<int64_t>> members;
  for (size_t i = 0; i < keep_rates.size(); ++i) {
    const auto it = std::find(rates.begin(), rates.end(), keep_rates[i]);
    const size_t g = static_cast<size_t>(it - rates.begin());
    if (it == rates.end()) {
      rates.push_back(keep_rates[i]);
      members.emplace_back();
    }
    members[g].push_back(static_cast<int64_t>(i));
  }
  std::vector<int64_t> order, sizes;
  for (const auto& m : members) {
    order.insert(order.end(), m.begin(), m.end());
    sizes.push_back(static_cast<int64_t>(m.size()));
  }
  try {
    c10::InferenceMode guard;
    Tensor input = images.to(impl_->device, impl_->dtype);
    Tensor index;
    if (rates.size() > 1) {
      index = torch::tensor(order, torch::kLong).to(impl_->device);
      input = input.index_select(0, index);
    }
    std::vector<ForwardResult> parts =
        impl_->RunGroups(input, sizes, rates, /*training=*/false, nullptr);
    MixedForwardResult result;
    result.tokens.resize(keep_rates.size());
    std::vector<Tensor> logits;
    for (size_t g = 0; g < parts.size(); ++g) {
      logits.push_back(parts[g].logits);
      for (int64_t i : members[g]) result.tokens[i] = parts[g].tokens;
    }
    result.logits = logits.size() == 1 ? logits.front() : torch::cat(logits, 0);
    if (index.defined()) {
      result.logits = torch::empty_like(result.logits).index_copy_(0, index, result.logits);
    }
    return result;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("forward pass failed: ", ExceptionMessage(e)));
  }
}

absl::StatusOr<TrainingOutput> ClcaModel::ForwardTrain(const torch::Tensor& images,
                                                       double keep_rate) {
  if (!impl_->options.trainable) {
    return absl::FailedPreconditionError("the model was not created trainable");
  }
  if (auto s = ValidateKeepRate(keep_rate); !s.ok()) return s;
  if (auto s = impl_->CheckImages(images); !s.ok()) return s;
  try {
    std::vector<torch::Tensor> losses;
    TrainingOutput out;
    out.logits = impl_->Run(images.to(impl_->device, torch::kFloat32), keep_rate,
                            /*training=*/true, &losses)
                     .logits;
    out.auxiliary_loss = torch::zeros({}, out.logits.options());
    for (const torch::Tensor& l : losses) out.auxiliary_loss = out.auxiliary_loss + l;
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : impl_->loaded) {
      if (absl::EndsWith(name, "num_batches_tracked")) t.add_(1);
    }
    return out;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("training forward pass failed: ", ExceptionMessage(e)));
  }
}

std::vector<std::pair<std::string, torch::Tensor>> ClcaModel::trainable_parameters() const {
  return impl_->parameters;
}

const ModelConfig& ClcaModel::config() const { return impl_->config; }
const ModelOptions& ClcaModel::options() const { return impl_->options; }
torch::Device ClcaModel::device() const { return impl_->device; }
StateDict ClcaModel::state_dict() const {
  StateDict out = impl_->loaded;
  for (auto& [name, t] : out) {
    if (auto it = impl_->packed_weights.find(name); it != impl_->packed_weights.end()) {
      t = it->second->packed->Weight();
    } else {
      t = t.detach();
    }
  }
  return out;
}

int64_t ClcaModel::parameter_count() const {
  int64_t count = 0;
  for (const auto& [name, t] : impl_->loaded) {
    if (auto it = impl_->packed_weights.find(name); it != impl_->packed_weights.end()) {
      count += it->second->packed->in_features() * it->second->packed->out_features();
    } else if (t.is_floating_point()) {
      count += t.numel();
    }
  }
  return count;
}

}  // namespace clca
