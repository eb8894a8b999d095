// EViT and Top-K: keep the tokens the CLS token attends to most. EViT also
// fuses the dropped ones into one token, weighted by that attention.
#include <cmath>

#include "models/reduction/methods.h"

namespace clca {
namespace {

// Non-CLS tokens kept out of `others`: ceil(keep_rate * others).
int64_t KeptTokens(double keep_rate, int64_t others) {
  return static_cast<int64_t>(std::ceil(keep_rate * static_cast<double>(others)));
}

class ClsAttentionReducer : public TokenReducer {
 public:
  explicit ClsAttentionReducer(bool fuse) : fuse_(fuse) {}

  Stage stage() const override { return Stage::kAfterAttention; }
  bool needs_cls_attention() const override { return true; }

  int64_t TokensAfter(const ReductionStep& step, int64_t length) const override {
    int64_t keep = KeptTokens(step.keep_rate, length - 1);
    if (step.keep_rate >= 1.0 || keep >= length - 1) return length;
    return 1 + keep + (fuse_ ? 1 : 0);
  }

  double ExtraMacs(const ReductionStep& step, int64_t length, int embed_dim,
                   int head_dim) const override {
    if (!fuse_ || TokensAfter(step, length) == length) return 0;
    // The weighted sum of the dropped tokens.
    return static_cast<double>(length - 1 - KeptTokens(step.keep_rate, length - 1)) * embed_dim;
  }

  void Reduce(const ReductionStep& step, const AttentionSummary& attention,
              Tokens& tokens) const override {
    const torch::Tensor& x = tokens.x;
    const int64_t length = x.size(1);
    if (TokensAfter(step, length) == length) return;
    const int64_t keep = KeptTokens(step.keep_rate, length - 1);
    const int64_t channels = x.size(2);
    torch::Tensor others = x.narrow(1, 1, length - 1);
    const torch::Tensor& score = attention.cls_attention;  // [B, N-1]
    // Highest first, as the reference's sorted top-k.
    torch::Tensor order = score.argsort(/*dim=*/1, /*descending=*/true);
    torch::Tensor kept_idx = order.narrow(1, 0, keep);
    torch::Tensor kept = others.gather(1, kept_idx.unsqueeze(-1).expand({-1, -1, channels}));
    std::vector<torch::Tensor> parts = {x.narrow(1, 0, 1), kept};
    if (fuse_) {
      // Dropped tokens in index order, weighted by their CLS attention.
      torch::Tensor dropped_idx = std::get<0>(order.narrow(1, keep, length - 1 - keep).sort(1));
      torch::Tensor dropped =
          others.gather(1, dropped_idx.unsqueeze(-1).expand({-1, -1, channels}));
      torch::Tensor weight = score.gather(1, dropped_idx).unsqueeze(-1);
      parts.push_back((dropped * weight).sum(1, /*keepdim=*/true));
    }
    tokens.x = torch::cat(parts, 1);
  }

 private:
  bool fuse_;
};

}  // namespace

std::unique_ptr<TokenReducer> MakeClsAttentionReducer(bool fuse_dropped) {
  return std::make_unique<ClsAttentionReducer>(fuse_dropped);
}

}  // namespace clca
