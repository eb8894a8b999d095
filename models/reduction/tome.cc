// ToMe: bipartite soft matching on head-averaged keys, size-weighted merging
// and proportional attention afterwards (Bolya et al., ICLR 2023).
#include <algorithm>
#include <cmath>
#include <limits>

#include "models/reduction/methods.h"

namespace clca {
namespace {

// Which tokens merge where: tokens alternate between set A (even positions)
// and set B (odd positions); the `r` A-tokens most similar to some B-token
// merge into it.
struct MergePlan {
  int64_t r = 0;
  torch::Tensor unmerged_idx;  // [B, |A|-r, 1] A-tokens kept, in index order
  torch::Tensor src_idx;       // [B, r, 1] A-tokens merged away
  torch::Tensor dst_idx;       // [B, r, 1] their B-token destinations
};

// Merges per the plan the reference ToMe does: output is [unmerged A, all B].
// The CLS token (position 0, in A) is never merged.
MergePlan BipartiteSoftMatching(const torch::Tensor& metric, int64_t r) {
  MergePlan plan;
  const int64_t t = metric.size(1);
  r = std::min(r, (t - 1) / 2);
  if (r <= 0) return plan;
  plan.r = r;
  torch::Tensor m = metric / metric.norm(2, -1, /*keepdim=*/true);
  using torch::indexing::Slice;
  torch::Tensor a = m.index({Slice(), Slice(0, torch::indexing::None, 2)});
  torch::Tensor b = m.index({Slice(), Slice(1, torch::indexing::None, 2)});
  torch::Tensor scores = torch::matmul(a, b.transpose(-1, -2));
  scores.index_put_({Slice(), 0, Slice()}, -std::numeric_limits<float>::infinity());
  auto [node_max, node_idx] = scores.max(-1);
  torch::Tensor edge_idx = node_max.argsort(-1, /*descending=*/true).unsqueeze(-1);
  plan.unmerged_idx = std::get<0>(edge_idx.narrow(1, r, edge_idx.size(1) - r).sort(1));
  plan.src_idx = edge_idx.narrow(1, 0, r);
  plan.dst_idx = node_idx.unsqueeze(-1).gather(1, plan.src_idx);
  return plan;
}

// Applies the plan as a sum: [B, T, c] -> [B, T - r, c].
torch::Tensor MergeSum(const MergePlan& plan, const torch::Tensor& x) {
  using torch::indexing::Slice;
  torch::Tensor src = x.index({Slice(), Slice(0, torch::indexing::None, 2)});
  torch::Tensor dst = x.index({Slice(), Slice(1, torch::indexing::None, 2)});
  const int64_t n = src.size(0), t1 = src.size(1), c = src.size(2);
  torch::Tensor unm = src.gather(1, plan.unmerged_idx.expand({n, t1 - plan.r, c}));
  torch::Tensor moved = src.gather(1, plan.src_idx.expand({n, plan.r, c}));
  dst = dst.scatter_add(1, plan.dst_idx.expand({n, plan.r, c}), moved);
  return torch::cat({unm, dst}, 1);
}

class TomeReducer : public TokenReducer {
 public:
  Stage stage() const override { return Stage::kAfterAttention; }
  bool needs_key_mean() const override { return true; }
  bool proportional_attention() const override { return true; }

  // Tokens to remove: the drop from the previous location's target count to
  // this one's (targets int(n * kr^(p+1)) of the initial patches).
  static int64_t Removal(const ReductionStep& step) {
    int64_t previous = step.index == 0
                           ? step.num_patches
                           : TargetTokens(step.num_patches, step.keep_rate, step.index - 1);
    return previous - TargetTokens(step.num_patches, step.keep_rate, step.index);
  }

  int64_t TokensAfter(const ReductionStep& step, int64_t length) const override {
    int64_t r = std::min(Removal(step), (length - 1) / 2);
    return r > 0 ? length - r : length;
  }

  double ExtraMacs(const ReductionStep& step, int64_t length, int embed_dim,
                   int head_dim) const override {
    if (TokensAfter(step, length) == length) return 0;
    // Similarity of set A to set B.
    return static_cast<double>((length + 1) / 2) * static_cast<double>(length / 2) * head_dim;
  }

  void Reduce(const ReductionStep& step, const AttentionSummary& attention,
              Tokens& tokens) const override {
    MergePlan plan = BipartiteSoftMatching(attention.key_mean, Removal(step));
    if (plan.r == 0) return;
    torch::Tensor size = tokens.size.defined()
                             ? tokens.size
                             : torch::ones({tokens.x.size(0), tokens.x.size(1), 1},
                                           tokens.x.options());
    torch::Tensor x = MergeSum(plan, tokens.x * size);
    size = MergeSum(plan, size);
    tokens.x = x / size;
    tokens.size = size;
  }
};

}  // namespace

std::unique_ptr<TokenReducer> MakeTomeReducer() { return std::make_unique<TomeReducer>(); }

}  // namespace clca
