#include "models/cpu/onednn.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
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

void Attention(std::vector<AttentionBatch>& batches, int64_t heads) {
  if (batches.empty()) return;
  const torch::ScalarType type = batches.front().qkv.scalar_type();
  const bool bfloat16 = type == torch::kBFloat16;
  TORCH_CHECK(type == torch::kFloat32 || (bfloat16 && AttentionBf16Available()),
              "attention: unsupported dtype ", type);
  const int64_t dim = batches.front().qkv.size(2) / 3;
  const int64_t head_dim = dim / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  // What each pair reads and writes, batch by batch.
  struct Batch {
    torch::Tensor qkv, bias;  // contiguous; bias float32 [B, N] or undefined
    int64_t length = 0;
    float* cls = nullptr;
    void* out = nullptr;
  };
  std::vector<Batch> prepared(batches.size());
  // (batch, image, head) of every pair, and its cost.
  struct Pair {
    int64_t batch, image, head;
    double cost;
  };
  std::vector<Pair> pairs;
  for (size_t i = 0; i < batches.size(); ++i) {
    AttentionBatch& in = batches[i];
    Batch& b = prepared[i];
    TORCH_CHECK(in.qkv.dim() == 3 && in.qkv.scalar_type() == type && in.qkv.size(2) == 3 * dim,
                "attention: every batch's qkv must be [B, N, ", 3 * dim, "] of one type");
    b.qkv = in.qkv.contiguous();
    const int64_t batch = b.qkv.size(0);
    b.length = b.qkv.size(1);
    TORCH_CHECK(in.out.defined() && in.out.is_contiguous() && in.out.scalar_type() == type &&
                    in.out.sizes() == torch::IntArrayRef({batch, b.length, dim}),
                "attention: the output must be a contiguous [B, N, C] of the input's type");
    b.out = in.out.data_ptr();
    if (in.bias.defined()) b.bias = in.bias.to(torch::kFloat32).contiguous();
    if (in.cls_rows) {
      *in.cls_rows =
          torch::empty({batch, heads, b.length}, b.qkv.options().dtype(torch::kFloat32));
      b.cls = in.cls_rows->data_ptr<float>();
    }
    // Two products of length² · head_dim, and a fixed cost per pair.
    const double cost = static_cast<double>(b.length) * (b.length + 8) * head_dim + 32768;
    for (int64_t image = 0; image < batch; ++image) {
      for (int64_t head = 0; head < heads; ++head) {
        pairs.push_back({static_cast<int64_t>(i), image, head, cost});
      }
    }
  }
  if (pairs.empty()) return;
  // The threads take the pairs one at a time, costliest first, so that they
  // finish together however the lengths mix.
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const Pair& a, const Pair& b) { return a.cost > b.cost; });
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), pairs.size());
  std::atomic<size_t> next{0};
  const int64_t longest = prepared[pairs.front().batch].length;
  const bool own_softmax = kernels::HasAvx512Bf16();
  const GemmBf16Fn gemm = bfloat16 ? FindBf16() : nullptr;
  // LibTorch's worker threads do not inherit the caller's modes.
  const bool inference = c10::InferenceMode::is_enabled();
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) {
    c10::InferenceMode mode(inference);
    torch::NoGradGuard no_grad;
    const torch::TensorOptions f32 = torch::TensorOptions().dtype(torch::kFloat32);
    torch::Tensor scores_buffer = torch::empty({longest * longest}, f32);
    // The AVX-512 softmax works in place; LibTorch's writes apart. bfloat16
    // rounds the probabilities into their own buffer and sums in float32.
    torch::Tensor probs_buffer = bfloat16 || !own_softmax
                                     ? torch::empty({longest * longest}, f32.dtype(type))
                                     : scores_buffer;
    torch::Tensor sums = bfloat16 ? torch::empty({longest * head_dim}, f32) : torch::Tensor();
    float* scores = scores_buffer.data_ptr<float>();
    for (size_t p = next++; p < pairs.size(); p = next++) {
      const Batch& b = prepared[pairs[p].batch];
      const int64_t image = pairs[p].image, head = pairs[p].head, length = b.length;
      const int64_t pair = image * heads + head;  // within its batch
      const float* bias = b.bias.defined() ? b.bias.data_ptr<float>() + image * length : nullptr;
      float* cls = b.cls ? b.cls + pair * length : nullptr;
      // Rows of one head's q, k and v are 3 * dim apart.
      const int64_t offset = image * length * 3 * dim + head * head_dim;
      const int64_t out_offset = image * length * dim + head * head_dim;
      if (bfloat16) {
        const auto* q = static_cast<const uint16_t*>(b.qkv.data_ptr()) + offset;
        auto* probs = static_cast<uint16_t*>(probs_buffer.data_ptr());
        Check(gemm('N', 'T', length, length, head_dim, scale, q, 3 * dim, q + dim, 3 * dim, 0.0f,
                   scores, length),
              "dnnl_gemm_bf16bf16f32");
        kernels::SoftmaxToBf16(scores, length, length, bias, probs, length, cls);
        Check(gemm('N', 'N', length, head_dim, length, 1.0f, probs, length, q + 2 * dim, 3 * dim,
                   0.0f, sums.data_ptr<float>(), head_dim),
              "dnnl_gemm_bf16bf16f32");
        kernels::FloatToBf16(sums.data_ptr<float>(), length, head_dim, head_dim,
                             static_cast<uint16_t*>(b.out) + out_offset, dim);
        continue;
      }
      const float* q = b.qkv.data_ptr<float>() + offset;
      float* probs = probs_buffer.data_ptr<float>();
      Sgemm('N', 'T', length, length, head_dim, scale, q, 3 * dim, q + dim, 3 * dim, 0.0f, scores,
            length);
      if (own_softmax) {
        kernels::Softmax(scores, length, length, bias, probs, length, cls);
      } else {
        torch::Tensor s = scores_buffer.narrow(0, 0, length * length).view({length, length});
        if (bias) s.add_(b.bias[image]);
        torch::Tensor out = probs_buffer.narrow(0, 0, length * length).view({length, length});
        at::softmax_out(out, s, -1);
        if (cls) std::copy(probs, probs + length, cls);
      }
      Sgemm('N', 'N', length, head_dim, length, 1.0f, probs, length, q + 2 * dim, 3 * dim, 0.0f,
            static_cast<float*>(b.out) + out_offset, dim);
    }
  });
}

torch::Tensor Attention(const torch::Tensor& qkv, int64_t heads, const torch::Tensor& bias,
                        torch::Tensor* cls_rows) {
  std::vector<AttentionBatch> batches(1);
  batches[0].qkv = qkv;
  batches[0].bias = bias;
  batches[0].out = torch::empty({qkv.size(0), qkv.size(1), qkv.size(2) / 3}, qkv.options());
  batches[0].cls_rows = cls_rows;
  Attention(batches, heads);
  return batches[0].out;
}

}  // namespace clca::onednn
