// The AVX512-BF16 loops of the bfloat16 forward pass against LibTorch's
// float32 operations on the same (bfloat16) values.
#include <cmath>
#include <limits>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/core/layers.h"
#include "models/cpu/cpu_kernels.h"

namespace clca {
namespace {

const torch::TensorOptions kBf16 = torch::TensorOptions().dtype(torch::kBFloat16);

class CpuKernelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kernels::HasAvx512Bf16()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
    torch::manual_seed(0);
  }
};

// Rounds as LibTorch does (to nearest, ties to even), bit for bit.
TEST_F(CpuKernelsTest, FloatToBf16RoundsAsLibTorch) {
  torch::Tensor x = torch::randn({7, 45}) * 100;
  x.index_put_({0, 0}, 1.0f + 1.0f / 256);  // a tie: rounds to even (1.0)
  x.index_put_({0, 1}, 1.0f + 3.0f / 256);  // a tie: rounds to even (1 + 1/64)
  torch::Tensor got = torch::empty({7, 40}, kBf16);
  kernels::FloatToBf16(x.data_ptr<float>(), 7, 40, 45, static_cast<uint16_t*>(got.data_ptr()), 40);
  EXPECT_TRUE(torch::equal(got, x.narrow(1, 0, 40).to(torch::kBFloat16)));
}

TEST_F(CpuKernelsTest, SoftmaxToBf16IsSoftmax) {
  // 37 and 70 keys: whole vectors, pairs of them and a tail.
  for (int64_t n : {5, 37, 70}) {
    SCOPED_TRACE(n);
    torch::Tensor scores = torch::randn({n, n}) * 4;
    torch::Tensor bias = torch::randn({n});
    bias.index_put_({n - 1}, -std::numeric_limits<float>::infinity());
    const torch::Tensor want = (scores + bias).softmax(-1);
    torch::Tensor probs = torch::empty({n, n + 3}, kBf16);
    torch::Tensor first = torch::empty({n});
    torch::Tensor work = scores.clone();
    kernels::SoftmaxToBf16(work.data_ptr<float>(), n, n, bias.data_ptr<float>(),
                           static_cast<uint16_t*>(probs.data_ptr()), n + 3, first.data_ptr<float>());
    const torch::Tensor got = probs.narrow(1, 0, n);
    EXPECT_TRUE(torch::equal(got, want.to(torch::kBFloat16)) ||
                torch::allclose(got.to(torch::kFloat32), want, 1e-2, 1e-6));
    EXPECT_TRUE(torch::allclose(first, want[0], 1e-5, 1e-7))
        << (first - want[0]).abs().max().item<float>();
    EXPECT_EQ(got.select(1, n - 1).to(torch::kFloat32).abs().max().item<float>(), 0.0f);
    // Without a bias.
    work = scores.clone();
    kernels::SoftmaxToBf16(work.data_ptr<float>(), n, n, nullptr,
                           static_cast<uint16_t*>(probs.data_ptr()), n + 3, nullptr);
    EXPECT_TRUE(torch::allclose(probs.narrow(1, 0, n).to(torch::kFloat32), scores.softmax(-1),
                                1e-2, 1e-6));
  }
}

// The float32 softmax, in place as attention runs it, against LibTorch's.
TEST_F(CpuKernelsTest, SoftmaxIsLibTorchsSoftmax) {
  for (int64_t n : {5, 37, 70}) {
    SCOPED_TRACE(n);
    torch::Tensor scores = torch::randn({n, n}) * 4;
    torch::Tensor bias = torch::randn({n});
    bias.index_put_({2}, -std::numeric_limits<float>::infinity());
    const torch::Tensor want = (scores + bias).softmax(-1);
    torch::Tensor first = torch::empty({n});
    kernels::Softmax(scores.data_ptr<float>(), n, n, bias.data_ptr<float>(),
                     scores.data_ptr<float>(), n, first.data_ptr<float>());
    EXPECT_TRUE(torch::allclose(scores, want, 1e-5, 1e-7))
        << (scores - want).abs().max().item<float>();
    EXPECT_TRUE(torch::equal(first, scores[0]));
    EXPECT_EQ(scores.select(1, 2).abs().max().item<float>(), 0.0f);
  }
}

// A row whose every key is hidden gives zeros, not NaN.
TEST_F(CpuKernelsTest, SoftmaxOfAHiddenRowIsZero) {
  torch::Tensor scores = torch::full({1, 20}, -std::numeric_limits<float>::infinity());
  torch::Tensor probs = torch::empty({1, 20}, kBf16);
  kernels::SoftmaxToBf16(scores.data_ptr<float>(), 1, 20, nullptr,
                         static_cast<uint16_t*>(probs.data_ptr()), 20, nullptr);
  EXPECT_EQ(probs.to(torch::kFloat32).abs().sum().item<float>(), 0.0f);
}

// LayerNormWeights on bfloat16 (the kernel here; LibTorch's float32 norm on
// CPUs without AVX512-BF16): float32 statistics, one rounding.
TEST_F(CpuKernelsTest, Bf16LayerNormIsTheRoundedFloat32Norm) {
  torch::NoGradGuard no_grad;
  for (int64_t dim : {77, 768}) {
    SCOPED_TRACE(dim);
    LayerNormWeights norm;
    norm.weight = torch::randn({dim}).to(torch::kBFloat16);
    norm.bias = torch::randn({dim}).to(torch::kBFloat16);
    norm.eps = 1e-6;
    torch::Tensor x = (torch::randn({3, 5, dim}) * 3 + 1).to(torch::kBFloat16);
    torch::Tensor got = norm(x);
    EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
    ASSERT_EQ(got.sizes(), x.sizes());
    torch::Tensor want =
        at::layer_norm(x.to(torch::kFloat32), {dim}, norm.weight.to(torch::kFloat32),
                       norm.bias.to(torch::kFloat32), 1e-6);
    EXPECT_TRUE(torch::allclose(got.to(torch::kFloat32), want, 1e-2, 1e-2))
        << (got.to(torch::kFloat32) - want).abs().max().item<float>();
    // A strided input is taken as it is.
    torch::Tensor every_other = x.slice(1, 0, 5, 2);
    EXPECT_TRUE(torch::equal(norm(every_other), got.slice(1, 0, 5, 2)));
  }
}

}  // namespace
}  // namespace clca
