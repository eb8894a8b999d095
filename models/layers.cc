#include "models/layers.h"

#include "models/onednn.h"

namespace clca {

torch::Tensor LinearWeights::operator()(const torch::Tensor& x) const {
  // Below about 128 rows oneDNN's call costs more than its kernels save
  // (measured on ViT-Tiny to ViT-Base widths).
  constexpr int64_t kMinRows = 128;
  if (onednn && !torch::GradMode::is_enabled() && x.scalar_type() == torch::kFloat32 &&
      x.device().is_cpu() && x.numel() >= kMinRows * x.size(-1)) {
    return onednn::Linear(x, weight, bias);
  }
  return at::linear(x, weight, bias);
}

bool LinearWeights::PrepareOneDnn() {
  onednn = onednn::Available() && weight.defined() && weight.scalar_type() == torch::kFloat32 &&
           weight.device().is_cpu() && weight.is_contiguous() &&
           (!bias.defined() || bias.scalar_type() == torch::kFloat32);
  return onednn;
}

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
