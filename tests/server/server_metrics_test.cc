// /metrics scraped over plain HTTP: every family is exposed and the counters
// move as requests are answered.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "models/cpu/threads.h"
#include "tests/server/server_harness.h"

namespace clca::testing {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, FamiliesAreExposed) {
  TestRepository repository;
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path()));
  const std::string text = Metrics(server);
  for (const char* family :
       {"# TYPE clca_requests_total counter", "# TYPE clca_inferred_images_total counter",
        "# TYPE clca_batches_total counter", "# TYPE clca_gmacs_total counter",
        "# TYPE clca_request_latency_seconds histogram", "# TYPE clca_queue_seconds histogram",
        "# TYPE clca_preprocess_seconds histogram", "# TYPE clca_compute_seconds histogram",
        "# TYPE clca_batch_size histogram", "# TYPE clca_keep_rate histogram",
        "# TYPE clca_queue_depth gauge", "# TYPE clca_blas_threads gauge"}) {
    EXPECT_THAT(text, HasSubstr(family));
  }
  EXPECT_THAT(text, HasSubstr(R"(clca_requests_total{code="OK",model="leafnet",version="1"} 0)"));
  EXPECT_EQ(HttpGet(server.metrics_port(), "/nothing-here"), "");
}

TEST(MetricsTest, CountersMoveWithRequests) {
  TestRepository repository;
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path()));
  auto client = server.NewClient();
  ClassifyOptions options;
  options.model = kTestModel;
  double gmacs = 0;
  for (const char* image : {"preprocess/leaf_300x300.png", "preprocess/leaf_600x400.jpg",
                            "preprocess/leaf_small_120x90.jpg"}) {
    auto response = client->ClassifyFile(TestData(image), options);
    ASSERT_TRUE(response.ok()) << response.status();
    gmacs += response->cost().gmacs();
  }
  EXPECT_FALSE(client->Classify("not an image", options).ok());
  options.model = "missing";
  EXPECT_FALSE(client->Classify("not an image", options).ok());

  const std::string text = Metrics(server);
  const std::map<std::string, std::string> model = {{"model", kTestModel}, {"version", "1"}};
  auto with_code = [&model](const char* code) {
    auto labels = model;
    labels["code"] = code;
    return labels;
  };
  EXPECT_EQ(MetricValue(text, "clca_requests_total", with_code("OK")), 3);
  EXPECT_EQ(MetricValue(text, "clca_requests_total", with_code("INVALID_ARGUMENT")), 1);
  EXPECT_EQ(MetricValue(text, "clca_requests_total",
                        {{"model", "_unknown"}, {"code", "NOT_FOUND"}}),
            1);
  EXPECT_EQ(MetricValue(text, "clca_inferred_images_total", model), 3);
  const double batches = MetricValue(text, "clca_batches_total", model);
  EXPECT_GE(batches, 1);
  EXPECT_LE(batches, 3);
  EXPECT_NEAR(MetricValue(text, "clca_gmacs_total", model), gmacs, 1e-9);
  EXPECT_EQ(MetricValue(text, "clca_request_latency_seconds_count", model), 3);
  EXPECT_EQ(MetricValue(text, "clca_queue_seconds_count", model), 3);
  EXPECT_EQ(MetricValue(text, "clca_preprocess_seconds_count", model), 3);
  EXPECT_EQ(MetricValue(text, "clca_compute_seconds_count", model), batches);
  EXPECT_EQ(MetricValue(text, "clca_batch_size_count", model), batches);
  EXPECT_EQ(MetricValue(text, "clca_batch_size_sum", model), 3);
  EXPECT_EQ(MetricValue(text, "clca_keep_rate_count", model), 3);
  EXPECT_NEAR(MetricValue(text, "clca_keep_rate_sum", model), 0.5 * 3, 1e-9);
  EXPECT_EQ(MetricValue(text, "clca_queue_depth", model), 0);
  EXPECT_GT(MetricValue(text, "clca_request_latency_seconds_sum", model), 0);
}

// OpenBLAS keeps one thread count per process: the server sets it to the
// fewest intra-op threads of any worker unless --blas-threads says otherwise.
TEST(MetricsTest, BlasThreadsFollowTheWorkers) {
  if (BlasThreads() == 0) GTEST_SKIP() << "LibTorch's BLAS is not OpenBLAS";
  struct Case {
    std::string serving_json;
    std::vector<std::string> args;
    int workers, intra_op_threads, blas_threads;
  };
  // The pool's layout comes from serving.json when no flag sets it.
  const std::vector<std::string> from_serving_json = {"--intra-op-threads", "0"};
  const Case cases[] = {
      {R"({"workers": 2, "intra_op_threads": 1})", from_serving_json, 2, 1, 1},
      {R"({"workers": 1, "intra_op_threads": 2})", from_serving_json, 1, 2, 2},
      {R"({"workers": 1, "intra_op_threads": 2})",
       {"--intra-op-threads", "0", "--blas-threads", "3"}, 1, 2, 3},
      {R"({"workers": 1, "intra_op_threads": 2})", {"--intra-op-threads", "1"}, 1, 1, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.serving_json);
    TestRepository repository(c.serving_json);
    ServerProcess server;
    ASSERT_TRUE(server.Start(repository.path(), c.args));
    auto info = server.NewClient()->GetModel(kTestModel);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->batching().workers(), c.workers);
    EXPECT_EQ(info->batching().intra_op_threads(), c.intra_op_threads);
    EXPECT_EQ(MetricValue(Metrics(server), "clca_blas_threads"), c.blas_threads);
  }
}

}  // namespace
}  // namespace clca::testing
