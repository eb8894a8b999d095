// The seven token-reduction methods, built by name from the configuration.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "models/core/config.h"
#include "models/core/token_reducer.h"
#include "models/core/weights.h"

namespace clca {

// Builds the reducer of `config.reduction` (null for kNone), taking its learned
// parameters from `weights`.
absl::StatusOr<std::unique_ptr<TokenReducer>> MakeReducer(const ModelConfig& config,
                                                          WeightStore& weights);

// Tensor shapes of the method's learned parameters, for random initialisation.
std::vector<std::pair<std::string, std::vector<int64_t>>> ReducerParameterShapes(
    const ModelConfig& config);

// Built-in methods.
std::unique_ptr<TokenReducer> MakeClsAttentionReducer(bool fuse_dropped);  // EViT / Top-K
std::unique_ptr<TokenReducer> MakeTomeReducer();
std::unique_ptr<TokenReducer> MakeAtsReducer();

}  // namespace clca
