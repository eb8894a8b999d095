// DynamicViT (Rao et al., NeurIPS 2021): before the block, a small predictor
// scores every non-CLS token. Inference keeps only the best-scored ones, CLS
// first, then highest score first; training samples hard Gumbel-softmax keep
// decisions and masks attention with them, with a keep-ratio loss.
#include <algorithm>
#include <cmath>

#include "models/core/layers.h"
#include "models/reduction/util.h"

namespace clca {

torch::Tensor PolicyMean(const torch::Tensor& features, const torch::Tensor& policy) {
  // Policies are 0/1, so clamping the count only changes the all-zero case.
  return (features * policy).sum(1, /*keepdim=*/true) /
         policy.sum(1, /*keepdim=*/true).clamp_min(1.0);
}

torch::Tensor BestScored(const torch::Tensor& score, int64_t keep) {
  return score.argsort(/*dim=*/1, /*descending=*/true).narrow(1, 0, keep);
}

namespace {

// The reference's PredictorLG: LayerNorm (eps 1e-5), Linear + GELU, then each
// token's first half of channels joined with the policy-weighted mean of the
// second half, and an MLP C -> C/2 -> C/4 -> 2 with log-softmax.
struct Predictor {
  LayerNormWeights norm;
  LinearWeights in, out1, out2, out3;

  void Load(WeightStore& w, const std::string& prefix, int64_t dim) {
    norm.Load(w, prefix + ".in_conv.0", dim, 1e-5);
    in.Load(w, prefix + ".in_conv.1", dim, dim);
    out1.Load(w, prefix + ".out_conv.0", dim, dim / 2);
    out2.Load(w, prefix + ".out_conv.2", dim / 2, dim / 4);
    out3.Load(w, prefix + ".out_conv.4", dim / 4, 2);
  }

  void MoveTo(torch::Device device, torch::ScalarType dtype) {
    for (torch::Tensor* t : {&norm.weight, &norm.bias, &in.weight, &in.bias, &out1.weight,
                             &out1.bias, &out2.weight, &out2.bias, &out3.weight, &out3.bias}) {
      if (t->defined()) *t = t->to(device, dtype).contiguous();
    }
  }

  // Log-probabilities [B, M, 2] of "keep" and "drop" for each of `tokens`
  // [B, M, C].
  torch::Tensor LogProbs(const torch::Tensor& tokens, const torch::Tensor& policy) const {
    torch::Tensor h = at::gelu(in(norm(tokens)));
    const int64_t half = h.size(-1) / 2;
    torch::Tensor local = h.narrow(-1, 0, half);
    // The reference adds its eps after the division.
    torch::Tensor global = PolicyMean(h.narrow(-1, half, h.size(-1) - half), policy) + 1e-6;
    h = torch::cat({local, global.expand({-1, h.size(1), -1})}, -1);
    h = out3(at::gelu(out2(at::gelu(out1(h)))));
    return h.log_softmax(-1);
  }

  torch::Tensor KeepScore(const torch::Tensor& tokens, const torch::Tensor& policy) const {
    return LogProbs(tokens, policy).select(-1, 0);
  }
};

class DynamicVitReducer : public TokenReducer {
 public:
  DynamicVitReducer(const ModelConfig& config, WeightStore& weights)
      : clc_(config.clc),
        initial_others_(config.num_patches() + (config.has_clr() ? config.num_clr : 0)) {
    predictors_.resize(config.reduction_loc.size());
    for (size_t p = 0; p < predictors_.size(); ++p) {
      predictors_[p].Load(weights, absl::StrCat("score_predictor.", p), config.embed_dim);
    }
  }

  Stage stage() const override { return Stage::kBeforeBlock; }
  // Recovered cache tokens are left out of the predictor's global feature.
  bool tracks_recovered() const override { return true; }

  void MoveTo(torch::Device device, torch::ScalarType dtype) override {
    for (Predictor& p : predictors_) p.MoveTo(device, dtype);
  }

  // Non-CLS tokens kept. With the cross-layer cache the reference keeps
  // int((N - 2) * kr) of the current N tokens (so kr 1 still drops one);
  // without it, int(n' * kr^(p+1)) of the n' initial non-CLS tokens. At least one.
  int64_t Kept(const ReductionStep& step, int64_t length) const {
    const double count =
        clc_ ? static_cast<double>(length - 2) * step.keep_rate
             : static_cast<double>(initial_others_) * std::pow(step.keep_rate, step.index + 1);
    return std::clamp<int64_t>(static_cast<int64_t>(count), 1, std::max<int64_t>(length - 1, 1));
  }

  int64_t TokensAfter(const ReductionStep& step, int64_t length) const override {
    return 1 + Kept(step, length);
  }

  double ExtraMacs(const ReductionStep& step, int64_t length, int embed_dim,
                   int head_dim) const override {
    const double m = static_cast<double>(length - 1), c = embed_dim;
    const double half = embed_dim / 2, quarter = embed_dim / 4;
    // in_conv, the masked mean of half the channels, then out_conv.
    return m * (c * c + half + c * half + half * quarter + quarter * 2);
  }

  void Reduce(const ReductionStep& step, const AttentionSummary& attention,
              Tokens& tokens) const override {
    if (step.training) return ReduceTraining(step, tokens);
    const torch::Tensor& x = tokens.x;
    const int64_t length = x.size(1);
    torch::Tensor others = x.narrow(1, 1, length - 1);
    torch::Tensor policy = tokens.recovered.defined()
                               ? 1 - tokens.recovered.narrow(1, 1, length - 1)
                               : torch::ones({x.size(0), length - 1, 1}, x.options());
    torch::Tensor score = predictors_[step.index].KeepScore(others, policy);
    torch::Tensor kept = BestScored(score, Kept(step, length));
    tokens.x = torch::cat({x.narrow(1, 0, 1), GatherTokens(others, kept)}, 1);
    if (tokens.recovered.defined()) {
      tokens.recovered = torch::cat({tokens.recovered.narrow(1, 0, 1),
                                     GatherTokens(tokens.recovered.narrow(1, 1, length - 1), kept)},
                                    1);
    }
  }

 private:
  // Weight of the keep-ratio loss (DynamicViT's default).
  static constexpr double kRatioWeight = 2.0;

  void ReduceTraining(const ReductionStep& step, Tokens& tokens) const {
    const torch::Tensor& x = tokens.x;
    const int64_t batch = x.size(0), length = x.size(1);
    if (!tokens.policy.defined()) tokens.policy = torch::ones({batch, length, 1}, x.options());
    torch::Tensor previous = tokens.policy.narrow(1, 1, length - 1);
    torch::Tensor log_probs = predictors_[step.index].LogProbs(x.narrow(1, 1, length - 1), previous);
    // Hard Gumbel-softmax with the straight-through gradient of the soft one.
    torch::Tensor gumbel = -torch::empty_like(log_probs).exponential_().log();
    torch::Tensor soft = (log_probs + gumbel).softmax(-1);
    torch::Tensor hard = torch::zeros_like(soft).scatter(-1, soft.argmax(-1, /*keepdim=*/true), 1.0);
    torch::Tensor keep = (hard - soft.detach() + soft).narrow(-1, 0, 1) * previous;
    tokens.policy = torch::cat({torch::ones({batch, 1, 1}, keep.options()), keep}, 1);
    // The count inference would keep, as a fraction of the non-CLS tokens.
    torch::Tensor alive = previous.sum({1, 2}).detach();
    torch::Tensor target =
        clc_ ? (alive - 1).clamp_min(1) * step.keep_rate
             : torch::full_like(alive, static_cast<double>(initial_others_) *
                                           std::pow(step.keep_rate, step.index + 1));
    torch::Tensor error = (keep.sum({1, 2}) - target) / static_cast<double>(length - 1);
    tokens.losses.push_back(kRatioWeight * error.pow(2).mean());
  }

  bool clc_;
  int64_t initial_others_;
  std::vector<Predictor> predictors_;
};

}  // namespace

std::unique_ptr<TokenReducer> MakeDynamicVitReducer(const ModelConfig& config,
                                                    WeightStore& weights) {
  return std::make_unique<DynamicVitReducer>(config, weights);
}

ParameterShapes DynamicVitParameterShapes(const ModelConfig& config) {
  const int64_t c = config.embed_dim;
  ParameterShapes shapes;
  auto linear = [&shapes](const std::string& name, int64_t in, int64_t out) {
    shapes.push_back({name + ".weight", {out, in}});
    shapes.push_back({name + ".bias", {out}});
  };
  for (size_t p = 0; p < config.reduction_loc.size(); ++p) {
    const std::string prefix = absl::StrCat("score_predictor.", p);
    shapes.push_back({prefix + ".in_conv.0.weight", {c}});
    shapes.push_back({prefix + ".in_conv.0.bias", {c}});
    linear(prefix + ".in_conv.1", c, c);
    linear(prefix + ".out_conv.0", c, c / 2);
    linear(prefix + ".out_conv.2", c / 2, c / 4);
    linear(prefix + ".out_conv.4", c / 4, 2);
  }
  return shapes;
}

}  // namespace clca
