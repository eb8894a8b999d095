// min_keep_rate and the adaptive default through a real server: the keep
// rate chosen is in the answer and in the metrics.
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/server/server_harness.h"

namespace clca::testing {
namespace {

using ::testing::HasSubstr;

v1::ClassifyRequest Request() {
  v1::ClassifyRequest request;
  request.set_model(kTestModel);
  request.set_image(ReadBytes(TestData("preprocess/leaf_300x300.png")));
  return request;
}

TEST(AdaptiveKeepRateServerTest, MinKeepRateWithoutADeadlineRunsAtTheHighestAllowed) {
  TestRepository repository(R"({"keep_rate": {"min": 0.1, "max": 0.9}})");
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path()));
  auto client = server.NewClient(std::chrono::milliseconds(0));
  v1::ClassifyRequest request = Request();
  request.set_min_keep_rate(0.25f);
  auto answer = client->Classify(request);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_FLOAT_EQ(answer->keep_rate(), 0.9f);
  const std::string metrics = Metrics(server);
  EXPECT_EQ(MetricValue(metrics, "clca_adaptive_keep_rate_count"), 1);
  EXPECT_EQ(MetricValue(metrics, "clca_adaptive_keep_rate_sum"), 0.9);
  // No deadline: not counted against one.
  EXPECT_EQ(MetricValue(metrics, "clca_deadline_requests_total"), 0);

  request.set_min_keep_rate(0.05f);
  auto refused = client->Classify(request);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("min_keep_rate"));
}

TEST(AdaptiveKeepRateServerTest, ServingJsonMakesItTheDefaultAndDeadlinesAreCounted) {
  TestRepository repository(R"({"keep_rate": {"adaptive_min": 0.3}})");
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path()));
  // A generous deadline: met at the highest keep rate.
  auto client = server.NewClient(std::chrono::seconds(30));
  auto answer = client->Classify(Request());
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_FLOAT_EQ(answer->keep_rate(), 1.0f);
  // An explicit keep rate is kept.
  v1::ClassifyRequest fixed = Request();
  fixed.set_keep_rate(0.5f);
  answer = client->Classify(fixed);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_FLOAT_EQ(answer->keep_rate(), 0.5f);
  const std::string metrics = Metrics(server);
  EXPECT_EQ(MetricValue(metrics, "clca_adaptive_keep_rate_count"), 1);
  EXPECT_EQ(MetricValue(metrics, "clca_deadline_requests_total", {{"outcome", "met"}}), 2);
  EXPECT_EQ(MetricValue(metrics, "clca_deadline_requests_total", {{"outcome", "refused"}}), 0);
}

TEST(AdaptiveKeepRateServerTest, AnAdaptiveMinimumOutsideThePolicyIsALoadError) {
  TestRepository repository(R"({"keep_rate": {"min": 0.5, "adaptive_min": 0.3}})");
  ServerProcess server;
  EXPECT_FALSE(server.Start(repository.path()));
  EXPECT_THAT(server.output(), HasSubstr("keep_rate.adaptive_min 0.3"));
}

}  // namespace
}  // namespace clca::testing
