// Concurrent callers share forward passes, of one keep rate when the version
// asks so and of mixed keep rates by default: checked from the responses and
// from /metrics.
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/server/server_harness.h"

namespace clca::testing {
namespace {

TEST(BatchingTest, ConcurrentCallersAreBatchedOneKeepRateAtATime) {
  // Batches wait to be full (for up to 10 minutes): the 12 callers of each
  // keep rate make exactly two.
  TestRepository repository(
      R"({"max_batch_size": 6, "max_queue_delay_us": 600000000, "mix_keep_rates": false})");
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path()));
  auto client = server.NewClient();
  const std::string image = ReadBytes(TestData("preprocess/leaf_300x300.png"));
  const std::string metrics_before = Metrics(server);

  // 12 callers at keep rate 0.5 and 12 at 0.25, interleaved.
  constexpr int kCallers = 24;
  std::vector<absl::StatusOr<v1::ClassifyResponse>> responses(kCallers);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] {
      ClassifyOptions options;
      options.model = kTestModel;
      options.keep_rate = i % 2 ? 0.25f : 0.5f;
      responses[i] = client->Classify(image, options);
    });
  }
  for (std::thread& caller : callers) caller.join();

  struct Batch {
    std::set<float> keep_rates;
    int members = 0;
    int batch_size = 0;
  };
  std::map<uint64_t, Batch> batches;
  int largest = 0;
  for (const auto& response : responses) {
    ASSERT_TRUE(response.ok()) << response.status();
    Batch& batch = batches[response->cost().batch_id()];
    batch.keep_rates.insert(response->keep_rate());
    batch.members++;
    batch.batch_size = response->cost().batch_size();
    largest = std::max(largest, batch.batch_size);
  }
  EXPECT_EQ(largest, 6);
  EXPECT_EQ(batches.size(), 4u);
  for (const auto& [id, batch] : batches) {
    SCOPED_TRACE("batch " + std::to_string(id));
    EXPECT_EQ(batch.keep_rates.size(), 1u);
    // Every member of the batch is one of our callers.
    EXPECT_EQ(batch.members, batch.batch_size);
    EXPECT_EQ(batch.batch_size, 6);
  }

  // The metrics agree: one batch per batch id.
  const std::string metrics = Metrics(server);
  auto delta = [&](const std::string& name) {
    return MetricValue(metrics, name, {{"model", kTestModel}}) -
           MetricValue(metrics_before, name, {{"model", kTestModel}});
  };
  EXPECT_EQ(delta("clca_batches_total"), static_cast<double>(batches.size()));
  EXPECT_EQ(delta("clca_inferred_images_total"), kCallers);
  EXPECT_EQ(delta("clca_batch_size_sum"), kCallers);
  // One keep-rate observation per image: 12 at 0.5 and 12 at 0.25.
  EXPECT_EQ(delta("clca_keep_rate_count"), kCallers);
  EXPECT_NEAR(delta("clca_keep_rate_sum"), 12 * 0.5 + 12 * 0.25, 1e-6);
}

TEST(BatchingTest, MixedKeepRatesShareBatchesAndKeepTheirAnswers) {
  const std::vector<std::string> images = {ReadBytes(TestData("preprocess/leaf_300x300.png")),
                                           ReadBytes(TestData("preprocess/leaf_600x400.jpg"))};
  const std::vector<float> rates = {0.25f, 0.5f, 0.75f, 1.0f, 0.3f, 0.6f};
  auto options_for = [&](int i) {
    ClassifyOptions options;
    options.model = kTestModel;
    options.keep_rate = rates[i % rates.size()];
    options.top_k = 7;  // every class
    return options;
  };
  constexpr int kCallers = 24;
  // Each caller's answer alone: batches of one.
  std::vector<v1::ClassifyResponse> alone(kCallers);
  {
    TestRepository single(R"({"max_batch_size": 1})");
    ServerProcess server;
    ASSERT_TRUE(server.Start(single.path()));
    auto client = server.NewClient();
    for (int i = 0; i < kCallers; ++i) {
      auto response = client->Classify(images[i % 2], options_for(i));
      ASSERT_TRUE(response.ok()) << response.status();
      alone[i] = *response;
    }
  }
  // Batches wait to be full (for up to 10 minutes) and take whatever keep
  // rates wait: 24 callers make four batches of six.
  TestRepository repository(R"({"max_batch_size": 6, "max_queue_delay_us": 600000000})");
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path()));
  auto client = server.NewClient();
  std::vector<absl::StatusOr<v1::ClassifyResponse>> responses(kCallers);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back(
        [&, i] { responses[i] = client->Classify(images[i % 2], options_for(i)); });
  }
  for (std::thread& caller : callers) caller.join();
  std::map<uint64_t, std::set<float>> keep_rates_of_batch;
  for (int i = 0; i < kCallers; ++i) {
    SCOPED_TRACE("caller " + std::to_string(i));
    ASSERT_TRUE(responses[i].ok()) << responses[i].status();
    const v1::ClassifyResponse& r = *responses[i];
    EXPECT_EQ(r.cost().batch_size(), 6);
    EXPECT_FLOAT_EQ(r.keep_rate(), rates[i % rates.size()]);
    keep_rates_of_batch[r.cost().batch_id()].insert(r.keep_rate());
    // What the image gets alone at its keep rate.
    EXPECT_THAT(r.cost().tokens(), ::testing::ElementsAreArray(alone[i].cost().tokens()));
    EXPECT_DOUBLE_EQ(r.cost().gmacs(), alone[i].cost().gmacs());
    ASSERT_EQ(r.predictions_size(), alone[i].predictions_size());
    for (int k = 0; k < r.predictions_size(); ++k) {
      EXPECT_EQ(r.predictions(k).class_id(), alone[i].predictions(k).class_id());
      EXPECT_NEAR(r.predictions(k).score(), alone[i].predictions(k).score(), 1e-5);
    }
  }
  EXPECT_EQ(keep_rates_of_batch.size(), 4u);
  size_t mixed = 0;
  for (const auto& [id, batch_rates] : keep_rates_of_batch) mixed += batch_rates.size() > 1;
  EXPECT_GT(mixed, 0u);
}

TEST(BatchingTest, StreamItemsAreBatchedToo) {
  // The batch waits to be full: the stream's eight items make one.
  TestRepository repository(R"({"max_batch_size": 8, "max_queue_delay_us": 600000000})");
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path()));
  auto client = server.NewClient();
  std::vector<v1::ClassifyStreamRequest> requests(8);
  for (int i = 0; i < 8; ++i) {
    requests[i].set_request_id(std::to_string(i));
    requests[i].mutable_request()->set_model(kTestModel);
    requests[i].mutable_request()->set_image(
        ReadBytes(TestData("preprocess/leaf_small_120x90.jpg")));
  }
  auto responses = client->ClassifyBatchStream(requests);
  ASSERT_TRUE(responses.ok()) << responses.status();
  ASSERT_EQ(responses->size(), 8u);
  for (const auto& r : *responses) {
    ASSERT_EQ(r.status().code(), 0) << r.status().message();
    EXPECT_EQ(r.response().cost().batch_size(), 8);
  }
}

}  // namespace
}  // namespace clca::testing
