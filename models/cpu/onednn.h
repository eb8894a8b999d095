// oneDNN's single-precision matrix product, found at run time. LibTorch
// computes with oneDNN, and a LibTorch linked to it dynamically (Debian's)
// exports its C API; oneDNN picks its kernels from the instructions the CPU
// has (AVX-512 where there is), whatever BLAS LibTorch otherwise uses.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

namespace clca::onednn {

// Whether this process has dnnl_sgemm.
bool Available();
// Whether it also has dnnl_gemm_bf16bf16f32 (bfloat16 products, float32 sums).
bool AvailableBf16();
// Whether Attention takes bfloat16: AvailableBf16() on a CPU with AVX512-BF16.
bool AttentionBf16Available();

// C = alpha * op(A) * op(B) + beta * C on row-major float32 matrices, op
// being 'N' (as is) or 'T' (transposed), as dnnl_sgemm; it runs on the calling
// thread's OpenMP threads. Throws std::runtime_error if oneDNN refuses.
void Sgemm(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// x [..., in] times weight [out, in] transposed, plus bias [out] if defined:
// at::linear for float32 or bfloat16 CPU tensors (bfloat16: summed and biased
// in float32, then rounded). A weight that is the transposed view of a
// contiguous [in, out] is multiplied fastest (LinearWeights::PrepareOneDnn).
torch::Tensor Linear(const torch::Tensor& x, const torch::Tensor& weight,
                     const torch::Tensor& bias);

// What a PackedLinear does to x W^T + b before it writes it out.
enum class Epilogue {
  kNone,
  kGelu,      // GELU, erf form (at::gelu's default)
  kResidual,  // + a residual of the output's shape
};

// A linear layer as one oneDNN matmul primitive (the library linked against
// oneDNN's headers, CLCA_HAVE_DNNL): the weight is packed once in the layout
// oneDNN's kernels read fastest, and bias and epilogue are applied to the
// float32 sums before the one rounding to the output type. Float32 or
// bfloat16 on the CPU. Only the packed copy is kept. Primitives are made per
// row count and kept; calls from several threads at once are safe.
class PackedLinear {
 public:
  // Packs `weight` [out, in] (bias [out] or undefined, same dtype, CPU).
  // Null when this build has no oneDNN primitives or oneDNN refuses the shape.
  static std::unique_ptr<PackedLinear> Create(const torch::Tensor& weight,
                                              const torch::Tensor& bias, Epilogue epilogue);
  ~PackedLinear();
  Epilogue epilogue() const;
  torch::ScalarType dtype() const;
  int64_t in_features() const;
  int64_t out_features() const;
  // The weight [out, in] unpacked into a new tensor (the transposed view of
  // a contiguous [in, out]).
  torch::Tensor Weight() const;
  // x [..., in] of the weight's dtype; `residual` [..., out] for kResidual.
  // Throws on failure (oneDNN's or a shape mismatch).
  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& residual = {}) const;

 private:
  struct Impl;
  explicit PackedLinear(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One batch of a ragged attention call: `qkv` [B, N, 3 * C] (q, k, v, each
// of H heads of C / H, contiguous), `bias` [B, N] (or undefined) added to
// every query's scores, `out` [B, N, C] of qkv's type and contiguous, which
// receives the heads side by side. If `cls_rows` is not null, it receives
// each head's probabilities of the first query, [B, H, N], float32.
struct AttentionBatch {
  torch::Tensor qkv;
  torch::Tensor bias;
  torch::Tensor out;
  torch::Tensor* cls_rows = nullptr;
};

// Softmax attention of every batch in one parallel loop: the threads take
// the (image, head) pairs of all batches one at a time, longest first, each
// pair with its scores [N, N] in one buffer per thread. Float32, or bfloat16 where AttentionBf16Available() (float32
// scores and softmax, bfloat16 products).
void Attention(std::vector<AttentionBatch>& batches, int64_t heads);

// One batch; returns its `out`, newly allocated.
torch::Tensor Attention(const torch::Tensor& qkv, int64_t heads, const torch::Tensor& bias,
                        torch::Tensor* cls_rows);

}  // namespace clca::onednn
