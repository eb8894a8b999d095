// BatchRunner: on the CPU, and on a CUDA GPU (streams, pinned buffers, CUDA
// graphs) where LibTorch sees one; the GPU tests are skipped elsewhere.
#include "models/exec/batch_runner.h"

#include <gtest/gtest.h>

#include "tests/models/test_util.h"

namespace clca {
namespace {

constexpr const char* kMethods[] = {"vit", "evit", "topk", "tome", "dyvit",
                                    "patchmerger", "sit", "ats", "dpcknn"};

std::vector<torch::Tensor> Images(const ModelConfig& config, int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> images;
  for (int64_t i = 0; i < n; ++i) {
    images.push_back(torch::randn({3, config.input_size, config.input_size}));
  }
  return images;
}

TEST(BatchRunnerTest, BucketsArePowersOfTwoUpToTheLargestBatch) {
  EXPECT_EQ(BatchBucket(1, 64), 1);
  EXPECT_EQ(BatchBucket(2, 64), 2);
  EXPECT_EQ(BatchBucket(3, 64), 4);
  EXPECT_EQ(BatchBucket(33, 64), 64);
  EXPECT_EQ(BatchBucket(64, 64), 64);
  EXPECT_EQ(BatchBucket(9, 12), 12);
  EXPECT_EQ(BatchBucket(12, 12), 12);
}

TEST(BatchRunnerTest, OnlyAtsAndDpcKnnHaveImageDependentTokenCounts) {
  for (const char* method : kMethods) {
    const ModelConfig config = testing::SmallConfig(method, true);
    const bool dynamic = config.reduction == Reduction::kAts ||
                         config.reduction == Reduction::kDpcKnn;
    EXPECT_EQ(HasStaticTokenCounts(config.reduction), !dynamic) << method;
  }
}

// On the CPU a runner gives what ForwardMixed gives, as float32 on the CPU.
TEST(BatchRunnerTest, CpuRunnerGivesTheModelsAnswers) {
  const ModelConfig config = testing::SmallConfig("evit", true);
  auto model = ClcaModel::CreateRandom(config, 3);
  ASSERT_TRUE(model.ok());
  auto runner = BatchRunner::Create(**model);
  ASSERT_TRUE(runner.ok()) << runner.status();
  EXPECT_FALSE((*runner)->UsesGraphs());
  const std::vector<torch::Tensor> images = Images(config, 5, 1);
  const std::vector<double> rates = {0.5, 1.0, 0.5, 0.3, 1.0};
  auto got = (*runner)->Run(images, rates);
  ASSERT_TRUE(got.ok()) << got.status();
  auto want = (*model)->ForwardMixed(torch::stack(images), rates);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(got->logits.device(), torch::Device(torch::kCPU));
  EXPECT_EQ(got->logits.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(got->logits, want->logits));
  EXPECT_EQ(got->tokens, want->tokens);
  EXPECT_EQ((*runner)->stats().eager_batches, 1);
  EXPECT_TRUE((*runner)->Prepare(2, 0.5).ok());
}

TEST(BatchRunnerTest, RefusesMalformedBatches) {
  const ModelConfig config = testing::SmallConfig("evit", true);
  auto model = ClcaModel::CreateRandom(config, 3);
  ASSERT_TRUE(model.ok());
  BatchRunnerOptions options;
  options.max_batch = 4;
  auto runner = BatchRunner::Create(**model, options);
  ASSERT_TRUE(runner.ok());
  const auto invalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ((*runner)->Run({}, {}).status().code(), invalid);
  EXPECT_EQ((*runner)->Run(Images(config, 5, 2), std::vector<double>(5, 0.5)).status().code(),
            invalid);
  EXPECT_EQ((*runner)->Run(Images(config, 2, 2), {0.5}).status().code(), invalid);
  EXPECT_EQ((*runner)->Run({torch::zeros({3, 32, 32})}, {0.5}).status().code(), invalid);
  EXPECT_EQ((*runner)->Run({torch::zeros({3, 64, 64}, torch::kLong)}, {0.5}).status().code(),
            invalid);
  EXPECT_EQ((*runner)->Run({torch::Tensor()}, {0.5}).status().code(), invalid);
  EXPECT_EQ((*runner)->Run(Images(config, 1, 2), {1.5}).status().code(), invalid);
  EXPECT_EQ((*runner)->Prepare(5, 0.5).code(), invalid);
  options.max_batch = 0;
  EXPECT_EQ(BatchRunner::Create(**model, options).status().code(), invalid);
}

using testing::OnGpu;
using CudaRunnerTest = testing::GpuTest;

// Graph replays give the eager forward pass's logits and token counts for
// every method, at every batch size up to a bucket (padded), and the
// image-dependent methods run eagerly.
TEST_F(CudaRunnerTest, GraphsGiveTheEagerAnswersForEveryMethod) {
  for (const char* method : kMethods) {
    SCOPED_TRACE(method);
    const ModelConfig config = testing::SmallConfig(method, true);
    auto model = ClcaModel::CreateRandom(config, 5, OnGpu());
    ASSERT_TRUE(model.ok()) << model.status();
    BatchRunnerOptions options;
    options.max_batch = 8;
    options.capture_after = 1;
    auto runner = BatchRunner::Create(**model, options);
    ASSERT_TRUE(runner.ok()) << runner.status();
    EXPECT_EQ((*runner)->UsesGraphs(), HasStaticTokenCounts(config.reduction));
    for (int64_t n : {1, 3, 4, 7, 8}) {
      for (double kr : {1.0, 0.5}) {
        SCOPED_TRACE(::testing::Message() << "batch " << n << ", keep rate " << kr);
        const std::vector<torch::Tensor> images = Images(config, n, 10 + n);
        // Twice: the first use captures, the second replays.
        for (int round = 0; round < 2; ++round) {
          auto got = (*runner)->Run(images, std::vector<double>(n, kr));
          ASSERT_TRUE(got.ok()) << got.status();
          auto want = (*model)->Forward(torch::stack(images), kr);
          ASSERT_TRUE(want.ok());
          EXPECT_LE((got->logits - want->logits.cpu()).abs().max().item<double>(), 1e-4);
          if (HasStaticTokenCounts(config.reduction)) {
            for (const auto& tokens : got->tokens) EXPECT_EQ(tokens, want->tokens);
          }
        }
      }
    }
    const BatchRunnerStats stats = (*runner)->stats();
    if (HasStaticTokenCounts(config.reduction)) {
      EXPECT_EQ(stats.captures, 6);  // buckets 1, 4 and 8 at two keep rates
      EXPECT_EQ(stats.graph_replays, 20);
    } else {
      EXPECT_EQ(stats.captures, 0);
      EXPECT_EQ(stats.graph_replays, 0);
    }
  }
}

// Batches of several keep rates run eagerly and match ForwardMixed; images
// already on the GPU are taken as they are.
TEST_F(CudaRunnerTest, MixedBatchesAndDeviceImages) {
  const ModelConfig config = testing::SmallConfig("evit", true);
  auto model = ClcaModel::CreateRandom(config, 5, OnGpu());
  ASSERT_TRUE(model.ok());
  auto runner = BatchRunner::Create(**model);
  ASSERT_TRUE(runner.ok());
  std::vector<torch::Tensor> images = Images(config, 4, 7);
  const std::vector<double> rates = {0.3, 1.0, 0.3, 0.7};
  auto got = (*runner)->Run(images, rates);
  ASSERT_TRUE(got.ok()) << got.status();
  auto want = (*model)->ForwardMixed(torch::stack(images), rates);
  ASSERT_TRUE(want.ok());
  EXPECT_LE((got->logits - want->logits.cpu()).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(got->tokens, want->tokens);
  for (torch::Tensor& image : images) image = image.cuda();
  auto on_device = (*runner)->Run(images, rates);
  ASSERT_TRUE(on_device.ok());
  EXPECT_TRUE(torch::equal(on_device->logits, got->logits));
}

// Graphs are bounded: beyond max_graphs the least recently used goes.
TEST_F(CudaRunnerTest, GraphCountIsBounded) {
  const ModelConfig config = testing::SmallConfig("tome", true);
  auto model = ClcaModel::CreateRandom(config, 5, OnGpu(Precision::kFloat16));
  ASSERT_TRUE(model.ok());
  BatchRunnerOptions options;
  options.max_batch = 16;
  options.max_graphs = 2;
  options.capture_after = 2;
  auto runner = BatchRunner::Create(**model, options);
  ASSERT_TRUE(runner.ok());
  const std::vector<torch::Tensor> images = Images(config, 1, 3);
  // One use of a key stays eager; the second captures it.
  ASSERT_TRUE((*runner)->Run(images, {0.5}).ok());
  EXPECT_EQ((*runner)->stats().captures, 0);
  ASSERT_TRUE((*runner)->Run(images, {0.5}).ok());
  EXPECT_EQ((*runner)->stats().captures, 1);
  for (double kr : {0.6, 0.7, 0.8}) {
    ASSERT_TRUE((*runner)->Prepare(1, kr).ok());
  }
  BatchRunnerStats stats = (*runner)->stats();
  EXPECT_EQ(stats.captures, 4);
  EXPECT_EQ(stats.graphs, 2);
  EXPECT_EQ(stats.evictions, 2);
  // A full runner captures no key met in serving: it runs eagerly.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*runner)->Run(images, {0.9}).ok());
  stats = (*runner)->stats();
  EXPECT_EQ(stats.captures, 4);
  EXPECT_EQ(stats.graphs, 2);
  EXPECT_EQ(stats.eager_batches, 4);  // the first call at 0.5, and these three
}

}  // namespace
}  // namespace clca
