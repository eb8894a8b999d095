// oneDNN's matrix products against LibTorch's own, and the model with and
// without them.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/layers.h"
#include "models/model.h"
#include "models/onednn.h"
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
  // Laid out as the transpose of a row-major [in, out].
  EXPECT_EQ(layer.weight.stride(0), 1);
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
  EXPECT_EQ(layer.weight.stride(0), 1);
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
