#include "models/layers.h"

#include "models/onednn.h"

namespace clca {

torch::Tensor LinearWeights::operator()(const torch::Tensor& x) const {
  if (onednn && !torch::GradMode::is_enabled() && x.scalar_type() == weight.scalar_type() &&
      x.device().is_cpu()) {
    return onednn::Linear(x, weight, bias);
  }
  return at::linear(x, weight, bias);
}

bool LinearWeights::PrepareOneDnn() {
  const bool float32 = weight.defined() && weight.scalar_type() == torch::kFloat32;
  const bool bfloat16 = weight.defined() && weight.scalar_type() == torch::kBFloat16;
  onednn = ((float32 && onednn::Available()) || (bfloat16 && onednn::AvailableBf16())) &&
           weight.device().is_cpu() && (!bias.defined() || bias.scalar_type() == weight.scalar_type());
  // oneDNN multiplies by a row-major [in, out] faster than by the transpose
  // of [out, in] (1.9x for ViT-B's fc2 at 197 rows): keep the weight as the
  // transposed view of such a matrix.
  if (onednn && weight.is_contiguous()) weight = weight.t().contiguous().t();
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
