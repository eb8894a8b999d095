#include "models/vit/cost.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "models/reduction/methods.h"

namespace clca {

absl::StatusOr<Cost> EstimateCost(const ModelConfig& config, double keep_rate) {
  if (auto s = ValidateKeepRate(keep_rate); !s.ok()) return s;
  // The token arithmetic needs no weights.
  WeightStore no_weights({});
  auto reducer = MakeReducer(config, no_weights);
  if (!reducer.ok()) return reducer.status();

  const double c = config.embed_dim;
  const int head_dim = config.embed_dim / config.num_heads;
  const double hidden = std::floor(config.embed_dim * config.mlp_ratio);
  const int64_t n = config.num_patches();
  const std::vector<int> recovery = config.recovery_layers();
  const std::set<int> recovery_set(recovery.begin(), recovery.end());
  const int carriers_per_block = (config.clc_include_gap ? 1 : 0) + config.num_clr;

  Cost cost;
  cost.macs = static_cast<double>(n) * 3 * config.patch_size * config.patch_size * c;
  int64_t length = 1 + n + config.num_clr;
  int64_t cached = 0;
  int step_index = 0;
  for (int i = 0; i < config.depth; ++i) {
    int64_t after = length;
    const bool at_location = step_index < static_cast<int>(config.reduction_loc.size()) &&
                             config.reduction_loc[step_index] == i;
    const bool reduces = *reducer && at_location;
    ReductionStep step{step_index, keep_rate, n};
    if (reduces && (*reducer)->stage() == TokenReducer::Stage::kBeforeBlock) {
      cost.macs += (*reducer)->ExtraMacs(step, length, config.embed_dim, head_dim);
      length = (*reducer)->TokensAfter(step, length);
      after = length;
    }
    const double l = static_cast<double>(length);
    if (reduces && (*reducer)->stage() == TokenReducer::Stage::kInsideAttention) {
      // qkv and QK^T over every token; AV and proj only for the sampled rows.
      after = (*reducer)->TokensAfter(step, length);
      const double rows = static_cast<double>(after);
      cost.macs += 3 * l * c * c + l * l * c + rows * l * c + rows * c * c;
      cost.macs += (*reducer)->ExtraMacs(step, length, config.embed_dim, head_dim);
    } else {
      cost.macs += 4 * l * c * c + 2 * l * l * c;  // qkv, QK^T, AV, proj
    }
    if (reduces && (*reducer)->stage() == TokenReducer::Stage::kAfterAttention) {
      cost.macs += (*reducer)->ExtraMacs(step, length, config.embed_dim, head_dim);
      after = (*reducer)->TokensAfter(step, length);
    }
    cost.macs += 2 * static_cast<double>(after) * c * hidden;  // MLP
    if (at_location) ++step_index;
    length = after;
    cost.tokens.push_back(length);
    if (config.clc && recovery_set.count(i)) {
      length += cached;
      cached = 0;
    }
    if (config.clc && i < recovery.back()) cached += carriers_per_block;
  }
  return cost;
}

}  // namespace clca
