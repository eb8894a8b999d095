// Status codes and messages the caller can act on: INVALID_ARGUMENT,
// NOT_FOUND, and startup errors that name the broken path.
#include <cmath>
#include <limits>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/server/server_harness.h"

namespace clca::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

const char* const kImage = "preprocess/leaf_300x300.png";

class ErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start(repository_.path()));
    client_ = server_.NewClient();
  }

  absl::Status Classify(std::string image, std::optional<float> keep_rate = std::nullopt,
                        int top_k = 0, const std::string& model = kTestModel,
                        std::optional<int64_t> version = std::nullopt) {
    ClassifyOptions options;
    options.model = model;
    options.keep_rate = keep_rate;
    options.top_k = top_k;
    options.version = version;
    return client_->Classify(std::move(image), options).status();
  }

  TestRepository repository_;
  ServerProcess server_;
  std::unique_ptr<Client> client_;
};

TEST_F(ErrorsTest, UndecodableImageIsInvalidArgument) {
  absl::Status status = Classify("GIF89a definitely not a picture");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("image"));
  // A truncated JPEG.
  std::string jpeg = ReadBytes(TestData("preprocess/leaf_600x400.jpg"));
  status = Classify(jpeg.substr(0, 200));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

TEST_F(ErrorsTest, EmptyImageIsInvalidArgument) {
  absl::Status status = Classify("");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("empty"));
}

TEST_F(ErrorsTest, KeepRateOutsideTheAllowedRangeIsInvalidArgument) {
  const std::string image = ReadBytes(TestData(kImage));
  for (float rate : {0.05f, 1.5f, 0.0f, -0.5f, std::numeric_limits<float>::quiet_NaN(),
                     std::numeric_limits<float>::infinity()}) {
    SCOPED_TRACE(rate);
    absl::Status status = Classify(image, rate);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(status.message(), AllOf(HasSubstr("keep_rate"), HasSubstr("[0.1, 1]")));
  }
  EXPECT_TRUE(Classify(image, 0.1f).ok());
}

TEST_F(ErrorsTest, NegativeTopKIsInvalidArgument) {
  absl::Status status = Classify(ReadBytes(TestData(kImage)), std::nullopt, -1);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("top_k"));
}

TEST_F(ErrorsTest, UnknownModelOrVersionIsNotFoundListingWhatExists) {
  const std::string image = ReadBytes(TestData(kImage));
  absl::Status status = Classify(image, std::nullopt, 0, "resnet");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(status.message(), AllOf(HasSubstr("resnet"), HasSubstr(kTestModel)));

  status = Classify(image, std::nullopt, 0, kTestModel, 7);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(status.message(), AllOf(HasSubstr("version 7"), HasSubstr("available versions: 1")));

  status = Classify(image, std::nullopt, 0, kTestModel, 0);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;

  EXPECT_EQ(client_->GetModel("resnet").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->GetModel(kTestModel, 2).status().code(), absl::StatusCode::kNotFound);
}

TEST(ImageLimitsTest, OversizedImagesAreInvalidArgument) {
  TestRepository repository;
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path(), {"--max-image-bytes", "18000",
                                               "--max-image-pixels", "50000"}));
  auto client = server.NewClient();
  ClassifyOptions options;
  options.model = kTestModel;
  // The 300x300 PNG has more bytes than allowed.
  ASSERT_GT(ReadBytes(TestData(kImage)).size(), 18000u);
  auto response = client->ClassifyFile(TestData(kImage), options);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument) << response.status();
  EXPECT_THAT(response.status().message(), HasSubstr("18000"));
  // The 600x400 JPEG is small enough but has too many pixels.
  ASSERT_LT(ReadBytes(TestData("preprocess/leaf_600x400.jpg")).size(), 18000u);
  response = client->ClassifyFile(TestData("preprocess/leaf_600x400.jpg"), options);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument) << response.status();
  // 120x90 = 10800 pixels passes.
  EXPECT_TRUE(client->ClassifyFile(TestData("preprocess/leaf_small_120x90.jpg"), options).ok());
}

TEST(ModelFailureTest, FailingForwardIsInternalWithTheCauseLogged) {
  // LibTorch 1.13 has no float16 convolution on CPU, so every forward fails;
  // without warm-up, the version loads and its calls fail.
  TestRepository repository(R"({"precision": "float16", "warmup": false})");
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path()));
  ClassifyOptions options;
  options.model = kTestModel;
  auto response = server.NewClient()->ClassifyFile(TestData(kImage), options);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInternal) << response.status();
  EXPECT_THAT(response.status().message(), HasSubstr("server log"));
  ASSERT_EQ(server.Stop(), std::optional<int>(0));
  EXPECT_THAT(server.output(), HasSubstr("event=batch_failed"));
  EXPECT_THAT(server.output(), HasSubstr("Half"));
}

TEST(ModelFailureTest, AVersionFailingItsWarmUpIsFailedAndTheOthersServe) {
  TestRepository repository;
  repository.AddVersion("halfmodel", 1, R"({"precision": "float16"})");
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path()));
  auto client = server.NewClient();
  auto info = client->GetModel("halfmodel", 1);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state(), v1::MODEL_STATE_FAILED);
  EXPECT_THAT(info->state_reason(), HasSubstr("warm-up"));
  ClassifyOptions options;
  options.model = "halfmodel";
  EXPECT_EQ(client->ClassifyFile(TestData(kImage), options).status().code(),
            absl::StatusCode::kNotFound);
  options.model = kTestModel;
  EXPECT_TRUE(client->ClassifyFile(TestData(kImage), options).ok());
  ASSERT_EQ(server.Stop(), std::optional<int>(0));
  EXPECT_THAT(server.output(), HasSubstr("event=model_load_failed"));
  EXPECT_THAT(server.output(), HasSubstr("Half"));
}

// A repository with one defect; the server must refuse to start and say
// where the problem is.
void ExpectStartupError(const std::function<void(const fs::path& version_dir)>& break_it,
                        const std::string& expected) {
  TestRepository repository;
  const fs::path version_dir = fs::path(repository.path()) / kTestModel / "1";
  break_it(version_dir);
  ServerProcess server;
  ASSERT_FALSE(server.Start(repository.path()));
  EXPECT_THAT(server.exit_code(), ::testing::Optional(::testing::Ne(0)));
  EXPECT_THAT(server.output(), HasSubstr(version_dir.string()));
  EXPECT_THAT(server.output(), HasSubstr(expected));
}

TEST(StartupTest, BrokenModelDirectoriesAreClearErrors) {
  ExpectStartupError([](const fs::path& dir) { fs::remove(dir / "model.json"); }, "model.json");
  ExpectStartupError([](const fs::path& dir) { fs::remove(dir / "model.pth"); },
                     "expected exactly one checkpoint");
  ExpectStartupError(
      [](const fs::path& dir) {
        fs::remove(dir / "model.pth");
        WriteText(dir / "model.pth", "not a checkpoint");
      },
      "model.pth");
  ExpectStartupError(
      [](const fs::path& dir) { WriteText(dir / "serving.json", R"({"max_batch_siz": 4})"); },
      "max_batch_siz");
  ExpectStartupError(
      [](const fs::path& dir) { WriteText(dir / "serving.json", R"({"keep_rate": {"min": 2}})"); },
      "keep_rate.min");
  ExpectStartupError([](const fs::path& dir) { WriteText(dir / "labels.txt", "a\nb\n"); },
                     "2 labels");
}

TEST(StartupTest, EmptyRepositoryIsAnError) {
  TempDir empty;
  ServerProcess server;
  ASSERT_FALSE(server.Start(empty.path().string()));
  EXPECT_THAT(server.exit_code(), ::testing::Optional(::testing::Ne(0)));
  EXPECT_THAT(server.output(), HasSubstr("holds no models"));
}

// --precision sets the precision of versions whose serving.json names none;
// an unknown one, or a GPU where LibTorch sees none, stops the start.
TEST(StartupTest, PrecisionAndDeviceFlags) {
  TestRepository repository;
  {
    ServerProcess server;
    ASSERT_TRUE(server.Start(repository.path(), {"--precision", "bf16"}));
    auto info = server.NewClient()->GetModel(kTestModel, 1);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->precision(), "bfloat16");
    ClassifyOptions options;
    options.model = kTestModel;
    EXPECT_TRUE(server.NewClient()->ClassifyFile(TestData(kImage), options).ok());
  }
  {
    ServerProcess server;
    ASSERT_FALSE(server.Start(repository.path(), {"--precision", "float8"}));
    EXPECT_THAT(server.exit_code(), ::testing::Optional(::testing::Ne(0)));
    EXPECT_THAT(server.output(), HasSubstr("--precision"));
  }
  if (!torch::cuda::is_available()) {
    ServerProcess server;
    ASSERT_FALSE(server.Start(repository.path(), {"--device", "cuda"}));
    EXPECT_THAT(server.exit_code(), ::testing::Optional(::testing::Ne(0)));
    EXPECT_THAT(server.output(), HasSubstr("CUDA is not available"));
  }
}

}  // namespace
}  // namespace clca::testing
