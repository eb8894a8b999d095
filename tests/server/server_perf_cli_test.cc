// `clca-client perf` against a real server: a concurrency sweep and a
// request-rate run in JSON, a keep-rate mix in the table, errors counted by
// status code with exit code 2, and bad flags refused with exit code 1. No
// assertion depends on how fast the machine is.
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/server/server_harness.h"

namespace clca::testing {
namespace {

using ::testing::HasSubstr;

std::string Image() { return " --image " + TestData("preprocess/leaf_small_120x90.jpg"); }

// Short windows keep each point under a second.
constexpr const char* kQuick = " --window-ms 300 --max-windows 3 --quiet";

class PerfCliTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start(repository_.path())); }
  std::string Server() const { return " --server " + server_.address(); }

  // Runs perf with `args` and parses the JSON it writes to a file.
  nlohmann::json RunJson(const std::string& args, ClientRun* run) {
    const std::string path = (out_dir_.path() / "perf.json").string();
    *run = RunClient("perf" + Server() + Image() + kQuick + " --json --out " + path + args);
    nlohmann::json json = nlohmann::json::parse(ReadBytes(path), nullptr, false);
    EXPECT_FALSE(json.is_discarded()) << run->output;
    return json;
  }

  TestRepository repository_;
  ServerProcess server_;
  TempDir out_dir_;
};

TEST_F(PerfCliTest, ConcurrencySweepReportsEveryPointWithoutErrors) {
  ClientRun run;
  const nlohmann::json json = RunJson(" --concurrency 1,2", &run);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(json["model"], kTestModel);  // the server's only model
  EXPECT_EQ(json["mode"], "concurrency");
  ASSERT_EQ(json["results"].size(), 2u) << json.dump();
  for (int i = 0; i < 2; ++i) {
    const nlohmann::json& point = json["results"][i];
    SCOPED_TRACE(point.dump());
    EXPECT_EQ(point["concurrency"], i + 1);
    EXPECT_GT(point["requests"].get<int>(), 0);
    EXPECT_GT(point["throughput_per_s"].get<double>(), 0);
    const nlohmann::json& latency = point["latency_ms"];
    EXPECT_GT(latency["p50"].get<double>(), 0);
    EXPECT_LE(latency["p50"].get<double>(), latency["p90"].get<double>());
    EXPECT_LE(latency["p90"].get<double>(), latency["p95"].get<double>());
    EXPECT_LE(latency["p95"].get<double>(), latency["p99"].get<double>());
    EXPECT_LE(latency["p99"].get<double>(), latency["max"].get<double>());
    EXPECT_TRUE(point["errors"].empty());
    EXPECT_EQ(point["error_count"], 0);
    EXPECT_GE(point["windows"].get<int>(), 1);
    EXPECT_LE(point["windows"].get<int>(), 3);
    EXPECT_TRUE(point["stable"].is_boolean());
    // The server's own figures come from the responses.
    EXPECT_GT(point["server_compute_ms"].get<double>(), 0);
    EXPECT_GE(point["mean_batch_size"].get<double>(), 1);
    // Each request's latency includes its batch's forward pass.
    EXPECT_GE(point["added_p50_ms"].get<double>(), 0);
    EXPECT_LE(point["added_p50_ms"].get<double>(), latency["p50"].get<double>());
    ASSERT_EQ(point["keep_rates"].size(), 1u);
    EXPECT_TRUE(point["keep_rates"][0]["keep_rate"].is_null());
    EXPECT_EQ(point["keep_rates"][0]["requests"], point["requests"]);
  }
}

TEST_F(PerfCliTest, RequestRateModeMeasuresFromTheSchedule) {
  ClientRun run;
  const nlohmann::json json = RunJson(
      " --model leafnet --version 1 --request-rate 20 --request-distribution poisson --seed 7",
      &run);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(json["mode"], "request_rate");
  EXPECT_EQ(json["version"], 1);
  ASSERT_EQ(json["results"].size(), 1u) << json.dump();
  const nlohmann::json& point = json["results"][0];
  EXPECT_EQ(point["request_rate"], 20);
  EXPECT_GT(point["requests"].get<int>(), 0) << point.dump();
  EXPECT_LE(point["latency_ms"]["p50"].get<double>(), point["latency_ms"]["p99"].get<double>());
  EXPECT_TRUE(point["kept_up"].is_boolean());
  EXPECT_GE(point["delayed_ratio"].get<double>(), 0);
}

TEST_F(PerfCliTest, KeepRateMixIsReportedPerKeepRate) {
  ClientRun run = RunClient("perf" + Server() + Image() + kQuick +
                            " --keep-rates 0.25:1,1.0:1 --concurrency 2");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("keep rates 0.25 (50%), 1 (50%)"));
  EXPECT_THAT(run.output, HasSubstr("Concurrency  Requests  Infer/s"));
  EXPECT_THAT(run.output, HasSubstr("keep 0.25"));
  EXPECT_THAT(run.output, HasSubstr("keep 1"));

  const std::string csv_path = (out_dir_.path() / "perf.csv").string();
  run = RunClient("perf" + Server() + Image() + kQuick +
                  " --keep-rates 0.25,1 --concurrency 1 --format csv --out " + csv_path);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string csv = ReadBytes(csv_path);
  EXPECT_EQ(csv.rfind("concurrency,requests,", 0), 0u) << csv;
  EXPECT_THAT(csv, HasSubstr("p50_ms@0.25"));
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 2) << csv;
}

TEST_F(PerfCliTest, RawInputSendsPixelsOfTheModelInputSize) {
  // No --image: random pixels of the model's input size, sent as raw input.
  const std::string path = (out_dir_.path() / "raw.json").string();
  ClientRun run = RunClient("perf" + Server() + kQuick + " --raw-input --concurrency 2 --json --out " +
                            path);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const nlohmann::json json = nlohmann::json::parse(ReadBytes(path), nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << run.output;
  ASSERT_EQ(json["results"].size(), 1u) << json.dump();
  EXPECT_GT(json["results"][0]["requests"].get<int>(), 0);
  EXPECT_EQ(json["results"][0]["error_count"], 0) << json.dump();
  EXPECT_GT(json["results"][0]["server_compute_ms"].get<double>(), 0);
}

// --streaming keeps each slot's request on its own ClassifyStream; a
// refused item is counted by its code and the stream goes on.
TEST_F(PerfCliTest, StreamingSendsOverClassifyStream) {
  ClientRun run;
  nlohmann::json json = RunJson(" --streaming --concurrency 1,3", &run);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(json["streaming"], true);
  ASSERT_EQ(json["results"].size(), 2u) << json.dump();
  for (const nlohmann::json& point : json["results"]) {
    SCOPED_TRACE(point.dump());
    EXPECT_GT(point["requests"].get<int>(), 0);
    EXPECT_EQ(point["error_count"], 0);
    EXPECT_GT(point["server_compute_ms"].get<double>(), 0);
    EXPECT_LE(point["latency_ms"]["p50"].get<double>(), point["latency_ms"]["p99"].get<double>());
  }
  json = RunJson(" --streaming --keep-rates 0.05:1,0.5:1 --concurrency 2", &run);
  EXPECT_EQ(run.exit_code, 2) << run.output;
  const nlohmann::json& point = json["results"][0];
  EXPECT_GT(point["errors"]["INVALID_ARGUMENT"].get<int>(), 0) << point.dump();
  EXPECT_GT(point["keep_rates"][1]["requests"].get<int>(), 0) << point.dump();
  EXPECT_EQ(point["keep_rates"][1]["errors"], 0) << point.dump();
  // The table says so.
  run = RunClient("perf" + Server() + Image() + kQuick + " --streaming");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("over ClassifyStream"));
}

TEST_F(PerfCliTest, RefusedRequestsAreCountedByCodeAndExitWithTwo) {
  ClientRun run;
  nlohmann::json json = RunJson(" --model nope --concurrency 1", &run);
  EXPECT_EQ(run.exit_code, 2) << run.output;
  ASSERT_EQ(json["results"].size(), 1u) << json.dump();
  EXPECT_EQ(json["results"][0]["requests"], 0);
  EXPECT_GT(json["results"][0]["errors"]["NOT_FOUND"].get<int>(), 0) << json.dump();
  EXPECT_EQ(json["results"][0]["errors"].size(), 1u) << json.dump();

  // 0.05 is below the model's minimum keep rate (0.1): only its share fails.
  json = RunJson(" --keep-rates 0.05:1,0.5:1 --concurrency 1", &run);
  EXPECT_EQ(run.exit_code, 2) << run.output;
  const nlohmann::json& point = json["results"][0];
  EXPECT_GT(point["errors"]["INVALID_ARGUMENT"].get<int>(), 0) << point.dump();
  EXPECT_GT(point["requests"].get<int>(), 0) << point.dump();
  ASSERT_EQ(point["keep_rates"].size(), 2u);
  EXPECT_EQ(point["keep_rates"][0]["requests"], 0);
  EXPECT_GT(point["keep_rates"][0]["errors"].get<int>(), 0);
  EXPECT_GT(point["keep_rates"][1]["requests"].get<int>(), 0);
  EXPECT_EQ(point["keep_rates"][1]["errors"], 0);

  // The table names the codes too.
  run = RunClient("perf" + Server() + Image() + kQuick + " --model nope");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_THAT(run.output, HasSubstr("errors at 1: NOT_FOUND="));
}

// Flags are checked before anything is sent; no server is needed.
TEST(PerfCliFlagsTest, BadFlagsExitWithOneAndSayWhy) {
  const std::string perf = "perf --server 127.0.0.1:1 --model leafnet" + Image();
  ClientRun run = RunClient(perf + " --keep-rates 2.0:1");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("INVALID_ARGUMENT: --keep-rates: keep rate \"2.0\" is not a "
                                    "number in (0, 1]"));
  run = RunClient(perf + " --keep-rates 0.5:1,0.25");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("give every keep rate a weight or none"));
  run = RunClient(perf + " --concurrency 0");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("--concurrency: a concurrency level must be a positive"));
  run = RunClient(perf + " --concurrency-range 8:1");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("--concurrency-range: the end 1 is below the start 8"));
  run = RunClient(perf + " --request-rate -3");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("--request-rate"));
  run = RunClient("perf --server 127.0.0.1:1 --model leafnet");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("give --image FILE or --raw-input"));
  run = RunClient(perf + " --raw-input");
  EXPECT_NE(run.exit_code, 0) << run.output;  // --image and --raw-input exclude each other
  run = RunClient("perf --server 127.0.0.1:1 --model leafnet --image /no/such/leaf.png");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("/no/such/leaf.png"));
  // Flags CLI11 refuses exit non-zero as well.
  run = RunClient(perf + " --concurrency 1 --request-rate 5");
  EXPECT_NE(run.exit_code, 0) << run.output;
  run = RunClient(perf + " --json --csv");
  EXPECT_NE(run.exit_code, 0) << run.output;
  run = RunClient(perf + " --request-distribution gamma");
  EXPECT_NE(run.exit_code, 0) << run.output;
  run = RunClient(perf + " --streaming --request-rate 5");
  EXPECT_NE(run.exit_code, 0) << run.output;
  // No server: the connection times out within --timeout.
  run = RunClient(perf + " --timeout 500");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("UNAVAILABLE: could not connect"));
}

}  // namespace
}  // namespace clca::testing
