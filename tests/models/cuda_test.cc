// The model on a CUDA GPU: the reference parity cases, the fused attention
// kernels against explicit products, and the half precisions. Skipped where
// LibTorch sees no GPU.
#include <gtest/gtest.h>

#include "models/io/load_model.h"
#include "models/vit/model.h"
#include "tests/models/test_util.h"

namespace clca {
namespace {

using testing::ExpectedFiles;
using testing::ParityDir;
using testing::ReadJson;

using testing::OnGpu;
using CudaTest = testing::GpuTest;

// Every parity case gives the reference's logits and token counts on the GPU,
// with fused attention kernels and with explicit products.
TEST_F(CudaTest, ReproducesEveryParityCase) {
  for (const std::string& name : testing::ParityCases()) {
    const nlohmann::json config = ReadJson(ParityDir() + "/" + name + ".config.json");
    for (bool fused : {true, false}) {
      SCOPED_TRACE(name + (fused ? ", fused attention" : ", explicit attention"));
      ModelOptions options = OnGpu();
      options.fused_attention = fused;
      auto loaded = LoadModel(ParityDir() + "/" + name + ".pth", config, options);
      if (loaded.status().code() == absl::StatusCode::kUnimplemented) continue;
      ASSERT_TRUE(loaded.ok()) << loaded.status();
      for (const auto& [kr, path] : ExpectedFiles(name, loaded->model->config().keep_rate)) {
        SCOPED_TRACE(path);
        auto expected = testing::ReadTensorDict(path);
        auto result =
            loaded->model->Forward(testing::Get(expected, "input").to(torch::kFloat32), kr);
        ASSERT_TRUE(result.ok()) << result.status();
        ASSERT_TRUE(result->logits.is_cuda());
        torch::Tensor logits = testing::Get(expected, "logits");
        EXPECT_LE((result->logits.cpu() - logits).abs().max().item<double>(), 1e-4);
        torch::Tensor tokens = testing::Get(expected, "tokens");
        std::vector<int64_t> want(tokens.data_ptr<int64_t>(),
                                  tokens.data_ptr<int64_t>() + tokens.numel());
        EXPECT_EQ(result->tokens, want);
      }
    }
  }
}

// scaled_dot_product_attention (with the CLS row computed apart for EViT and
// the size bias of ToMe's proportional attention) computes what the explicit
// products do.
TEST_F(CudaTest, FusedAttentionMatchesExplicitProducts) {
  for (const char* method : {"evit", "tome", "vit"}) {
    SCOPED_TRACE(method);
    ModelOptions explicit_products = OnGpu();
    explicit_products.fused_attention = false;
    testing::ExpectSameResults(testing::SmallConfig(method, true), 5, OnGpu(), explicit_products, 3);
  }
}

// bf16 and fp16 follow float32 on the GPU: same token counts, logits within
// 5 % of their range.
TEST_F(CudaTest, HalfPrecisionsFollowFloat32) {
  const ModelConfig config = testing::SmallConfig("evit", true);
  auto reference = ClcaModel::CreateRandom(config, 9, OnGpu());
  ASSERT_TRUE(reference.ok());
  torch::Tensor images = torch::randn({8, 3, config.input_size, config.input_size});
  auto want = (*reference)->Forward(images, 0.5);
  ASSERT_TRUE(want.ok());
  for (Precision p : {Precision::kBFloat16, Precision::kFloat16}) {
    auto model = ClcaModel::CreateRandom(config, 9, OnGpu(p));
    ASSERT_TRUE(model.ok()) << model.status();
    auto got = model.value()->Forward(images, 0.5);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->logits.scalar_type(), torch::kFloat32);
    EXPECT_EQ(got->tokens, want->tokens);
    const double scale = want->logits.abs().max().item<double>();
    EXPECT_LE((got->logits - want->logits).abs().max().item<double>(), 0.05 * scale + 1e-3);
  }
}

}  // namespace
}  // namespace clca
