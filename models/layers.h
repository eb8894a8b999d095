// Stateless transformer pieces over plain tensors. Weights are read-only
// after loading, so any number of threads may run them at once.
#pragma once

#include <string>

#include <torch/torch.h>

#include "models/weights.h"

namespace clca {

struct LinearWeights {
  torch::Tensor weight;  // [out, in]; after PrepareOneDnn, a view of a contiguous [in, out]
  torch::Tensor bias;    // [out] or undefined
  // Calls without gradients compute with oneDNN (set by PrepareOneDnn).
  bool onednn = false;
  torch::Tensor operator()(const torch::Tensor& x) const;
  void Load(WeightStore& w, const std::string& prefix, int64_t in, int64_t out, bool bias = true);
  // Float32 (or bfloat16) weights on the CPU in a process that has oneDNN's
  // sgemm (or its bf16 product): later calls without gradients compute with
  // it (models/onednn.h), which has AVX-512 kernels where Debian's OpenBLAS
  // may use AVX2 ones. Returns whether they will. Lays the weight out anew
  // for it.
  bool PrepareOneDnn();
};

struct LayerNormWeights {
  torch::Tensor weight, bias;
  double eps = 1e-6;
  torch::Tensor operator()(const torch::Tensor& x) const {
    return at::layer_norm(x, {weight.size(0)}, weight, bias, eps);
  }
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
