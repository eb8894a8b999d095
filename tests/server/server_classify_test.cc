// End to end: Classify, ClassifyStream, ListModels and GetModel against the
// real server with the tiny EViT+CLCA test model.
#include <algorithm>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "models/preprocess/preprocess.h"
#include "tests/server/server_harness.h"

namespace clca::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// Tokens after each block of the test model (its parity record).
const std::vector<int64_t> kTokensAt05 = {198, 198, 198, 101, 107, 107, 55, 61, 61, 32, 38, 40};
const std::vector<int64_t> kTokensAt025 = {198, 198, 198, 52, 58, 58, 17, 23, 23, 8, 14, 16};
const std::vector<int64_t> kTokensAt1 = {198, 198, 198, 198, 204, 204,
                                         204, 210, 210, 210, 216, 218};

const char* const kImages[] = {"preprocess/leaf_300x300.png", "preprocess/leaf_600x400.jpg",
                               "preprocess/leaf_small_120x90.jpg"};

class ClassifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start(repository_.path()));
    client_ = server_.NewClient();
  }

  ClassifyOptions Options(std::optional<float> keep_rate = std::nullopt, int top_k = 0) {
    ClassifyOptions options;
    options.model = kTestModel;
    options.keep_rate = keep_rate;
    options.top_k = top_k;
    return options;
  }

  TestRepository repository_;
  ServerProcess server_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClassifyTest, ClassifiesPngAndJpeg) {
  const std::vector<std::string> labels = TestLabels();
  for (const char* image : kImages) {
    SCOPED_TRACE(image);
    auto response = client_->ClassifyFile(TestData(image), Options());
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->model(), kTestModel);
    EXPECT_EQ(response->version(), 1);
    EXPECT_FLOAT_EQ(response->keep_rate(), 0.5f);
    EXPECT_FALSE(response->request_id().empty());
    ASSERT_EQ(response->predictions_size(), 5);
    for (int i = 0; i < 5; ++i) {
      const v1::Prediction& p = response->predictions(i);
      ASSERT_GE(p.class_id(), 0);
      ASSERT_LT(p.class_id(), kTestClasses);
      EXPECT_EQ(p.label(), labels[p.class_id()]);
      EXPECT_GT(p.score(), 0.0f);
      EXPECT_LE(p.score(), 1.0f);
      if (i > 0) {
        EXPECT_LE(p.score(), response->predictions(i - 1).score());
      }
    }
    const v1::Cost& cost = response->cost();
    EXPECT_THAT(cost.tokens(), ElementsAreArray(kTokensAt05));
    EXPECT_GT(cost.gmacs(), 0);
    EXPECT_LT(cost.gmacs(), cost.gmacs_full());
    EXPECT_GE(cost.batch_size(), 1);
    EXPECT_GT(cost.batch_id(), 0u);
    EXPECT_GT(cost.preprocess_us(), 0);
    EXPECT_GT(cost.compute_us(), 0);
    EXPECT_GE(cost.total_us(), cost.compute_us() + cost.queue_us());
  }
}

TEST_F(ClassifyTest, TopKIsCappedAtTheClassCount) {
  auto all = client_->ClassifyFile(TestData(kImages[0]), Options(std::nullopt, 100));
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->predictions_size(), kTestClasses);
  double sum = 0;
  std::vector<int> classes;
  for (const auto& p : all->predictions()) {
    sum += p.score();
    classes.push_back(p.class_id());
  }
  EXPECT_NEAR(sum, 1.0, 1e-5);
  std::sort(classes.begin(), classes.end());
  EXPECT_THAT(classes, ElementsAre(0, 1, 2, 3, 4, 5, 6));

  auto one = client_->ClassifyFile(TestData(kImages[0]), Options(std::nullopt, 1));
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->predictions_size(), 1);
  EXPECT_EQ(one->predictions(0).class_id(), all->predictions(0).class_id());
}

TEST_F(ClassifyTest, KeepRateSetsTokensAndCost) {
  auto low = client_->ClassifyFile(TestData(kImages[1]), Options(0.25f));
  auto mid = client_->ClassifyFile(TestData(kImages[1]), Options());
  auto full = client_->ClassifyFile(TestData(kImages[1]), Options(1.0f));
  ASSERT_TRUE(low.ok()) << low.status();
  ASSERT_TRUE(mid.ok()) << mid.status();
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_FLOAT_EQ(low->keep_rate(), 0.25f);
  EXPECT_THAT(low->cost().tokens(), ElementsAreArray(kTokensAt025));
  EXPECT_THAT(full->cost().tokens(), ElementsAreArray(kTokensAt1));
  EXPECT_LT(low->cost().gmacs(), mid->cost().gmacs());
  EXPECT_LT(mid->cost().gmacs(), full->cost().gmacs());
  EXPECT_DOUBLE_EQ(full->cost().gmacs(), full->cost().gmacs_full());
  EXPECT_DOUBLE_EQ(low->cost().gmacs_full(), full->cost().gmacs_full());
}

TEST_F(ClassifyTest, ListModelsAndGetModel) {
  auto list = client_->ListModels();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->models_size(), 1);
  EXPECT_EQ(list->models(0).name(), kTestModel);
  EXPECT_EQ(list->models(0).labels_size(), 0);

  auto info = client_->GetModel(kTestModel);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->name(), kTestModel);
  EXPECT_EQ(info->version(), 1);
  EXPECT_THAT(info->versions(), ElementsAre(1));
  EXPECT_EQ(info->architecture(), "evit_vit_tiny_patch16_224");
  EXPECT_EQ(info->method(), "evit");
  EXPECT_TRUE(info->clca());
  EXPECT_EQ(info->input_size(), 224);
  EXPECT_EQ(info->num_classes(), kTestClasses);
  EXPECT_THAT(info->labels(), ElementsAreArray(TestLabels()));
  EXPECT_FLOAT_EQ(info->keep_rate().default_value(), 0.5f);
  EXPECT_FLOAT_EQ(info->keep_rate().min(), 0.1f);
  EXPECT_FLOAT_EQ(info->keep_rate().max(), 1.0f);
  EXPECT_GT(info->parameters(), 0);
  EXPECT_EQ(info->device(), "cpu");
  EXPECT_EQ(info->batching().max_batch_size(), 8);
  EXPECT_EQ(info->batching().max_queue_delay_us(), 2000);
  EXPECT_EQ(info->batching().queue_capacity(), 256);
  ASSERT_EQ(info->costs_size(), 5);
  const float rates[] = {0.1f, 0.25f, 0.5f, 0.7f, 1.0f};
  for (int i = 0; i < 5; ++i) {
    EXPECT_FLOAT_EQ(info->costs(i).keep_rate(), rates[i]);
    EXPECT_EQ(info->costs(i).tokens_size(), 12);
    if (i > 0) {
      EXPECT_GT(info->costs(i).gmacs(), info->costs(i - 1).gmacs());
    }
  }
  EXPECT_THAT(info->costs(2).tokens(), ElementsAreArray(kTokensAt05));

  auto response = client_->ClassifyFile(TestData(kImages[0]), Options());
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_DOUBLE_EQ(response->cost().gmacs(), info->costs(2).gmacs());
  EXPECT_DOUBLE_EQ(response->cost().gmacs_full(), info->costs(4).gmacs());
}

// Raw pixels that are the decoded, resized and cropped image give the same
// answer as the encoded image; raw pixels of the wrong size are refused.
TEST_F(ClassifyTest, RawPixelsAreTheModelInput) {
  auto info = client_->GetModel(kTestModel);
  ASSERT_TRUE(info.ok()) << info.status();
  PreprocessOptions preprocess;
  preprocess.input_size = info->input_size();
  for (const char* image : kImages) {
    SCOPED_TRACE(image);
    auto rgb = DecodeImageFile(TestData(image), preprocess);
    ASSERT_TRUE(rgb.ok()) << rgb.status();
    auto input = ResizeAndCrop(*rgb, preprocess);
    ASSERT_TRUE(input.ok()) << input.status();
    v1::ClassifyRequest request;
    request.set_model(kTestModel);
    request.set_top_k(kTestClasses);
    request.mutable_raw()->set_width(input->width);
    request.mutable_raw()->set_height(input->height);
    request.mutable_raw()->set_rgb(std::string(input->pixels.begin(), input->pixels.end()));
    auto raw = client_->Classify(request);
    auto encoded = client_->ClassifyFile(TestData(image), Options(std::nullopt, kTestClasses));
    ASSERT_TRUE(raw.ok()) << raw.status();
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    ASSERT_EQ(raw->predictions_size(), kTestClasses);
    for (int i = 0; i < kTestClasses; ++i) {
      EXPECT_EQ(raw->predictions(i).class_id(), encoded->predictions(i).class_id());
      EXPECT_NEAR(raw->predictions(i).score(), encoded->predictions(i).score(), 1e-5);
    }
    EXPECT_THAT(raw->cost().tokens(), ElementsAreArray(kTokensAt05));
  }

  v1::ClassifyRequest bad;
  bad.set_model(kTestModel);
  const int size = info->input_size();
  bad.mutable_raw()->set_width(size + 1);
  bad.mutable_raw()->set_height(size);
  bad.mutable_raw()->set_rgb(std::string(3 * (size + 1) * size, '\x40'));
  auto wrong_size = client_->Classify(bad);
  EXPECT_EQ(wrong_size.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong_size.status().message(), HasSubstr(std::to_string(size) + " x "));
  bad.mutable_raw()->set_width(size);
  auto wrong_bytes = client_->Classify(bad);
  EXPECT_EQ(wrong_bytes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong_bytes.status().message(), HasSubstr("bytes"));
  bad.mutable_raw()->set_rgb(std::string(3 * size * size, '\x40'));
  EXPECT_TRUE(client_->Classify(bad).ok());
}

TEST_F(ClassifyTest, StreamAnswersEveryItemWithItsOwnStatus) {
  std::vector<v1::ClassifyStreamRequest> requests;
  auto add = [&requests](const std::string& id, const std::string& model, std::string image,
                         std::optional<float> keep_rate) {
    v1::ClassifyStreamRequest r;
    r.set_request_id(id);
    r.mutable_request()->set_model(model);
    r.mutable_request()->set_image(std::move(image));
    if (keep_rate) r.mutable_request()->set_keep_rate(*keep_rate);
    requests.push_back(r);
  };
  for (int i = 0; i < 12; ++i) {
    add("good-" + std::to_string(i), kTestModel, ReadBytes(TestData(kImages[i % 3])),
        i % 2 ? std::optional<float>(0.25f) : std::nullopt);
  }
  add("garbage", kTestModel, "this is not an image", std::nullopt);
  add("bad-keep-rate", kTestModel, ReadBytes(TestData(kImages[0])), 2.0f);
  add("no-such-model", "nope", ReadBytes(TestData(kImages[0])), std::nullopt);

  auto responses = client_->ClassifyBatchStream(requests);
  ASSERT_TRUE(responses.ok()) << responses.status();
  ASSERT_EQ(responses->size(), requests.size());
  std::map<std::string, v1::ClassifyStreamResponse> by_id;
  for (const auto& r : *responses) by_id[r.request_id()] = r;
  ASSERT_EQ(by_id.size(), requests.size());
  for (int i = 0; i < 12; ++i) {
    const auto& r = by_id["good-" + std::to_string(i)];
    EXPECT_EQ(r.status().code(), 0) << r.status().message();
    EXPECT_EQ(r.response().predictions_size(), 5);
    EXPECT_FLOAT_EQ(r.response().keep_rate(), i % 2 ? 0.25f : 0.5f);
  }
  EXPECT_EQ(by_id["garbage"].status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(by_id["garbage"].status().message(), HasSubstr("image"));
  EXPECT_EQ(by_id["bad-keep-rate"].status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(by_id["no-such-model"].status().code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(by_id["no-such-model"].status().message(), HasSubstr(kTestModel));
}

TEST(VersionTest, HighestVersionByDefaultOrTheOneAskedFor) {
  TestRepository repository("", {1, 3});
  repository.WriteModelConfig(kTestModel, R"({"version_policy": "all"})");
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path()));
  auto client = server.NewClient();
  ClassifyOptions options;
  options.model = kTestModel;
  auto latest = client->ClassifyFile(TestData(kImages[0]), options);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->version(), 3);
  options.version = 1;
  auto first = client->ClassifyFile(TestData(kImages[0]), options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->version(), 1);
  auto info = client->GetModel(kTestModel);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version(), 3);
  EXPECT_THAT(info->versions(), ElementsAre(1, 3));
}

}  // namespace
}  // namespace clca::testing
