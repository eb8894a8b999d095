// PatchMerger (Renggli et al., 2022): before the block, learned queries each
// mix the layer-normalised non-CLS tokens by a softmax over their dot
// products; the mixes replace those tokens after CLS.
#include "models/core/layers.h"
#include "models/reduction/util.h"

namespace clca {

TokenMix QueryMerge(const torch::Tensor& tokens, const torch::Tensor& queries) {
  torch::Tensor weights = torch::matmul(queries, tokens.transpose(-1, -2)).softmax(-1);
  return {torch::matmul(weights, tokens), weights};
}

namespace {

class PatchMergerReducer : public TokenReducer {
 public:
  PatchMergerReducer(const ModelConfig& config, WeightStore& weights) {
    const int64_t c = config.embed_dim;
    layers_.resize(config.reduction_loc.size());
    for (size_t p = 0; p < layers_.size(); ++p) {
      Layer& layer = layers_[p];
      const std::string prefix = absl::StrCat("cluster_layers.", p);
      layer.learned = TrainedMergeCount(config, static_cast<int>(p));
      // The reference's own LayerNorm, with PyTorch's default eps.
      layer.norm.Load(weights, prefix + ".norm", c, 1e-5);
      layer.queries = TakeMergeOutputs(weights, prefix + ".queries", {layer.learned, c});
      // A layer built with no query: one zero query, i.e. the plain mean.
      if (layer.learned == 0) layer.queries = torch::zeros({1, c});
    }
  }

  Stage stage() const override { return Stage::kBeforeBlock; }

  void MoveTo(torch::Device device, torch::ScalarType dtype) override {
    for (Layer& l : layers_) {
      for (torch::Tensor* t : {&l.norm.weight, &l.norm.bias, &l.queries}) {
        if (t->defined()) *t = t->to(device, dtype).contiguous();
      }
    }
  }

  // CLS, then one token per query used.
  int64_t TokensAfter(const ReductionStep& step, int64_t length) const override {
    return 1 + Merges(step);
  }

  double ExtraMacs(const ReductionStep& step, int64_t length, int embed_dim,
                   int head_dim) const override {
    // Query-token products, then the weighted sums.
    return 2.0 * static_cast<double>(Merges(step)) * static_cast<double>(length - 1) * embed_dim;
  }

  void Reduce(const ReductionStep& step, const AttentionSummary& attention,
              Tokens& tokens) const override {
    const Layer& layer = layers_[step.index];
    const torch::Tensor& x = tokens.x;
    // Carriers and recovered cache tokens are merged like patches.
    torch::Tensor others = x.narrow(1, 1, x.size(1) - 1);
    TokenMix mix = QueryMerge(layer.norm(others), layer.queries.narrow(0, 0, Merges(step)));
    tokens.x = torch::cat({x.narrow(1, 0, 1), mix.tokens}, 1);
  }

 private:
  struct Layer {
    LayerNormWeights norm;
    torch::Tensor queries;  // [learned, C]
    int64_t learned = 0;
  };

  // The first queries of the layer: as many as the keep rate asks for, up to
  // as many as were trained.
  int64_t Merges(const ReductionStep& step) const {
    return LearnedMergeCount(step, layers_[step.index].learned);
  }

  std::vector<Layer> layers_;
};

}  // namespace

std::unique_ptr<TokenReducer> MakePatchMergerReducer(const ModelConfig& config,
                                                     WeightStore& weights) {
  return std::make_unique<PatchMergerReducer>(config, weights);
}

ParameterShapes PatchMergerParameterShapes(const ModelConfig& config) {
  const int64_t c = config.embed_dim;
  ParameterShapes shapes;
  for (size_t p = 0; p < config.reduction_loc.size(); ++p) {
    const std::string prefix = absl::StrCat("cluster_layers.", p);
    shapes.push_back({prefix + ".norm.weight", {c}});
    shapes.push_back({prefix + ".norm.bias", {c}});
    shapes.push_back({prefix + ".queries", {TrainedMergeCount(config, static_cast<int>(p)), c}});
  }
  return shapes;
}

}  // namespace clca
