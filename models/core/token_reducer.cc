#include "models/core/token_reducer.h"

#include <algorithm>
#include <cmath>

namespace clca {

int64_t TargetTokens(int64_t num_patches, double keep_rate, int location_index) {
  auto target = static_cast<int64_t>(static_cast<double>(num_patches) *
                                     std::pow(keep_rate, location_index + 1));
  return std::max<int64_t>(target, 1);
}

}  // namespace clca
