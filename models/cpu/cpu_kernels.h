// Hand-written AVX-512 loops for the forward pass on the CPU: attention's
// softmax, and the bfloat16 operations where LibTorch 1.13's own are scalar
// (its bfloat16 LayerNorm takes 14x as long as its float32 one). Compiled for
// AVX512-BF16 and chosen at run time: call them only where HasAvx512Bf16() is
// true. Each runs on the calling thread.
#pragma once

#include <cstdint>

namespace clca::kernels {

// Whether this CPU has AVX512 F, BW, VL, DQ and BF16 (and the build is for
// x86-64).
bool HasAvx512Bf16();

// Softmax of each of `rows` rows of `scores` (float32, `n` per row, rows `n`
// apart), with `bias` [n] (or null) added to every row first. The
// probabilities are rounded to bfloat16 into `probs` (rows `ld_probs`
// apart); if `first_row` is not null it receives row 0's in float32.
// `scores` is overwritten.
void SoftmaxToBf16(float* scores, int64_t rows, int64_t n, const float* bias, uint16_t* probs,
                   int64_t ld_probs, float* first_row);

// As SoftmaxToBf16, with float32 probabilities; `probs` may be `scores`
// (ld_probs = n). exp is a polynomial within 2e-7 of the true value.
void Softmax(float* scores, int64_t rows, int64_t n, const float* bias, float* probs,
             int64_t ld_probs, float* first_row);

// Rounds `rows` x `cols` float32 (rows `ld_src` apart) to bfloat16 (rows
// `ld_dst` apart), to nearest even as LibTorch does.
void FloatToBf16(const float* src, int64_t rows, int64_t cols, int64_t ld_src, uint16_t* dst,
                 int64_t ld_dst);

// LayerNorm of `rows` contiguous bfloat16 rows of `dim`: statistics and the
// affine step in float32 (`weight`, `bias` [dim], float32), one rounding.
void LayerNormBf16(const uint16_t* x, int64_t rows, int64_t dim, const float* weight,
                   const float* bias, float eps, uint16_t* y);

}  // namespace clca::kernels
