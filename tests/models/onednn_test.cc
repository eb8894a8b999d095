// oneDNN's matrix products against LibTorch's own, and the model with and
// without them.
#include <cmath>
#include <limits>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/core/layers.h"
#include "models/cpu/onednn.h"
#include "models/vit/model.h"
#include "tests/models/test_util.h"

namespace clca {
namespace {

class OneDnnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!onednn::Available()) GTEST_SKIP() << "this LibTorch does not export oneDNN's sgemm";
    torch::manual_seed(0);
  }
};

TEST_F(OneDnnTest, LinearIsLibTorchs) {
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({2, 70, 48});
  torch::Tensor w = torch::randn({96, 48});
  torch::Tensor b = torch::randn({96});
  torch::Tensor expected = at::linear(x, w, b);
  torch::Tensor got = onednn::Linear(x, w, b);
  ASSERT_EQ(got.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(onednn::Linear(x, w, {}), at::linear(x, w), 1e-4, 1e-4));
  // A strided input (every other token) is taken as it is.
  torch::Tensor strided = x.slice(1, 0, 70, 2);
  EXPECT_TRUE(torch::allclose(onednn::Linear(strided, w, b), at::linear(strided, w, b), 1e-4,
                              1e-4));

  LinearWeights layer;
  layer.weight = w;
  layer.bias = b;
  ASSERT_TRUE(layer.PrepareOneDnn());
  // Packed for oneDNN's matmul, or else laid out as the transpose of a
  // row-major [in, out].
  if (layer.packed) {
    EXPECT_TRUE(torch::equal(layer.packed->Weight(), w));
  } else {
    EXPECT_EQ(layer.weight.stride(0), 1);
  }
  EXPECT_TRUE(torch::equal(layer.weight, w));
  EXPECT_TRUE(torch::allclose(layer(x), expected, 1e-4, 1e-4));
  const torch::Tensor bias_before = b.clone();
  for (int64_t rows : {1, 3, 200, 1}) {
    SCOPED_TRACE(rows);
    torch::Tensor few = torch::randn({rows, 48});
    EXPECT_TRUE(torch::allclose(layer(few), at::linear(few, w, bias_before), 1e-4, 1e-4));
  }
  // The output never lands in the bias, whatever the number of rows.
  EXPECT_TRUE(torch::equal(b, bias_before));
  // One output, as the CLA head's pooling over stages has.
  LinearWeights pool;
  pool.weight = torch::randn({1, 4});
  pool.bias = torch::randn({1});
  const torch::Tensor pool_weight = pool.weight.clone();
  ASSERT_TRUE(pool.PrepareOneDnn());
  torch::Tensor stages = torch::randn({3, 48, 4});
  EXPECT_TRUE(torch::allclose(pool(stages), at::linear(stages, pool_weight, pool.bias), 1e-4,
                              1e-4));
  // With gradients, LibTorch computes (and records) the product.
  torch::AutoGradMode grad(true);
  torch::Tensor wg = w.clone().requires_grad_(true);
  layer.weight = wg;
  EXPECT_TRUE(layer(x).requires_grad());
}

// bfloat16: the products of the bf16 operands, summed and biased in float32,
// rounded once.
TEST_F(OneDnnTest, Bf16LinearIsTheRoundedFloat32Product) {
  if (!onednn::AvailableBf16()) GTEST_SKIP() << "no dnnl_gemm_bf16bf16f32";
  torch::NoGradGuard no_grad;
  LinearWeights layer;
  layer.weight = torch::randn({96, 48}).to(torch::kBFloat16);
  layer.bias = torch::randn({96}).to(torch::kBFloat16);
  const torch::Tensor w = layer.weight.to(torch::kFloat32), b = layer.bias.to(torch::kFloat32);
  ASSERT_TRUE(layer.PrepareOneDnn());
  if (!layer.packed) {
    EXPECT_EQ(layer.weight.stride(0), 1);
  }
  for (int64_t rows : {1, 5, 300}) {
    SCOPED_TRACE(rows);
    torch::Tensor x = torch::randn({rows, 48}).to(torch::kBFloat16);
    torch::Tensor got = layer(x);
    EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
    torch::Tensor want = at::linear(x.to(torch::kFloat32), w, b);
    // One bf16 rounding of the result: a relative 2^-8.
    EXPECT_TRUE(torch::allclose(got.to(torch::kFloat32), want, 1e-2, 1e-2));
  }
  EXPECT_TRUE(torch::equal(layer.bias.to(torch::kFloat32), b));
}

TEST_F(OneDnnTest, AttentionIsSoftmaxAttention) {
  torch::NoGradGuard no_grad;
  const int64_t batch = 2, length = 9, heads = 3, head_dim = 8, dim = heads * head_dim;
  torch::Tensor qkv = torch::randn({batch, length, 3 * dim});
  torch::Tensor bias = torch::randn({batch, length});
  bias.index_put_({1, 4}, -std::numeric_limits<float>::infinity());
  torch::Tensor cls_rows;
  torch::Tensor got = onednn::Attention(qkv, heads, bias, &cls_rows);

  torch::Tensor split = qkv.view({batch, length, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});
  torch::Tensor scores = torch::matmul(split[0], split[1].transpose(-2, -1)) /
                             std::sqrt(static_cast<double>(head_dim)) +
                         bias.view({batch, 1, 1, length});
  torch::Tensor probs = scores.softmax(-1);
  torch::Tensor expected = torch::matmul(probs, split[2]).transpose(1, 2).reshape({batch, length, dim});
  ASSERT_EQ(got.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(cls_rows, probs.select(2, 0), 1e-5, 1e-5));
  EXPECT_EQ(cls_rows[1][0][4].item<float>(), 0.0f);
  EXPECT_TRUE(torch::allclose(onednn::Attention(qkv, heads, {}, nullptr),
                              torch::matmul(torch::matmul(split[0], split[1].transpose(-2, -1))
                                                    .div(std::sqrt(static_cast<double>(head_dim)))
                                                    .softmax(-1),
                                            split[2])
                                  .transpose(1, 2)
                                  .reshape({batch, length, dim}),
                              1e-4, 1e-4));
}

// Batches of different lengths in one call, writing into one buffer: each
// batch gets exactly what it gets alone, and rows outside them stay as they were.
TEST_F(OneDnnTest, RaggedAttentionIsEachBatchsOwn) {
  torch::NoGradGuard no_grad;
  std::vector<torch::ScalarType> types = {torch::kFloat32};
  if (onednn::AttentionBf16Available()) types.push_back(torch::kBFloat16);
  const int64_t heads = 3, dim = 24;
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{2, 9}, {1, 1}, {3, 17}, {1, 40}};
  for (const torch::ScalarType type : types) {
    SCOPED_TRACE(c10::toString(type));
    int64_t rows = 0;
    for (const auto& [batch, length] : shapes) rows += batch * length;
    const torch::TensorOptions options = torch::TensorOptions().dtype(type);
    torch::Tensor buffer = torch::full({rows + 5, dim}, 7.0f, options);
    std::vector<onednn::AttentionBatch> batches(shapes.size());
    std::vector<torch::Tensor> cls(shapes.size());
    int64_t start = 0;
    for (size_t i = 0; i < shapes.size(); ++i) {
      const auto [batch, length] = shapes[i];
      batches[i].qkv = torch::randn({batch, length, 3 * dim}).to(type);
      if (i % 2 == 0) batches[i].bias = torch::randn({batch, length});
      batches[i].out = buffer.narrow(0, start, batch * length).view({batch, length, dim});
      if (i != 1) batches[i].cls_rows = &cls[i];
      start += batch * length;
    }
    onednn::Attention(batches, heads);
    for (size_t i = 0; i < shapes.size(); ++i) {
      torch::Tensor alone_cls;
      const torch::Tensor alone = onednn::Attention(batches[i].qkv, heads, batches[i].bias,
                                                    batches[i].cls_rows ? &alone_cls : nullptr);
      EXPECT_TRUE(torch::equal(batches[i].out, alone)) << "batch " << i;
      if (batches[i].cls_rows) {
        EXPECT_TRUE(torch::equal(cls[i], alone_cls)) << "batch " << i;
      }
    }
    EXPECT_TRUE(torch::equal(buffer.narrow(0, rows, 5), torch::full({5, dim}, 7.0f, options)));
  }

  std::vector<onednn::AttentionBatch> wrong(1);
  wrong[0].qkv = torch::randn({1, 4, 3 * dim});
  wrong[0].out = torch::empty({1, 5, dim});
  EXPECT_THROW(onednn::Attention(wrong, heads), c10::Error);
}

// The packed product with each epilogue against LibTorch's, in float32 and
// bfloat16, at row counts that take oneDNN's different kernels.
TEST_F(OneDnnTest, PackedLinearAppliesItsEpilogue) {
  torch::NoGradGuard no_grad;
  const torch::Tensor w32 = torch::randn({80, 48}) * 0.2, b32 = torch::randn({80});
  for (torch::ScalarType type : {torch::kFloat32, torch::kBFloat16}) {
    SCOPED_TRACE(c10::toString(type));
    const torch::Tensor w = w32.to(type), b = b32.to(type);
    // bfloat16: the products of the bf16 operands, summed, biased and added
    // in float32, rounded once (2^-8 relative).
    const double tolerance = type == torch::kFloat32 ? 1e-4 : 2e-2;
    for (onednn::Epilogue epilogue :
         {onednn::Epilogue::kNone, onednn::Epilogue::kGelu, onednn::Epilogue::kResidual}) {
      const auto packed = onednn::PackedLinear::Create(w, b, epilogue);
      if (!packed) GTEST_SKIP() << "this build has no oneDNN primitives";
      EXPECT_TRUE(torch::equal(packed->Weight(), w));
      for (int64_t rows : {1, 3, 197, 300}) {
        SCOPED_TRACE(rows);
        const torch::Tensor x = torch::randn({rows, 48}).to(type);
        const torch::Tensor r = torch::randn({rows, 80}).to(type);
        torch::Tensor want = at::linear(x.to(torch::kFloat32), w32.to(type).to(torch::kFloat32),
                                        b.to(torch::kFloat32));
        if (epilogue == onednn::Epilogue::kGelu) want = at::gelu(want);
        if (epilogue == onednn::Epilogue::kResidual) want = want + r.to(torch::kFloat32);
        const torch::Tensor got = (*packed)(x, r);
        EXPECT_EQ(got.scalar_type(), type);
        ASSERT_EQ(got.sizes(), want.sizes());
        EXPECT_TRUE(torch::allclose(got.to(torch::kFloat32), want, tolerance, tolerance))
            << (got.to(torch::kFloat32) - want).abs().max().item<float>();
      }
    }
    // [B, N, in] gives [B, N, out]; a strided input is taken as it is; a
    // residual of another shape is refused.
    const auto packed = onednn::PackedLinear::Create(w, b, onednn::Epilogue::kResidual);
    const torch::Tensor x = torch::randn({2, 9, 48}).to(type).slice(1, 0, 9, 2);
    const torch::Tensor r = torch::randn({2, 5, 80}).to(type);
    const torch::Tensor want = r.to(torch::kFloat32) +
                               at::linear(x.to(torch::kFloat32), w.to(torch::kFloat32),
                                          b.to(torch::kFloat32));
    EXPECT_TRUE(torch::allclose((*packed)(x, r).to(torch::kFloat32), want, tolerance, tolerance));
    EXPECT_THROW((*packed)(x, r.narrow(1, 0, 4)), std::exception);
    EXPECT_THROW((*packed)(x), std::exception);
    EXPECT_THROW((*packed)(torch::randn({3, 47}).to(type), {}), std::exception);
  }
}

// A layer keeps only its packed copy in a model: each call still computes its
// own product, the one the packing fused and the others.
TEST_F(OneDnnTest, PackedLayerServesEveryCall) {
  torch::NoGradGuard no_grad;
  LinearWeights fc;
  fc.weight = torch::randn({64, 32});
  fc.bias = torch::randn({64});
  const torch::Tensor w = fc.weight.clone(), b = fc.bias.clone();
  ASSERT_TRUE(fc.PrepareOneDnn(onednn::Epilogue::kGelu));
  if (!fc.packed) GTEST_SKIP() << "this build has no oneDNN primitives";
  fc.weight = torch::Tensor();
  const torch::Tensor x = torch::randn({2, 5, 32}), r = torch::randn({2, 5, 64});
  EXPECT_TRUE(torch::allclose(fc.Gelu(x), at::gelu(at::linear(x, w, b)), 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(fc(x), at::linear(x, w, b), 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(fc.AddTo(r, x), r + at::linear(x, w, b), 1e-4, 1e-4));
}

// bfloat16 attention (bfloat16 products, float32 softmax) against float32
// attention on the same bfloat16 values.
TEST_F(OneDnnTest, Bf16AttentionIsSoftmaxAttention) {
  if (!onednn::AttentionBf16Available()) GTEST_SKIP() << "needs AVX512-BF16 and oneDNN's bf16 product";
  torch::NoGradGuard no_grad;
  const int64_t batch = 2, heads = 3, head_dim = 16, dim = heads * head_dim;
  for (int64_t length : {9, 37}) {
    SCOPED_TRACE(length);
    const torch::Tensor qkv = torch::randn({batch, length, 3 * dim}).to(torch::kBFloat16);
    torch::Tensor bias = torch::randn({batch, length});
    bias.index_put_({1, 4}, -std::numeric_limits<float>::infinity());
    bias = bias.to(torch::kBFloat16);
    torch::Tensor cls_rows;
    const torch::Tensor got = onednn::Attention(qkv, heads, bias, &cls_rows);
    EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
    EXPECT_EQ(cls_rows.scalar_type(), torch::kFloat32);

    const torch::Tensor split = qkv.to(torch::kFloat32)
                                    .view({batch, length, 3, heads, head_dim})
                                    .permute({2, 0, 3, 1, 4});
    const torch::Tensor probs = (torch::matmul(split[0], split[1].transpose(-2, -1)) /
                                     std::sqrt(static_cast<double>(head_dim)) +
                                 bias.to(torch::kFloat32).view({batch, 1, 1, length}))
                                    .softmax(-1);
    const torch::Tensor want =
        torch::matmul(probs, split[2]).transpose(1, 2).reshape({batch, length, dim});
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_TRUE(torch::allclose(got.to(torch::kFloat32), want, 2e-2, 2e-2))
        << (got.to(torch::kFloat32) - want).abs().max().item<float>();
    EXPECT_TRUE(torch::allclose(cls_rows, probs.select(2, 0), 1e-4, 1e-6));
    EXPECT_EQ(cls_rows[1][0][4].item<float>(), 0.0f);
  }
}

// The same weights give the same classes, tokens and (nearly) logits whether
// the blocks compute with oneDNN or with LibTorch's BLAS (2 x 402 tokens).
TEST_F(OneDnnTest, ModelAgreesWithTheBlasPath) {
  for (const char* method : {"evit", "tome", "vit"}) {
    SCOPED_TRACE(method);
    ModelConfig config = testing::SmallConfig(method, true);
    config.input_size = 320;
    ModelOptions with, without;
    without.onednn_linear = false;
    testing::ExpectSameResults(config, 3, with, without, 2);
  }
}

}  // namespace
}  // namespace clca
