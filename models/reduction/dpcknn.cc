// DPC-KNN token clustering (as in TCFormer, Zeng et al., CVPR 2022): before the
// block, the patch-derived tokens are clustered by density peaks and each
// cluster becomes the score-weighted average of its tokens. CLS stays first;
// the carriers and every recovered cache token stay, in order, at the end.
#include <algorithm>
#include <cmath>

#include "models/core/layers.h"
#include "models/reduction/util.h"

namespace clca {

DpcKnnClusters ClusterDpcKnn(const torch::Tensor& tokens, int64_t clusters, int64_t neighbours) {
  const int64_t batch = tokens.size(0), m = tokens.size(1);
  torch::Tensor dist =
      torch::cdist(tokens, tokens) / std::sqrt(static_cast<double>(tokens.size(2)));
  torch::Tensor nearest = std::get<0>(dist.topk(std::min(neighbours, m), -1, /*largest=*/false));
  torch::Tensor density = (-nearest.pow(2).mean(-1)).exp();  // [B, M]
  // denser[b][i][j]: token j is denser than token i. The densest token's
  // distance is the largest in its image.
  torch::Tensor denser = density.unsqueeze(1) > density.unsqueeze(2);
  torch::Tensor farthest = std::get<0>(dist.flatten(1).max(-1)).view({batch, 1, 1});
  torch::Tensor to_denser = std::get<0>(torch::where(denser, dist, farthest).min(-1));
  DpcKnnClusters out;
  out.centers = std::get<1>((to_denser * density).topk(clusters, -1));
  torch::Tensor to_centers = dist.gather(1, out.centers.unsqueeze(-1).expand({batch, clusters, m}));
  out.assignment = to_centers.argmin(1);
  // A centre belongs to its own cluster even when another centre is as near.
  out.assignment.scatter_(1, out.centers,
                          torch::arange(clusters, out.centers.options()).expand({batch, clusters}));
  return out;
}

torch::Tensor MergeClusters(const torch::Tensor& tokens, const torch::Tensor& assignment,
                            int64_t clusters, const torch::Tensor& weight) {
  const int64_t batch = tokens.size(0), m = tokens.size(1), c = tokens.size(2);
  torch::Tensor index = assignment.unsqueeze(-1);  // [B, M, 1]
  torch::Tensor total =
      torch::zeros({batch, clusters, 1}, weight.options()).scatter_add(1, index, weight) + 1e-6;
  torch::Tensor share = weight / total.gather(1, index);
  return torch::zeros({batch, clusters, c}, tokens.options())
      .scatter_add(1, index.expand({batch, m, c}), tokens * share);
}

namespace {

// The reference's neighbourhood size (`k_neighbors`, default 5).
constexpr int64_t kNeighbours = 5;

class DpcKnnReducer : public TokenReducer {
 public:
  DpcKnnReducer(const ModelConfig& config, WeightStore& weights)
      : locations_(static_cast<int>(config.reduction_loc.size())) {
    scores_.resize(config.reduction_loc.size());
    for (size_t p = 0; p < scores_.size(); ++p) {
      scores_[p].Load(weights, absl::StrCat("cluster_layers.", p, ".score"), config.embed_dim, 1);
    }
  }

  Stage stage() const override { return Stage::kBeforeBlock; }

  void MoveTo(torch::Device device, torch::ScalarType dtype) override {
    for (LinearWeights& s : scores_) {
      for (torch::Tensor* t : {&s.weight, &s.bias}) {
        if (t->defined()) *t = t->to(device, dtype).contiguous();
      }
    }
  }

  // Clusters the reference makes at the p-th location: int(n * kr^(p+1)),
  // raised to the neighbourhood size before the last location (so that the
  // next one still has enough tokens for its neighbours) and to one at it.
  int64_t Clusters(const ReductionStep& step, int p) const {
    const auto count = static_cast<int64_t>(static_cast<double>(step.num_patches) *
                                            std::pow(step.keep_rate, p + 1));
    return p + 1 < locations_ ? std::max(count, kNeighbours) : std::max<int64_t>(count, 1);
  }

  // (tokens clustered, clusters made) at this step: the tokens clustered are
  // what the previous location left of the patches.
  std::pair<int64_t, int64_t> Sizes(const ReductionStep& step, int64_t length) const {
    int64_t clustered = step.num_patches;
    for (int p = 0; p < step.index; ++p) clustered = std::min(clustered, Clusters(step, p));
    clustered = std::min(clustered, length - 1);
    return {clustered, std::min(clustered, Clusters(step, step.index))};
  }

  int64_t TokensAfter(const ReductionStep& step, int64_t length) const override {
    auto [clustered, clusters] = Sizes(step, length);
    return length - clustered + clusters;
  }

  double ExtraMacs(const ReductionStep& step, int64_t length, int embed_dim,
                   int head_dim) const override {
    const double m = static_cast<double>(Sizes(step, length).first);
    // Pairwise distances, the token scores and the weighted merge.
    return m * m * embed_dim + 2 * m * embed_dim;
  }

  void Reduce(const ReductionStep& step, const AttentionSummary& attention,
              Tokens& tokens) const override {
    const torch::Tensor& x = tokens.x;
    const int64_t length = x.size(1);
    auto [clustered, clusters] = Sizes(step, length);
    torch::Tensor patches = x.narrow(1, 1, clustered);
    torch::Tensor weight = scores_[step.index](patches).exp();
    // Clustering runs in float32: half-precision distances tie too often.
    DpcKnnClusters plan =
        ClusterDpcKnn(patches.to(torch::kFloat32), clusters, std::min(kNeighbours, clustered));
    tokens.x =
        torch::cat({x.narrow(1, 0, 1), MergeClusters(patches, plan.assignment, clusters, weight),
                    x.narrow(1, 1 + clustered, length - 1 - clustered)},
                   1);
  }

 private:
  int locations_;
  std::vector<LinearWeights> scores_;  // cluster_layers.p.score: C -> 1
};

}  // namespace

std::unique_ptr<TokenReducer> MakeDpcKnnReducer(const ModelConfig& config, WeightStore& weights) {
  return std::make_unique<DpcKnnReducer>(config, weights);
}

ParameterShapes DpcKnnParameterShapes(const ModelConfig& config) {
  ParameterShapes shapes;
  for (size_t p = 0; p < config.reduction_loc.size(); ++p) {
    const std::string prefix = absl::StrCat("cluster_layers.", p, ".score");
    shapes.push_back({prefix + ".weight", {1, config.embed_dim}});
    shapes.push_back({prefix + ".bias", {1}});
  }
  return shapes;
}

}  // namespace clca
