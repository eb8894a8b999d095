// The seam between the transformer and its token-reduction method. Each method
// is a TokenReducer built once per model (holding only learned parameters);
// everything that varies per call (keep rate, token sizes) is passed in.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "models/core/config.h"
#include "models/core/weights.h"

namespace clca {

// The token sequence of one forward call.
struct Tokens {
  // [B, N, C]; CLS first.
  torch::Tensor x;
  // [B, N, 1] sizes of merged tokens (ToMe), or undefined when all are 1.
  torch::Tensor size;
  // [B, N] bool, false for padding in a ragged batch (ATS), or undefined
  // when every token is real. Padding never affects a real token.
  torch::Tensor mask;
  // [B, N, 1], 1 for tokens appended from the cross-layer cache, 0 for the
  // rest; kept only for reducers whose tracks_recovered() is true (they keep
  // it in step with the tokens they select), undefined otherwise.
  torch::Tensor recovered;
  // Training only (DynamicViT): [B, N, 1] 0/1 keep decisions. Attention then
  // ignores dropped tokens instead of the tokens being removed; undefined
  // otherwise.
  torch::Tensor policy;
  // Training only: auxiliary losses (scalars) the reducer adds to the
  // classification loss.
  std::vector<torch::Tensor> losses;
};

// What the attention of a block exposes to methods that reduce after it.
struct AttentionSummary {
  // [B, N-1]: CLS attention to every other token, averaged over heads.
  torch::Tensor cls_attention;
  // [B, N, head_dim]: keys averaged over heads.
  torch::Tensor key_mean;
};

// One reduction location of one forward call.
struct ReductionStep {
  int index = 0;            // p: 0 for the first location
  double keep_rate = 1.0;   // validated by the caller
  int64_t num_patches = 0;  // n, patches of the input image
  bool training = false;    // a training forward (see ClcaModel::ForwardTrain)
};

class TokenReducer {
 public:
  enum class Stage {
    kBeforeBlock,     // DynamicViT, PatchMerger, SiT, DPC-KNN
    kAfterAttention,  // EViT, Top-K, ToMe: between attention and MLP
    kInsideAttention,  // ATS: picks the query rows attention outputs
  };

  virtual ~TokenReducer() = default;
  virtual Stage stage() const = 0;
  virtual bool needs_cls_attention() const { return false; }
  virtual bool needs_key_mean() const { return false; }
  // Whether merged-token sizes feed the attention (ToMe's proportional attention).
  virtual bool proportional_attention() const { return false; }
  // Whether the forward keeps Tokens::recovered (DynamicViT leaves recovered
  // tokens out of its predictor's global feature).
  virtual bool tracks_recovered() const { return false; }
  // Puts learned parameters on the forward's device and type; called once,
  // after loading and before any forward.
  virtual void MoveTo(torch::Device device, torch::ScalarType dtype) {}

  // Sequence length after the reduction, given the length before it (CLS and
  // cached tokens included). Forward and the cost model both use it.
  virtual int64_t TokensAfter(const ReductionStep& step, int64_t length) const = 0;
  // Multiply-accumulates per image of the reduction's own work.
  virtual double ExtraMacs(const ReductionStep& step, int64_t length, int embed_dim,
                           int head_dim) const {
    return 0;
  }
  // Reduces `tokens` in place (kBeforeBlock, kAfterAttention).
  virtual void Reduce(const ReductionStep& step, const AttentionSummary& attention,
                      Tokens& tokens) const {}
  // kInsideAttention: given the attention probabilities [B, H, N, N] and
  // values [B, H, N, D], returns the [B, N'] indices of the tokens that go on
  // (the block then outputs only those rows) and sets `tokens.mask` for them.
  virtual torch::Tensor SelectTokens(const ReductionStep& step, const torch::Tensor& probs,
                                     const torch::Tensor& values, Tokens& tokens) const {
    return {};
  }
};

// Tokens kept at the p-th reduction location by the methods that target a
// count of the initial patches: int(n * keep_rate^(p+1)), at least 1.
int64_t TargetTokens(int64_t num_patches, double keep_rate, int location_index);

}  // namespace clca
