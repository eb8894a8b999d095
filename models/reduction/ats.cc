// ATS, Adaptive Token Sampling (Fayyaz et al., ECCV 2022): inside attention,
// sample tokens by inverse-CDF of CLS attention weighted by value norms; the
// duplicates collapse, so each image keeps its own (ragged) number of tokens.
#include <cmath>

#include "models/reduction/methods.h"

namespace clca {
namespace {

// Sample count at location p: int(kr^(p+1) * n) + 1, as the reference.
int64_t SampleCount(const ReductionStep& step) {
  return static_cast<int64_t>(std::pow(step.keep_rate, step.index + 1) *
                              static_cast<double>(step.num_patches)) +
         1;
}

// The CDF levels sampled: torch.arange(1/2K, (2K-1)/2K, 1/K), computed as
// torch does (count from doubles, values start + i*step in double, stored as
// float). Floating point makes the count K-1 or K.
torch::Tensor SampleLevels(int64_t k, const torch::TensorOptions& options) {
  const double start = 1.0 / (2.0 * static_cast<double>(k));
  const double end = (2.0 * static_cast<double>(k) - 1.0) / (2.0 * static_cast<double>(k));
  const double step = 2.0 / (2.0 * static_cast<double>(k));
  const auto count = static_cast<int64_t>(std::ceil((end - start) / step));
  std::vector<float> levels(std::max<int64_t>(count, 0));
  for (int64_t i = 0; i < count; ++i) levels[i] = static_cast<float>(start + step * i);
  return torch::tensor(levels, options.dtype(torch::kFloat32));
}

class AtsReducer : public TokenReducer {
 public:
  Stage stage() const override { return Stage::kInsideAttention; }

  int64_t TokensAfter(const ReductionStep& step, int64_t length) const override {
    const int64_t levels = SampleLevels(SampleCount(step), torch::TensorOptions()).size(0);
    return 1 + std::min(levels, length - 1);  // an upper bound: duplicates collapse
  }

  double ExtraMacs(const ReductionStep& step, int64_t length, int embed_dim,
                   int head_dim) const override {
    const double others = static_cast<double>(length - 1);
    const double levels = static_cast<double>(TokensAfter(step, length) - 1);
    // Value norms, the significance score, and the level-to-CDF distances.
    return others * embed_dim + others * (embed_dim / head_dim) + 3 * levels * others;
  }

  torch::Tensor SelectTokens(const ReductionStep& step, const torch::Tensor& probs,
                             const torch::Tensor& values, Tokens& tokens) const override {
    const int64_t batch = probs.size(0);
    const int64_t length = probs.size(2);
    torch::Tensor cls_attention = probs.select(2, 0).narrow(-1, 1, length - 1).to(torch::kFloat32);
    torch::Tensor value_norms =
        values.narrow(2, 1, length - 1).to(torch::kFloat32).norm(2, -1);  // [B, H, N-1]
    torch::Tensor significance = (cls_attention * value_norms).sum(1);  // [B, N-1]
    torch::Tensor cdf =
        (significance / (significance.sum(-1, /*keepdim=*/true) + 1e-6)).cumsum(1);
    if (tokens.mask.defined()) {
      // Padding is never sampled, so an image samples as it would alone. (A
      // large finite value: infinity would turn the distances into NaN.)
      cdf = cdf.masked_fill(tokens.mask.narrow(1, 1, length - 1).logical_not(), 1e4);
    }
    // Nearest CDF entry per level, with torch.cdist's matrix-product formula
    // so that near-ties resolve as in the reference.
    torch::Tensor levels = SampleLevels(SampleCount(step), cdf.options()).view({1, -1, 1});
    torch::Tensor c = cdf.unsqueeze(1);  // [B, 1, N-1]
    torch::Tensor squared = levels * -2 * c + levels * levels + c * c;
    torch::Tensor distance = squared.clamp_min(1e-30).sqrt();
    torch::Tensor sampled = distance.argmin(-1) + 1;  // [B, S] token ids

    // Unique ids per image, ascending; shorter images are padded with CLS (0).
    torch::Tensor sorted = std::get<0>(sampled.sort(1));
    torch::Tensor repeat = torch::zeros_like(sorted, torch::kBool);
    if (sorted.size(1) > 1) {
      repeat.narrow(1, 1, sorted.size(1) - 1)
          .copy_(sorted.narrow(1, 1, sorted.size(1) - 1) == sorted.narrow(1, 0, sorted.size(1) - 1));
    }
    torch::Tensor unique = std::get<0>(sorted.masked_fill(repeat, length).sort(1));
    torch::Tensor real = unique < length;
    const int64_t kept = real.sum(1).max().item<int64_t>();
    unique = unique.narrow(1, 0, kept).masked_fill(real.narrow(1, 0, kept).logical_not(), 0);
    torch::Tensor cls = torch::zeros({batch, 1}, unique.options());
    tokens.mask = torch::cat({torch::ones({batch, 1}, real.options()), real.narrow(1, 0, kept)}, 1);
    return torch::cat({cls, unique}, 1);
  }
};

}  // namespace

std::unique_ptr<TokenReducer> MakeAtsReducer() { return std::make_unique<AtsReducer>(); }

}  // namespace clca
