#include "models/cpu/onednn.h"

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/Parallel.h>

#include "models/cpu/cpu_kernels.h"

namespace clca::onednn {
namespace {

// dnnl_sgemm's signature (oneDNN 1.x to 3.x): the status is 0 on success.
using SgemmFn = int (*)(char, char, int64_t, int64_t, int64_t, float, const float*, int64_t,
                        const float*, int64_t, float, float*, int64_t);

SgemmFn Find() {
  static const SgemmFn fn = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "dnnl_sgemm"));
  return fn;
}

// dnnl_gemm_bf16bf16f32's: A and B bfloat16, C float32.
using GemmBf16Fn = int (*)(char, char, int64_t, int64_t, int64_t, float, const void*, int64_t,
                           const void*, int64_t, float, float*, int64_t);

GemmBf16Fn FindBf16() {
  static const GemmBf16Fn fn =
      reinterpret_cast<GemmBf16Fn>(dlsym(RTLD_DEFAULT, "dnnl_gemm_bf16bf16f32"));
  return fn;
}

void Check(int status, const char* what) {
  if (status != 0) {
    throw std::runtime_error(std::string(what) + " failed with status " + std::to_string(status));
  }
}

}  // namespace

bool Available() { return Find() != nullptr; }
bool AvailableBf16() { return FindBf16() != nullptr; }
bool AttentionBf16Available() { return AvailableBf16() && kernels::HasAvx512Bf16(); }

void Sgemm(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const SgemmFn fn = Find();
  if (fn == nullptr) throw std::runtime_error("oneDNN's dnnl_sgemm is not in this process");
  Check(fn(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), "dnnl_sgemm");
}

torch::Tensor Linear(const torch::Tensor& x, const torch::Tensor& weight,
                     const torch::Tensor& bias) {
  const int64_t in = weight.size(1), out = weight.size(0);
  TORCH_CHECK(x.size(-1) == in, "linear: input has ", x.size(-1), " features, weight ", in);
  const torch::Tensor rows = x.reshape({-1, in}).contiguous();
  const int64_t m = rows.size(0);
  // A fresh float32 output: with one row, bias.expand(...).contiguous()
  // would be the bias itself.
  torch::Tensor y = torch::empty({m, out}, x.options().dtype(torch::kFloat32));
  if (bias.defined()) y.copy_(bias.expand({m, out}));
  const float beta = bias.defined() ? 1.0f : 0.0f;
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = out;
  // The transpose of a contiguous [in, out] needs no transposed operand.
  const bool laid_out = weight.stride(0) == 1 && weight.stride(1) == out;
  const torch::Tensor w = laid_out ? weight : weight.contiguous();
  const char transb = laid_out ? 'N' : 'T';
  const int64_t ldb = laid_out ? out : in;
  if (x.scalar_type() == torch::kBFloat16) {
    const GemmBf16Fn fn = FindBf16();
    if (fn == nullptr) throw std::runtime_error("oneDNN's dnnl_gemm_bf16bf16f32 is not in this process");
    Check(fn('N', transb, m, out, in, 1.0f, rows.data_ptr(), in, w.data_ptr(), ldb, beta,
             y.data_ptr<float>(), out),
          "dnnl_gemm_bf16bf16f32");
    return y.to(torch::kBFloat16).view(shape);
  }
  Sgemm('N', transb, m, out, in, 1.0f, rows.data_ptr<float>(), in, w.data_ptr<float>(), ldb, beta,
        y.data_ptr<float>(), out);
  return y.view(shape);
}

torch::Tensor Attention(const torch::Tensor& qkv_in, int64_t heads, const torch::Tensor& bias_in,
                        torch::Tensor* cls_rows) {
  const torch::Tensor qkv = qkv_in.contiguous();
  const bool bfloat16 = qkv.scalar_type() == torch::kBFloat16;
  TORCH_CHECK(qkv.scalar_type() == torch::kFloat32 || (bfloat16 && AttentionBf16Available()),
              "attention: unsupported dtype ", qkv.scalar_type());
  const int64_t batch = qkv.size(0), length = qkv.size(1), dim = qkv.size(2) / 3;
  const int64_t head_dim = dim / heads, pairs = batch * heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const torch::Tensor bias =
      bias_in.defined() ? bias_in.to(torch::kFloat32).contiguous() : bias_in;
  torch::Tensor out = torch::empty({batch, length, dim}, qkv.options());
  // The CLS query's probabilities stay float32 in either precision.
  if (cls_rows) *cls_rows = torch::empty({batch, heads, length}, qkv.options().dtype(torch::kFloat32));
  float* cls_base = cls_rows ? cls_rows->data_ptr<float>() : nullptr;
  const float* bias_base = bias.defined() ? bias.data_ptr<float>() : nullptr;
  // LibTorch's worker threads do not inherit the caller's modes.
  const bool inference = c10::InferenceMode::is_enabled();
  if (bfloat16) {
    // bfloat16 products with float32 sums; the softmax in float32, rounded
    // once to bfloat16 for the second product.
    const GemmBf16Fn gemm = FindBf16();
    const auto* base = static_cast<const uint16_t*>(qkv.data_ptr());
    auto* out_base = static_cast<uint16_t*>(out.data_ptr());
    at::parallel_for(0, pairs, 1, [&](int64_t first, int64_t last) {
      c10::InferenceMode mode(inference);
      torch::NoGradGuard no_grad;
      torch::Tensor scores = torch::empty({length, length}, qkv.options().dtype(torch::kFloat32));
      torch::Tensor probs = torch::empty({length, length}, qkv.options());
      torch::Tensor sums = torch::empty({length, head_dim}, qkv.options().dtype(torch::kFloat32));
      auto* p_base = static_cast<uint16_t*>(probs.data_ptr());
      for (int64_t p = first; p < last; ++p) {
        const int64_t image = p / heads, head = p % heads;
        const uint16_t* q = base + image * length * 3 * dim + head * head_dim;
        const uint16_t* k = q + dim;
        const uint16_t* v = q + 2 * dim;
        Check(gemm('N', 'T', length, length, head_dim, scale, q, 3 * dim, k, 3 * dim, 0.0f,
                   scores.data_ptr<float>(), length),
              "dnnl_gemm_bf16bf16f32");
        kernels::SoftmaxToBf16(scores.data_ptr<float>(), length, length,
                               bias_base ? bias_base + image * length : nullptr, p_base, length,
                               cls_base ? cls_base + p * length : nullptr);
        Check(gemm('N', 'N', length, head_dim, length, 1.0f, p_base, length, v, 3 * dim, 0.0f,
                   sums.data_ptr<float>(), head_dim),
              "dnnl_gemm_bf16bf16f32");
        kernels::FloatToBf16(sums.data_ptr<float>(), length, head_dim, head_dim,
                             out_base + image * length * dim + head * head_dim, dim);
      }
    });
    return out;
  }
  const float* base = qkv.data_ptr<float>();
  float* out_base = out.data_ptr<float>();
  const bool own_softmax = kernels::HasAvx512Bf16();
  at::parallel_for(0, pairs, 1, [&](int64_t first, int64_t last) {
    c10::InferenceMode mode(inference);
    torch::NoGradGuard no_grad;
    torch::Tensor scores = torch::empty({length, length}, qkv.options());
    // The AVX-512 softmax works in place; LibTorch's writes apart.
    torch::Tensor probs = own_softmax ? scores : torch::empty({length, length}, qkv.options());
    for (int64_t p = first; p < last; ++p) {
      const int64_t image = p / heads, head = p % heads;
      // Rows of one head's q, k and v are 3 * dim apart.
      const float* q = base + image * length * 3 * dim + head * head_dim;
      const float* k = q + dim;
      const float* v = q + 2 * dim;
      Sgemm('N', 'T', length, length, head_dim, scale, q, 3 * dim, k, 3 * dim, 0.0f,
            scores.data_ptr<float>(), length);
      if (own_softmax) {
        kernels::Softmax(scores.data_ptr<float>(), length, length,
                         bias_base ? bias_base + image * length : nullptr, scores.data_ptr<float>(),
                         length, cls_base ? cls_base + p * length : nullptr);
      } else {
        if (bias.defined()) scores.add_(bias[image]);
        at::softmax_out(probs, scores, -1);
        if (cls_base) {
          const float* row = probs.data_ptr<float>();
          std::copy(row, row + length, cls_base + p * length);
        }
      }
      Sgemm('N', 'N', length, head_dim, length, 1.0f, probs.data_ptr<float>(), length, v,
            3 * dim, 0.0f, out_base + image * length * dim + head * head_dim, dim);
    }
  });
  return out;
}

}  // namespace clca::onednn
