// What a forward pass costs, counted as the paper counts it (torchprofile
// multiply-accumulates), without running the model.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "models/core/config.h"

namespace clca {

struct Cost {
  // Multiply-accumulates per image.
  double macs = 0;
  // Sequence length coming out of each block, as ForwardResult::tokens
  // (for ATS the upper bound).
  std::vector<int64_t> tokens;
  double gmacs() const { return macs * 1e-9; }
};

absl::StatusOr<Cost> EstimateCost(const ModelConfig& config, double keep_rate);

}  // namespace clca
