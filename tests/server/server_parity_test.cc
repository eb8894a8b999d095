// The server answers what the model library computes in-process: LoadModel +
// PreprocessFile + Forward on the same checkpoint (as `clca run` does).
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "models/io/load_model.h"
#include "models/preprocess/preprocess.h"
#include "models/vit/model.h"
#include "tests/server/server_harness.h"

namespace clca::testing {
namespace {

// Softmax probabilities of every class, computed in-process.
std::vector<float> InProcessProbabilities(const ClcaModel& model, const std::string& image,
                                          double keep_rate) {
  PreprocessOptions options;
  options.input_size = model.config().input_size;
  absl::StatusOr<torch::Tensor> input = PreprocessFile(image, options);
  EXPECT_TRUE(input.ok()) << input.status();
  if (!input.ok()) return {};
  absl::StatusOr<ForwardResult> result = model.Forward(input->unsqueeze(0), keep_rate);
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return {};
  torch::Tensor probabilities = torch::softmax(result->logits.to(torch::kFloat32), 1)[0];
  return std::vector<float>(probabilities.data_ptr<float>(),
                            probabilities.data_ptr<float>() + probabilities.numel());
}

TEST(ServerParityTest, ServerScoresEqualInProcessForward) {
  std::ifstream config_file(TestData("parity/evit_kr0.5_clca.config.json"));
  const nlohmann::json config = nlohmann::json::parse(config_file);
  absl::StatusOr<LoadedModel> loaded =
      LoadModel(TestData("parity/evit_kr0.5_clca.pth"), config);
  ASSERT_TRUE(loaded.ok()) << loaded.status();

  TestRepository repository;
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path()));
  auto client = server.NewClient();

  for (const char* image : {"preprocess/leaf_300x300.png", "preprocess/leaf_600x400.jpg",
                            "preprocess/leaf_small_120x90.jpg"}) {
    for (float keep_rate : {0.5f, 0.25f, 1.0f}) {
      SCOPED_TRACE(std::string(image) + " at keep rate " + std::to_string(keep_rate));
      const std::vector<float> expected =
          InProcessProbabilities(*loaded->model, TestData(image), keep_rate);
      ASSERT_EQ(expected.size(), static_cast<size_t>(kTestClasses));

      ClassifyOptions options;
      options.model = kTestModel;
      options.keep_rate = keep_rate;
      options.top_k = kTestClasses;
      auto response = client->ClassifyFile(TestData(image), options);
      ASSERT_TRUE(response.ok()) << response.status();
      ASSERT_EQ(response->predictions_size(), kTestClasses);
      size_t best = 0;
      for (size_t c = 1; c < expected.size(); ++c) {
        if (expected[c] > expected[best]) best = c;
      }
      EXPECT_EQ(response->predictions(0).class_id(), static_cast<int>(best));
      for (const v1::Prediction& p : response->predictions()) {
        EXPECT_NEAR(p.score(), expected[p.class_id()], 1e-5) << "class " << p.class_id();
      }
    }
  }
}

// On a GPU (skipped elsewhere): a float32 server on CUDA gives the CPU
// server's scores within 1e-4, and a float16 one (the GPU default) the same
// top-1, through the batch runner's CUDA graphs and eager passes alike.
TEST(ServerParityTest, CudaServerAgreesWithTheCpuServer) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  TestRepository repository;
  ServerProcess cpu;
  ASSERT_TRUE(cpu.Start(repository.path(), {"--device", "cpu", "--precision", "float32"}));
  ServerProcess fp32;
  ASSERT_TRUE(fp32.Start(repository.path(), {"--device", "cuda", "--precision", "float32"}));
  ServerProcess fp16;
  ASSERT_TRUE(fp16.Start(repository.path(), {"--device", "cuda"}));
  auto on_cpu = cpu.NewClient();
  auto on_fp32 = fp32.NewClient();
  auto on_fp16 = fp16.NewClient();
  for (const char* image : {"preprocess/leaf_300x300.png", "preprocess/leaf_600x400.jpg",
                            "preprocess/leaf_small_120x90.jpg"}) {
    for (float keep_rate : {0.5f, 0.25f, 1.0f}) {
      SCOPED_TRACE(std::string(image) + " at keep rate " + std::to_string(keep_rate));
      ClassifyOptions options;
      options.model = kTestModel;
      options.keep_rate = keep_rate;
      options.top_k = kTestClasses;
      // Three calls each: graphs are captured at warm-up or on a key's
      // second use, so the later calls replay them.
      for (int call = 0; call < 3; ++call) {
        auto want = on_cpu->ClassifyFile(TestData(image), options);
        auto got = on_fp32->ClassifyFile(TestData(image), options);
        auto half = on_fp16->ClassifyFile(TestData(image), options);
        ASSERT_TRUE(want.ok() && got.ok() && half.ok());
        EXPECT_EQ(got->predictions(0).class_id(), want->predictions(0).class_id());
        EXPECT_EQ(half->predictions(0).class_id(), want->predictions(0).class_id());
        std::map<int, float> expected;
        for (const v1::Prediction& p : want->predictions()) expected[p.class_id()] = p.score();
        for (const v1::Prediction& p : got->predictions()) {
          EXPECT_NEAR(p.score(), expected[p.class_id()], 1e-4) << "class " << p.class_id();
        }
        EXPECT_EQ(std::vector<int64_t>(got->cost().tokens().begin(), got->cost().tokens().end()),
                  std::vector<int64_t>(want->cost().tokens().begin(), want->cost().tokens().end()));
      }
    }
  }
}

}  // namespace
}  // namespace clca::testing
