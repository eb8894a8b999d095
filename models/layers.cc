#include "models/layers.h"

namespace clca {

void LinearWeights::Load(WeightStore& w, const std::string& prefix, int64_t in, int64_t out,
                         bool with_bias) {
  weight = w.Take(prefix + ".weight", {out, in});
  if (with_bias) bias = w.Take(prefix + ".bias", {out});
}

void LayerNormWeights::Load(WeightStore& w, const std::string& prefix, int64_t dim,
                            double epsilon) {
  weight = w.Take(prefix + ".weight", {dim});
  bias = w.Take(prefix + ".bias", {dim});
  eps = epsilon;
}

void BatchNormWeights::Load(WeightStore& w, const std::string& prefix, int64_t channels) {
  weight = w.Take(prefix + ".weight", {channels});
  bias = w.Take(prefix + ".bias", {channels});
  running_mean = w.Take(prefix + ".running_mean", {channels});
  running_var = w.Take(prefix + ".running_var", {channels});
}

}  // namespace clca
