// Pieces shared by the reducers that run before a block (DynamicViT,
// PatchMerger, SiT, DPC-KNN), and the pure algorithm cores of those methods,
// declared here so that tests can run them on hand-made tensors.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "models/core/config.h"
#include "models/core/token_reducer.h"
#include "models/core/weights.h"
#include "models/reduction/methods.h"

namespace clca {

// Rows of `tokens` [B, N, C] at `index` [B, K] -> [B, K, C].
inline torch::Tensor GatherTokens(const torch::Tensor& tokens, const torch::Tensor& index) {
  return tokens.gather(1, index.unsqueeze(-1).expand({-1, -1, tokens.size(-1)}));
}

// How many outputs the reference builds into a learned merge layer at the
// p-th location: int(n * kr^(p+1)) for the configured keep rate and input
// size. Zero is possible (the reference then outputs no token there).
inline int64_t TrainedMergeCount(const ModelConfig& config, int location_index) {
  return static_cast<int64_t>(static_cast<double>(config.num_patches()) *
                              std::pow(config.keep_rate, location_index + 1));
}

// Tokens a learned merge (PatchMerger, SiT) outputs at `step`: the target
// int(n * kr^(p+1)), at least one, and at most the `learned` outputs the layer
// has (one zero output stands in for a layer with none).
inline int64_t LearnedMergeCount(const ReductionStep& step, int64_t learned) {
  return std::min(TargetTokens(step.num_patches, step.keep_rate, step.index),
                  std::max<int64_t>(learned, 1));
}

// Takes `name` with `shape`, like WeightStore::Take, but explains a mismatch
// of the first dimension: it is fixed by the keep rate and input size the
// layer was trained for.
inline torch::Tensor TakeMergeOutputs(WeightStore& weights, const std::string& name,
                                      const std::vector<int64_t>& shape) {
  torch::Tensor t = weights.TakeAnyShape(name);
  if (!t.defined() || t.sizes() == c10::IntArrayRef(shape)) return t;
  weights.AddProblem(absl::StrCat(
      name, " has shape [", absl::StrJoin(t.sizes(), ","), "], expected [",
      absl::StrJoin(shape, ","), "] (its ", shape[0],
      " outputs follow from keep_rate and input_size: set them to the values the checkpoint "
      "was trained with)"));
  return {};
}

// A learned soft merge: `tokens` [B, K, C] mixed from the inputs by
// `weights` [B, K, M] (each row sums to one over the M inputs).
struct TokenMix {
  torch::Tensor tokens;
  torch::Tensor weights;
};

// --- DynamicViT (dyvit.cc) ---

// Mean over the tokens of `features` [B, M, D] whose `policy` [B, M, 1] is 1;
// zero where no token is (the reference divides by zero there).
torch::Tensor PolicyMean(const torch::Tensor& features, const torch::Tensor& policy);

// Indices [B, keep] of the highest `score` [B, M] entries, highest first.
torch::Tensor BestScored(const torch::Tensor& score, int64_t keep);

// --- PatchMerger (patchmerger.cc) ---

// Each query [K, C] mixes `tokens` [B, M, C] by a softmax over the tokens of
// its dot products with them.
TokenMix QueryMerge(const torch::Tensor& tokens, const torch::Tensor& queries);

// --- SiT (sit.cc) ---

// Token slimming: `logits` [B, M, K] scaled by `scale`, softmax over the M
// tokens for each of the K outputs, then the weighted sums of `tokens` [B, M, C].
TokenMix Slim(const torch::Tensor& tokens, const torch::Tensor& logits, const torch::Tensor& scale);

// --- DPC-KNN (dpcknn.cc) ---

struct DpcKnnClusters {
  torch::Tensor centers;     // [B, K] token indices of the centres, best score first
  torch::Tensor assignment;  // [B, M] cluster (0..K-1) of every token
};

// Density-peak clustering with k-nearest-neighbour density: a token's density
// is exp(-mean squared distance to its `neighbours` nearest tokens), its
// score is density times the distance to the nearest denser token, the
// `clusters` best-scored tokens are the centres and every token joins the
// nearest centre. Distances are Euclidean over sqrt(C). Deterministic: the
// reference's tie-breaking noise is left out.
DpcKnnClusters ClusterDpcKnn(const torch::Tensor& tokens, int64_t clusters, int64_t neighbours);

// Averages the tokens of each cluster, weighted by `weight` [B, M, 1]:
// [B, M, C] -> [B, clusters, C] in cluster order.
torch::Tensor MergeClusters(const torch::Tensor& tokens, const torch::Tensor& assignment,
                            int64_t clusters, const torch::Tensor& weight);

// --- Factories (reduction.cc dispatches to them) ---

std::unique_ptr<TokenReducer> MakeDynamicVitReducer(const ModelConfig& config,
                                                    WeightStore& weights);
std::unique_ptr<TokenReducer> MakePatchMergerReducer(const ModelConfig& config,
                                                     WeightStore& weights);
std::unique_ptr<TokenReducer> MakeSitReducer(const ModelConfig& config, WeightStore& weights);
std::unique_ptr<TokenReducer> MakeDpcKnnReducer(const ModelConfig& config, WeightStore& weights);

using ParameterShapes = std::vector<std::pair<std::string, std::vector<int64_t>>>;
ParameterShapes DynamicVitParameterShapes(const ModelConfig& config);
ParameterShapes PatchMergerParameterShapes(const ModelConfig& config);
ParameterShapes SitParameterShapes(const ModelConfig& config);
ParameterShapes DpcKnnParameterShapes(const ModelConfig& config);

}  // namespace clca
