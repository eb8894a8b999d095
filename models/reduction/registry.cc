#include "models/reduction/methods.h"

#include "absl/strings/str_cat.h"
#include "models/reduction/util.h"

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
    case Reduction::kAts:
      return MakeAtsReducer();
    case Reduction::kDynamicVit:
      return MakeDynamicVitReducer(config, weights);
    case Reduction::kPatchMerger:
      return MakePatchMergerReducer(config, weights);
    case Reduction::kSit:
      return MakeSitReducer(config, weights);
    case Reduction::kDpcKnn:
      return MakeDpcKnnReducer(config, weights);
    default:
      return absl::UnimplementedError(absl::StrCat("token reduction method '",
                                                   ReductionName(config.reduction),
                                                   "' is not available in this build"));
  }
}

std::vector<std::pair<std::string, std::vector<int64_t>>> ReducerParameterShapes(
    const ModelConfig& config) {
  switch (config.reduction) {
    case Reduction::kDynamicVit:
      return DynamicVitParameterShapes(config);
    case Reduction::kPatchMerger:
      return PatchMergerParameterShapes(config);
    case Reduction::kSit:
      return SitParameterShapes(config);
    case Reduction::kDpcKnn:
      return DpcKnnParameterShapes(config);
    default:
      return {};
  }
}

}  // namespace clca
