// The clca-client binary against a real server: human and JSON output, model
// listing, health, and a non-zero exit with the status message on error.
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/server/server_harness.h"

namespace clca::testing {
namespace {

using ::testing::HasSubstr;

class ClientCliTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start(repository_.path())); }
  std::string Server() const { return " --server " + server_.address(); }

  TestRepository repository_;
  ServerProcess server_;
};

TEST_F(ClientCliTest, ClassifyPrintsPredictionsCostAndTimings) {
  ClientRun run = RunClient("classify " + TestData("preprocess/leaf_300x300.png") + " " +
                      TestData("preprocess/leaf_600x400.jpg") + Server());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("leaf_300x300.png: model leafnet v1, keep rate 0.50"));
  EXPECT_THAT(run.output, HasSubstr("leaf_600x400.jpg"));
  EXPECT_THAT(run.output, HasSubstr("1. "));
  EXPECT_THAT(run.output, HasSubstr("GMACs (full model"));
  EXPECT_THAT(run.output, HasSubstr("batch size"));
  EXPECT_THAT(run.output, HasSubstr("tokens per block: 198 198 198 101 107 107 55 61 61 32 38 40"));
  EXPECT_THAT(run.output, HasSubstr("time: total"));
  // Labels come from labels.txt.
  bool any_label = false;
  for (const std::string& label : TestLabels()) {
    any_label = any_label || run.output.find(label) != std::string::npos;
  }
  EXPECT_TRUE(any_label) << run.output;
}

TEST_F(ClientCliTest, ClassifyJsonHasOneObjectPerFile) {
  ClientRun run = RunClient("classify " + TestData("preprocess/leaf_small_120x90.jpg") +
                      " --model leafnet --version 1 --keep-rate 0.25 --top-k 3 --timeout 20000 "
                      "--json" + Server());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const nlohmann::json json = nlohmann::json::parse(run.output, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << run.output;
  EXPECT_THAT(json["file"].get<std::string>(), HasSubstr("leaf_small_120x90.jpg"));
  const nlohmann::json& response = json["response"];
  EXPECT_EQ(response["predictions"].size(), 3u);
  EXPECT_FLOAT_EQ(response["keep_rate"].get<float>(), 0.25f);
  EXPECT_EQ(response["cost"]["tokens"].size(), 12u);
}

TEST_F(ClientCliTest, ModelsAndHealth) {
  ClientRun models = RunClient("models" + Server());
  ASSERT_EQ(models.exit_code, 0) << models.output;
  EXPECT_THAT(models.output, HasSubstr("leafnet v1: evit_vit_tiny_patch16_224 (evit+clca)"));
  ClientRun health = RunClient("health" + Server());
  EXPECT_EQ(health.exit_code, 0) << health.output;
  EXPECT_THAT(health.output, HasSubstr("SERVING"));
}

TEST_F(ClientCliTest, ErrorsExitNonZeroWithTheStatusMessage) {
  const std::string image = " " + TestData("preprocess/leaf_300x300.png");
  ClientRun run = RunClient("classify" + image + " --model nope" + Server());
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.output, HasSubstr("NOT_FOUND"));
  EXPECT_THAT(run.output, HasSubstr("leafnet"));
  run = RunClient("classify" + image + " --keep-rate 3" + Server());
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.output, HasSubstr("INVALID_ARGUMENT"));
  run = RunClient("classify /no/such/file.png" + Server());
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.output, HasSubstr("/no/such/file.png"));
  run = RunClient("health --server 127.0.0.1:1 --timeout 2000");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.output, HasSubstr("UNAVAILABLE"));
}

}  // namespace
}  // namespace clca::testing
