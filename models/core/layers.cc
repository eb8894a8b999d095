#include "models/core/layers.h"

#include <ATen/Parallel.h>

#include "models/cpu/cpu_kernels.h"
#include "models/cpu/onednn.h"

namespace clca {

bool LinearWeights::UsePacked(const torch::Tensor& x, onednn::Epilogue epilogue) const {
  return packed && packed->epilogue() == epilogue && !torch::GradMode::is_enabled() &&
         x.scalar_type() == packed->dtype() && x.device().is_cpu();
}

torch::Tensor LinearWeights::Gelu(const torch::Tensor& x) const {
  if (UsePacked(x, onednn::Epilogue::kGelu)) return (*packed)(x);
  return at::gelu((*this)(x));
}

torch::Tensor LinearWeights::AddTo(const torch::Tensor& residual, const torch::Tensor& x) const {
  if (UsePacked(x, onednn::Epilogue::kResidual)) return (*packed)(x, residual);
  return residual + (*this)(x);
}

torch::Tensor LinearWeights::operator()(const torch::Tensor& x) const {
  if (UsePacked(x, onednn::Epilogue::kNone)) return (*packed)(x);
  const torch::Tensor w = weight.defined() || !packed ? weight : packed->Weight();
  if (onednn && !torch::GradMode::is_enabled() && x.scalar_type() == w.scalar_type() &&
      x.device().is_cpu()) {
    return onednn::Linear(x, w, bias);
  }
  return at::linear(x, w, bias);
}

bool LinearWeights::PrepareOneDnn(onednn::Epilogue epilogue) {
  const bool float32 = weight.defined() && weight.scalar_type() == torch::kFloat32;
  const bool bfloat16 = weight.defined() && weight.scalar_type() == torch::kBFloat16;
  onednn = ((float32 && onednn::Available()) || (bfloat16 && onednn::AvailableBf16())) &&
           weight.device().is_cpu() && (!bias.defined() || bias.scalar_type() == weight.scalar_type());
  if (!onednn) return false;
  // oneDNN's matmul on its own packed layout, with bias and epilogue in the
  // same pass. Where this build lacks it, oneDNN's plain products, which
  // multiply by a row-major [in, out] faster than by the transpose of
  // [out, in] (docs/BENCHMARKS.md has both comparisons).
  packed = onednn::PackedLinear::Create(weight, bias, epilogue);
  if (!packed && weight.is_contiguous()) weight = weight.t().contiguous().t();
  return true;
}

void LinearWeights::Load(WeightStore& w, const std::string& prefix, int64_t in, int64_t out,
                         bool with_bias) {
  weight = w.Take(prefix + ".weight", {out, in});
  if (with_bias) bias = w.Take(prefix + ".bias", {out});
}

torch::Tensor LayerNormWeights::operator()(const torch::Tensor& x) const {
  const int64_t dim = weight.size(0);
  if (x.scalar_type() != torch::kBFloat16 || !x.device().is_cpu() ||
      torch::GradMode::is_enabled()) {
    return at::layer_norm(x, {dim}, weight, bias, eps);
  }
  // LibTorch 1.13's bfloat16 LayerNorm on the CPU is scalar code, 14x slower
  // than its float32 one.
  const torch::Tensor w = weight.to(torch::kFloat32), b = bias.to(torch::kFloat32);
  if (!kernels::HasAvx512Bf16() || x.size(-1) != dim) {
    return at::layer_norm(x.to(torch::kFloat32), {dim}, w, b, eps).to(torch::kBFloat16);
  }
  const torch::Tensor in = x.contiguous();
  torch::Tensor out = torch::empty_like(in);
  const int64_t rows = in.numel() / dim;
  const auto* src = static_cast<const uint16_t*>(in.data_ptr());
  auto* dst = static_cast<uint16_t*>(out.data_ptr());
  const float* wp = w.data_ptr<float>();
  const float* bp = b.data_ptr<float>();
  const auto epsilon = static_cast<float>(eps);
  at::parallel_for(0, rows, 64, [&](int64_t first, int64_t last) {
    kernels::LayerNormBf16(src + first * dim, last - first, dim, wp, bp, epsilon, dst + first * dim);
  });
  return out;
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
