#include "models/cpu/cpu_kernels.h"

#include <cmath>
#include <stdexcept>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CLCA_X86_KERNELS 1
// GCC 12 takes the intrinsics' _mm512_undefined_* for uninitialised reads.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace clca::kernels {

#ifdef CLCA_X86_KERNELS
namespace {

#define CLCA_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

// exp(x) for x <= 0 as 2^n * p(f), f in [-1/2, 1/2]: p is the degree-6
// Taylor polynomial of 2^f (relative error below 2e-7); underflows to 0.
CLCA_TARGET inline __m512 ExpNonPositive(__m512 x) {
  const __m512 t =
      _mm512_max_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _mm512_set1_ps(-150.0f));
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(1.5403530e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504109e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022651e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

CLCA_TARGET inline __m256i ToBf16(__m512 v) { return (__m256i)_mm512_cvtneps_pbh(v); }

CLCA_TARGET inline __m512 FromBf16(__m256i v) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}

inline __mmask16 TailMask(int64_t count) {
  return static_cast<__mmask16>((1u << count) - 1u);
}

// Out: uint16_t (bfloat16) or float.
template <typename Out>
CLCA_TARGET void SoftmaxImpl(float* scores, int64_t rows, int64_t n, const float* bias, Out* probs,
                             int64_t ld_probs, float* first_row) {
  const int64_t full = n / 16 * 16;
  const __mmask16 tail = TailMask(n - full);
  const __m512 minus_inf = _mm512_set1_ps(-INFINITY);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = scores + r * n;
    __m512 max = minus_inf;
    int64_t j = 0;
    if (bias) {
      for (; j < full; j += 16) {
        const __m512 v = _mm512_add_ps(_mm512_loadu_ps(row + j), _mm512_loadu_ps(bias + j));
        _mm512_storeu_ps(row + j, v);
        max = _mm512_max_ps(max, v);
      }
      if (tail) {
        const __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(tail, row + j),
                                       _mm512_maskz_loadu_ps(tail, bias + j));
        _mm512_mask_storeu_ps(row + j, tail, v);
        max = _mm512_mask_max_ps(max, tail, max, v);
      }
    } else {
      for (; j < full; j += 16) max = _mm512_max_ps(max, _mm512_loadu_ps(row + j));
      if (tail) max = _mm512_mask_max_ps(max, tail, max, _mm512_maskz_loadu_ps(tail, row + j));
    }
    float top = _mm512_reduce_max_ps(max);
    // A row that sees no key (all -inf) gives zeros instead of NaN.
    if (top == -INFINITY) top = 0.0f;
    const __m512 m = _mm512_set1_ps(top);
    __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
    for (j = 0; j + 32 <= full; j += 32) {
      const __m512 e0 = ExpNonPositive(_mm512_sub_ps(_mm512_loadu_ps(row + j), m));
      const __m512 e1 = ExpNonPositive(_mm512_sub_ps(_mm512_loadu_ps(row + j + 16), m));
      _mm512_storeu_ps(row + j, e0);
      _mm512_storeu_ps(row + j + 16, e1);
      sum0 = _mm512_add_ps(sum0, e0);
      sum1 = _mm512_add_ps(sum1, e1);
    }
    for (; j < full; j += 16) {
      const __m512 e = ExpNonPositive(_mm512_sub_ps(_mm512_loadu_ps(row + j), m));
      _mm512_storeu_ps(row + j, e);
      sum0 = _mm512_add_ps(sum0, e);
    }
    if (tail) {
      const __m512 e = _mm512_maskz_mov_ps(
          tail, ExpNonPositive(_mm512_sub_ps(_mm512_mask_loadu_ps(m, tail, row + j), m)));
      _mm512_mask_storeu_ps(row + j, tail, e);
      sum0 = _mm512_add_ps(sum0, e);
    }
    const float total = _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1));
    const __m512 inv = _mm512_set1_ps(total > 0.0f ? 1.0f / total : 0.0f);
    Out* out = probs + r * ld_probs;
    float* keep = r == 0 ? first_row : nullptr;
    for (j = 0; j < full; j += 16) {
      const __m512 p = _mm512_mul_ps(_mm512_loadu_ps(row + j), inv);
      if (keep) _mm512_storeu_ps(keep + j, p);
      if constexpr (std::is_same_v<Out, float>) {
        _mm512_storeu_ps(out + j, p);
      } else {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), ToBf16(p));
      }
    }
    if (tail) {
      const __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, row + j), inv);
      if (keep) _mm512_mask_storeu_ps(keep + j, tail, p);
      if constexpr (std::is_same_v<Out, float>) {
        _mm512_mask_storeu_ps(out + j, tail, p);
      } else {
        _mm256_mask_storeu_epi16(out + j, tail, ToBf16(p));
      }
    }
  }
}

CLCA_TARGET void FloatToBf16Impl(const float* src, int64_t rows, int64_t cols, int64_t ld_src,
                                 uint16_t* dst, int64_t ld_dst) {
  const int64_t full = cols / 16 * 16;
  const __mmask16 tail = TailMask(cols - full);
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = src + r * ld_src;
    uint16_t* d = dst + r * ld_dst;
    int64_t j = 0;
    for (; j < full; j += 16) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + j), ToBf16(_mm512_loadu_ps(s + j)));
    }
    if (tail) _mm256_mask_storeu_epi16(d + j, tail, ToBf16(_mm512_maskz_loadu_ps(tail, s + j)));
  }
}

CLCA_TARGET void LayerNormImpl(const uint16_t* x, int64_t rows, int64_t dim, const float* weight,
                               const float* bias, float eps, uint16_t* y) {
  const int64_t full = dim / 16 * 16;
  const __mmask16 tail = TailMask(dim - full);
  thread_local std::vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < dim + 16) buffer.resize(dim + 16);
  float* row = buffer.data();
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* in = x + r * dim;
    __m512 sum = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j < full; j += 16) {
      const __m512 v =
          FromBf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + j)));
      _mm512_storeu_ps(row + j, v);
      sum = _mm512_add_ps(sum, v);
    }
    if (tail) {
      const __m512 v = FromBf16(_mm256_maskz_loadu_epi16(tail, in + j));
      _mm512_mask_storeu_ps(row + j, tail, v);
      sum = _mm512_add_ps(sum, v);
    }
    const float mean = _mm512_reduce_add_ps(sum) / static_cast<float>(dim);
    const __m512 m = _mm512_set1_ps(mean);
    __m512 squares = _mm512_setzero_ps();
    for (j = 0; j < full; j += 16) {
      const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(row + j), m);
      squares = _mm512_fmadd_ps(d, d, squares);
    }
    if (tail) {
      const __m512 d = _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, row + j), m);
      squares = _mm512_fmadd_ps(d, d, squares);
    }
    const float variance = _mm512_reduce_add_ps(squares) / static_cast<float>(dim);
    const __m512 scale = _mm512_set1_ps(1.0f / std::sqrt(variance + eps));
    uint16_t* out = y + r * dim;
    for (j = 0; j < full; j += 16) {
      const __m512 n = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(row + j), m), scale);
      const __m512 v = _mm512_fmadd_ps(n, _mm512_loadu_ps(weight + j), _mm512_loadu_ps(bias + j));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), ToBf16(v));
    }
    if (tail) {
      const __m512 n = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, row + j), m), scale);
      const __m512 v = _mm512_fmadd_ps(n, _mm512_maskz_loadu_ps(tail, weight + j),
                                       _mm512_maskz_loadu_ps(tail, bias + j));
      _mm256_mask_storeu_epi16(out + j, tail, ToBf16(v));
    }
  }
}

}  // namespace

bool HasAvx512Bf16() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bf16");
  return has;
}

void SoftmaxToBf16(float* scores, int64_t rows, int64_t n, const float* bias, uint16_t* probs,
                   int64_t ld_probs, float* first_row) {
  SoftmaxImpl(scores, rows, n, bias, probs, ld_probs, first_row);
}

void Softmax(float* scores, int64_t rows, int64_t n, const float* bias, float* probs,
             int64_t ld_probs, float* first_row) {
  SoftmaxImpl(scores, rows, n, bias, probs, ld_probs, first_row);
}

void FloatToBf16(const float* src, int64_t rows, int64_t cols, int64_t ld_src, uint16_t* dst,
                 int64_t ld_dst) {
  FloatToBf16Impl(src, rows, cols, ld_src, dst, ld_dst);
}

void LayerNormBf16(const uint16_t* x, int64_t rows, int64_t dim, const float* weight,
                   const float* bias, float eps, uint16_t* y) {
  LayerNormImpl(x, rows, dim, weight, bias, eps, y);
}

#else  // not x86-64

bool HasAvx512Bf16() { return false; }

void SoftmaxToBf16(float*, int64_t, int64_t, const float*, uint16_t*, int64_t, float*) {
  throw std::logic_error("SoftmaxToBf16 needs AVX512-BF16");
}
void Softmax(float*, int64_t, int64_t, const float*, float*, int64_t, float*) {
  throw std::logic_error("Softmax needs AVX512-BF16");
}
void FloatToBf16(const float*, int64_t, int64_t, int64_t, uint16_t*, int64_t) {
  throw std::logic_error("FloatToBf16 needs AVX512-BF16");
}
void LayerNormBf16(const uint16_t*, int64_t, int64_t, const float*, const float*, float,
                   uint16_t*) {
  throw std::logic_error("LayerNormBf16 needs AVX512-BF16");
}

#endif

}  // namespace clca::kernels
