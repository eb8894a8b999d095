// Stateless transformer pieces over plain tensors. Weights are read-only
// after loading, so any number of threads may run them at once.
#pragma once

#include <memory>
#include <string>

#include <torch/torch.h>

#include "models/core/weights.h"
#include "models/cpu/onednn.h"

namespace clca {

struct LinearWeights {
  // [out, in]. Undefined once `packed` holds it (the model drops it there);
  // after PrepareOneDnn without oneDNN's primitives, the transposed view of a
  // contiguous [in, out].
  torch::Tensor weight;
  torch::Tensor bias;  // [out] or undefined
  // Calls without gradients compute with oneDNN (set by PrepareOneDnn).
  bool onednn = false;
  // The weight packed for oneDNN's matmul, with one epilogue fused (set by
  // PrepareOneDnn where the build has oneDNN's primitives).
  std::shared_ptr<const onednn::PackedLinear> packed;
  // x W^T + b.
  torch::Tensor operator()(const torch::Tensor& x) const;
  // GELU(x W^T + b), erf form.
  torch::Tensor Gelu(const torch::Tensor& x) const;
  // residual + x W^T + b.
  torch::Tensor AddTo(const torch::Tensor& residual, const torch::Tensor& x) const;
  void Load(WeightStore& w, const std::string& prefix, int64_t in, int64_t out, bool bias = true);
  // Float32 or bfloat16 weights on the CPU in a process that has oneDNN's
  // products (models/onednn.h): later calls without gradients compute with
  // them, which have AVX-512 kernels where Debian's OpenBLAS may use AVX2
  // ones. Returns whether they will. Packs the weight for oneDNN's matmul
  // with `epilogue` fused, which the call that names it (Gelu, AddTo or the
  // plain product) then uses; the others unpack a copy each time.
  bool PrepareOneDnn(onednn::Epilogue epilogue = onednn::Epilogue::kNone);

 private:
  bool UsePacked(const torch::Tensor& x, onednn::Epilogue epilogue) const;
};

struct LayerNormWeights {
  torch::Tensor weight, bias;
  double eps = 1e-6;
  // bfloat16 on the CPU without gradients: statistics in float32, with the
  // AVX512-BF16 kernel where the CPU has it.
  torch::Tensor operator()(const torch::Tensor& x) const;
  void Load(WeightStore& w, const std::string& prefix, int64_t dim, double eps);
};

// BatchNorm1d over [B, C, L]. In training mode it normalises with the batch
// statistics and updates the running ones in place (momentum 0.1, as torch).
struct BatchNormWeights {
  torch::Tensor weight, bias, running_mean, running_var;
  double eps = 1e-5;
  torch::Tensor operator()(const torch::Tensor& x, bool training = false) const {
    return at::batch_norm(x, weight, bias, running_mean, running_var, training,
                          training ? 0.1 : 0.0, eps, /*cudnn_enabled=*/true);
  }
  void Load(WeightStore& w, const std::string& prefix, int64_t channels);
};

struct BlockWeights {
  LayerNormWeights norm1, norm2;
  LinearWeights qkv, proj, fc1, fc2;
  torch::Tensor ls1, ls2;  // layer scale (DeiT-3), or undefined
};

}  // namespace clca
