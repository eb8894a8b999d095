#include "models/reduction.h"

#include "absl/strings/str_cat.h"

namespace clca {

absl::StatusOr<std::unique_ptr<TokenReducer>> MakeReducer(const ModelConfig& config,
                                                          WeightStore& weights) {
  switch (config.reduction) {
    case Reduction::kNone:
      return std::unique_ptr<TokenReducer>();
    case Reduction::kEvit:
      return MakeClsAttentionReducer(/*fuse_dropped=*/true);
    case Reduction::kTopK:
      return MakeClsAttentionReducer(/*fuse_dropped=*/false);
    case Reduction::kTome:
      return MakeTomeReducer();
    default:
      return absl::UnimplementedError(absl::StrCat("token reduction method '",
                                                   ReductionName(config.reduction),
                                                   "' is not available in this build"));
  }
}

std::vector<std::pair<std::string, std::vector<int64_t>>> ReducerParameterShapes(
    const ModelConfig& config) {
  return {};
}

}  // namespace clca
