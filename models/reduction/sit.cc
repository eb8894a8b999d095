// SiT token slimming (Zong et al., 2022): before the block, an MLP gives every
// non-CLS token one logit per output; a softmax over the tokens turns each
// output's logits into mixing weights, and the mixes replace those tokens.
#include "models/core/layers.h"
#include "models/reduction/util.h"

namespace clca {

TokenMix Slim(const torch::Tensor& tokens, const torch::Tensor& logits,
              const torch::Tensor& scale) {
  torch::Tensor weights = (logits * scale).softmax(1).transpose(1, 2);
  return {torch::matmul(weights, tokens), weights};
}

namespace {

class SitReducer : public TokenReducer {
 public:
  SitReducer(const ModelConfig& config, WeightStore& weights) {
    const int64_t c = config.embed_dim, hidden = Hidden(config);
    layers_.resize(config.reduction_loc.size());
    for (size_t p = 0; p < layers_.size(); ++p) {
      Layer& layer = layers_[p];
      const std::string prefix = absl::StrCat("cluster_layers.", p);
      layer.learned = TrainedMergeCount(config, static_cast<int>(p));
      layer.norm.Load(weights, prefix + ".weight.0", c, 1e-5);
      layer.fc1.Load(weights, prefix + ".weight.1", c, hidden);
      layer.fc2.weight =
          TakeMergeOutputs(weights, prefix + ".weight.3.weight", {layer.learned, hidden});
      layer.fc2.bias = TakeMergeOutputs(weights, prefix + ".weight.3.bias", {layer.learned});
      layer.scale = weights.Take(prefix + ".scale", {1, 1, 1});
      // A layer built with no output: one zero output, i.e. the plain mean.
      if (layer.learned == 0) {
        layer.fc2.weight = torch::zeros({1, hidden});
        layer.fc2.bias = torch::zeros({1});
      }
    }
  }

  // The reference's MLP width: int(C * 0.5).
  static int64_t Hidden(const ModelConfig& config) { return config.embed_dim / 2; }

  Stage stage() const override { return Stage::kBeforeBlock; }

  void MoveTo(torch::Device device, torch::ScalarType dtype) override {
    for (Layer& l : layers_) {
      for (torch::Tensor* t : {&l.norm.weight, &l.norm.bias, &l.fc1.weight, &l.fc1.bias,
                               &l.fc2.weight, &l.fc2.bias, &l.scale}) {
        if (t->defined()) *t = t->to(device, dtype).contiguous();
      }
    }
  }

  // CLS, then one token per output used.
  int64_t TokensAfter(const ReductionStep& step, int64_t length) const override {
    return 1 + Outputs(step);
  }

  double ExtraMacs(const ReductionStep& step, int64_t length, int embed_dim,
                   int head_dim) const override {
    const double m = static_cast<double>(length - 1), c = embed_dim;
    const double hidden = embed_dim / 2, k = static_cast<double>(Outputs(step));
    // The two linear layers, then the weighted sums.
    return m * c * hidden + m * hidden * k + k * m * c;
  }

  void Reduce(const ReductionStep& step, const AttentionSummary& attention,
              Tokens& tokens) const override {
    const Layer& layer = layers_[step.index];
    const torch::Tensor& x = tokens.x;
    // Carriers and recovered cache tokens are slimmed like patches.
    torch::Tensor others = x.narrow(1, 1, x.size(1) - 1);
    const int64_t k = Outputs(step);
    torch::Tensor hidden = at::gelu(layer.fc1(layer.norm(others)));
    torch::Tensor logits =
        at::linear(hidden, layer.fc2.weight.narrow(0, 0, k), layer.fc2.bias.narrow(0, 0, k));
    TokenMix mix = Slim(others, logits, layer.scale);
    tokens.x = torch::cat({x.narrow(1, 0, 1), mix.tokens}, 1);
  }

 private:
  struct Layer {
    LayerNormWeights norm;
    LinearWeights fc1;
    LinearWeights fc2;    // [learned, hidden]
    torch::Tensor scale;  // [1, 1, 1]
    int64_t learned = 0;
  };

  // The first outputs of the layer: as many as the keep rate asks for, up to
  // as many as were trained. Each output's softmax runs over the tokens, so
  // leaving outputs out does not change the others.
  int64_t Outputs(const ReductionStep& step) const {
    return LearnedMergeCount(step, layers_[step.index].learned);
  }

  std::vector<Layer> layers_;
};

}  // namespace

std::unique_ptr<TokenReducer> MakeSitReducer(const ModelConfig& config, WeightStore& weights) {
  return std::make_unique<SitReducer>(config, weights);
}

ParameterShapes SitParameterShapes(const ModelConfig& config) {
  const int64_t c = config.embed_dim, hidden = SitReducer::Hidden(config);
  ParameterShapes shapes;
  for (size_t p = 0; p < config.reduction_loc.size(); ++p) {
    const std::string prefix = absl::StrCat("cluster_layers.", p);
    const int64_t k = TrainedMergeCount(config, static_cast<int>(p));
    shapes.push_back({prefix + ".scale", {1, 1, 1}});
    shapes.push_back({prefix + ".weight.0.weight", {c}});
    shapes.push_back({prefix + ".weight.0.bias", {c}});
    shapes.push_back({prefix + ".weight.1.weight", {hidden, c}});
    shapes.push_back({prefix + ".weight.1.bias", {hidden}});
    shapes.push_back({prefix + ".weight.3.weight", {k, hidden}});
    shapes.push_back({prefix + ".weight.3.bias", {k}});
  }
  return shapes;
}

}  // namespace clca
