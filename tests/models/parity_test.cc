// Every reference parity case reproduced from its .pth and .config.json alone.
#include <gtest/gtest.h>

#include "models/io/checkpoint.h"
#include "models/io/load_model.h"
#include "models/io/safetensors.h"
#include "models/save/checkpoint_writer.h"
#include "models/vit/cost.h"
#include "models/vit/model.h"
#include "tests/models/test_util.h"

namespace clca {
namespace {

using testing::ExpectedFiles;
using testing::ParityDir;
using testing::ReadJson;

class ParityTest : public ::testing::TestWithParam<std::string> {};

void ExpectMatches(const ClcaModel& model, double keep_rate, const std::string& expected_path) {
  SCOPED_TRACE(expected_path + " at keep rate " + std::to_string(keep_rate));
  auto expected = testing::ReadTensorDict(expected_path);
  torch::Tensor input = testing::Get(expected, "input").to(torch::kFloat32);
  torch::Tensor logits = testing::Get(expected, "logits");
  torch::Tensor tokens = testing::Get(expected, "tokens");
  auto result = model.Forward(input, keep_rate);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_LE((result->logits - logits).abs().max().item<double>(), 1e-4);
  std::vector<int64_t> want(tokens.data_ptr<int64_t>(), tokens.data_ptr<int64_t>() + tokens.numel());
  EXPECT_EQ(result->tokens, want);
  // The cost model predicts the same token counts without running.
  if (model.config().reduction != Reduction::kAts) {
    auto cost = EstimateCost(model.config(), keep_rate);
    ASSERT_TRUE(cost.ok()) << cost.status();
    EXPECT_EQ(cost->tokens, want);
  }
}

TEST_P(ParityTest, ReproducesReference) {
  const std::string name = GetParam();
  const nlohmann::json config = ReadJson(ParityDir() + "/" + name + ".config.json");
  auto loaded = LoadModel(ParityDir() + "/" + name + ".pth", config);
  if (loaded.status().code() == absl::StatusCode::kUnimplemented) {
    GTEST_SKIP() << loaded.status();
  }
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  for (const auto& [kr, path] : ExpectedFiles(name, loaded->model->config().keep_rate)) {
    ExpectMatches(*loaded->model, kr, path);
  }
}

// With training args in the checkpoint, the sizes alone are enough.
TEST_P(ParityTest, SizesSufficeWhenCheckpointHasArgs) {
  const std::string name = GetParam();
  const nlohmann::json full = ReadJson(ParityDir() + "/" + name + ".config.json");
  auto checkpoint = LoadCheckpoint(ParityDir() + "/" + name + ".pth");
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  if (!checkpoint->args.is_object()) GTEST_SKIP() << "checkpoint has no args";
  nlohmann::json sizes = {{"embed_dim", full["embed_dim"]},
                          {"depth", full["depth"]},
                          {"num_heads", full["num_heads"]}};
  auto loaded = LoadModel(ParityDir() + "/" + name + ".pth", sizes);
  if (loaded.status().code() == absl::StatusCode::kUnimplemented) {
    GTEST_SKIP() << loaded.status();
  }
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectMatches(*loaded->model, loaded->model->config().keep_rate,
                ParityDir() + "/" + name + ".expected.pt");
}

// The same weights as torch.save with args, safetensors (float32 and float16)
// and a bare state dict all give the reference result.
TEST(CheckpointFormatsTest, EveryFormatReproducesTheReference) {
  const std::string name = "evit_kr0.5_clca";
  const nlohmann::json config = ReadJson(ParityDir() + "/" + name + ".config.json");
  auto original = LoadCheckpoint(ParityDir() + "/" + name + ".pth");
  ASSERT_TRUE(original.ok()) << original.status();
  const std::string dir = ::testing::TempDir();
  // The reference args name the model but not these small sizes.
  const nlohmann::json sizes = {{"embed_dim", 48}, {"num_heads", 3}};
  StateDict half;
  for (const auto& [k, v] : original->state_dict) {
    half.push_back({k, v.is_floating_point() ? v.to(torch::kFloat16) : v});
  }
  ASSERT_TRUE(SaveCheckpoint(dir + "/args.pth", original->state_dict, original->args).ok());
  ASSERT_TRUE(WriteSafetensors(dir + "/f32.safetensors", original->state_dict,
                               {{"args", original->args.dump()}}).ok());
  ASSERT_TRUE(WriteSafetensors(dir + "/f16.safetensors", half).ok());
  for (const auto& [file, given, tolerance] :
       std::vector<std::tuple<std::string, nlohmann::json, double>>{
           {"args.pth", sizes, 1e-4},
           {"f32.safetensors", sizes, 1e-4},
           {"f16.safetensors", config, 5e-2}}) {
    SCOPED_TRACE(file);
    auto loaded = LoadModel(dir + "/" + file, given);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    auto expected = testing::ReadTensorDict(ParityDir() + "/" + name + ".expected.pt");
    auto result = loaded->model->Forward(testing::Get(expected, "input").to(torch::kFloat32), 0.5);
    ASSERT_TRUE(result.ok());
    EXPECT_LE((result->logits - testing::Get(expected, "logits")).abs().max().item<double>(),
              tolerance);
  }
}

INSTANTIATE_TEST_SUITE_P(Reference, ParityTest, ::testing::ValuesIn(testing::ParityCases()),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s) {
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return s;
                         });

}  // namespace
}  // namespace clca
