// RunPerf and `clca-client perf` against an in-process fake server: the
// server-chosen keep rate (min_keep_rate), goodput against a deadline and
// the mean keep rate, end to end. The fake answers at once unless told to
// wait, so no assertion depends on how fast the machine is.
#include <chrono>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_split.h"
#include "client/client.h"
#include "client/perf.h"
#include "tests/client/fake_server.h"

namespace clca::perf {
namespace {

using ::clca::testing::CliRun;
using ::clca::testing::FakeServer;
using ::clca::testing::RunCli;
using ::clca::testing::ScratchDir;
using ::testing::Each;
using ::testing::FloatEq;
using ::testing::HasSubstr;

PerfOptions QuickPerf() {
  PerfOptions options;
  options.model = testing::kFakeModel;
  options.images = {"image bytes"};
  options.concurrency = {2};
  options.window = std::chrono::milliseconds(100);
  options.max_windows = 2;
  options.connect_timeout = std::chrono::seconds(10);
  return options;
}

class PerfRunTest : public ::testing::Test {
 protected:
  absl::StatusOr<PerfReport> Run(const PerfOptions& options) {
    return RunPerf(CreateClientChannel(server_.address()), options);
  }

  FakeServer server_;
};

TEST_F(PerfRunTest, MinKeepRateGoesOnEveryRequestAndKeepRateOnNone) {
  server_.state().set_adaptive_keep_rate(0.5f);
  for (bool streaming : {false, true}) {
    SCOPED_TRACE(streaming ? "streaming" : "unary");
    PerfOptions options = QuickPerf();
    options.streaming = streaming;
    options.min_keep_rate = 0.25f;
    const absl::StatusOr<PerfReport> report = Run(options);
    ASSERT_TRUE(report.ok()) << report.status();
    const PerfPoint& point = report->results[0];
    ASSERT_GT(point.requests, 0);
    EXPECT_EQ(point.error_count, 0);
    // The fake chose 0.5 for every request.
    EXPECT_DOUBLE_EQ(point.mean_keep_rate, 0.5);
  }
  EXPECT_EQ(server_.state().with_keep_rate(), 0);
  EXPECT_EQ(server_.state().min_keep_rates().size(),
            static_cast<size_t>(server_.state().classify_calls()));
  EXPECT_THAT(server_.state().min_keep_rates(), Each(FloatEq(0.25f)));
}

TEST_F(PerfRunTest, MeanKeepRateIsWhatTheResponsesSay) {
  PerfOptions options = QuickPerf();
  options.min_keep_rate = 0.8f;  // above the fake's choice: it answers 0.8
  absl::StatusOr<PerfReport> report = Run(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_NEAR(report->results[0].mean_keep_rate, 0.8, 1e-6);

  options = QuickPerf();  // no keep rate: the model's default
  report = Run(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_NEAR(report->results[0].mean_keep_rate, testing::kFakeDefaultKeepRate, 1e-6);
}

TEST_F(PerfRunTest, AnswersPastTheDeadlineAreNoGoodput) {
  server_.state().set_delay(std::chrono::milliseconds(50));
  PerfOptions options = QuickPerf();
  options.deadline = std::chrono::milliseconds(10);
  const absl::StatusOr<PerfReport> report = Run(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->deadline_ms, 10);
  const PerfPoint& point = report->results[0];
  EXPECT_EQ(point.requests, 0);
  EXPECT_GT(point.errors.at("DEADLINE_EXCEEDED"), 0);
  EXPECT_EQ(point.goodput_per_s, 0);
  EXPECT_EQ(point.deadline_met_ratio, 0);
  EXPECT_EQ(point.mean_keep_rate, 0);
}

TEST_F(PerfRunTest, WithinAGenerousDeadlineGoodputIsThroughput) {
  PerfOptions options = QuickPerf();
  options.deadline = std::chrono::seconds(30);
  const absl::StatusOr<PerfReport> report = Run(options);
  ASSERT_TRUE(report.ok()) << report.status();
  const PerfPoint& point = report->results[0];
  ASSERT_GT(point.requests, 0);
  EXPECT_DOUBLE_EQ(point.goodput_per_s, point.throughput_per_s);
  EXPECT_DOUBLE_EQ(point.deadline_met_ratio, 1);
}

class PerfCliTest : public ::testing::Test {
 protected:
  std::string Perf(const std::string& extra) const {
    return "perf --server " + server_.address() +
           " --model fake --raw-input --concurrency 2 --window-ms 100 --max-windows 2 --quiet " +
           extra;
  }

  FakeServer server_;
  ScratchDir dir_;
};

TEST_F(PerfCliTest, MinKeepRateAndDeadlineInTheJson) {
  server_.state().set_adaptive_keep_rate(0.5f);
  const CliRun run = RunCli(Perf("--min-keep-rate 0.6 --deadline-ms 30000 --json"));
  ASSERT_EQ(run.exit_code, 0) << run.both();
  const nlohmann::json json = nlohmann::json::parse(run.out);
  EXPECT_EQ(json["min_keep_rate"], 0.6);
  EXPECT_EQ(json["deadline_ms"], 30000);
  const nlohmann::json& point = json["results"][0];
  EXPECT_GT(point["requests"].get<int>(), 0) << point.dump();
  EXPECT_NEAR(point["mean_keep_rate"].get<double>(), 0.6, 1e-4);
  EXPECT_DOUBLE_EQ(point["goodput_per_s"].get<double>(), point["throughput_per_s"].get<double>());
  EXPECT_EQ(point["deadline_met_ratio"], 1.0);
  EXPECT_EQ(server_.state().with_keep_rate(), 0);
  EXPECT_THAT(server_.state().min_keep_rates(), Each(FloatEq(0.6f)));
}

TEST_F(PerfCliTest, NewFiguresInTheTableAndCsv) {
  CliRun run = RunCli(Perf("--deadline-ms 30000"));
  ASSERT_EQ(run.exit_code, 0) << run.both();
  EXPECT_THAT(run.out, HasSubstr(", deadline 30000 ms\n"));
  EXPECT_THAT(run.out, HasSubstr("Concurrency  Requests  Infer/s  Goodput/s  In time"));
  EXPECT_THAT(run.out, HasSubstr("  100.0%  "));
  EXPECT_THAT(run.out, HasSubstr("  0.70  "));  // the fake's default keep rate

  const std::string csv_path = dir_.Path("perf.csv");
  run = RunCli(Perf("--csv --out " + csv_path));
  ASSERT_EQ(run.exit_code, 0) << run.both();
  std::ifstream in(csv_path);
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  EXPECT_THAT(header, ::testing::EndsWith(
                          ",windows,goodput_per_s,deadline_met_ratio,mean_keep_rate,gmacs_per_s"));
  EXPECT_THAT(row, ::testing::HasSubstr(",1.0000,0.7000,"));
  // GMAC/s: the answers' GMACs per second, throughput_per_s (the 4th column)
  // times the fake's GMACs per image.
  const std::vector<std::string> fields = absl::StrSplit(row, ',');
  ASSERT_GE(fields.size(), 4u);
  const double throughput = std::stod(fields[3]);
  EXPECT_NEAR(std::stod(fields.back()), throughput * testing::kFakeGmacs,
              1e-3 + 1e-6 * throughput);
}

TEST_F(PerfCliTest, MinKeepRateFlagErrors) {
  CliRun run = RunCli(Perf("--min-keep-rate 0.3 --keep-rates 0.5,1"));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.err,
            "error: INVALID_ARGUMENT: --min-keep-rate: the server chooses each request's keep "
            "rate from the minimum; give --min-keep-rate or --keep-rates, not both\n");
  for (const char* bad : {"0", "1.5", "-0.2"}) {
    run = RunCli(Perf(std::string("--min-keep-rate=") + bad));
    EXPECT_EQ(run.exit_code, 1) << bad;
    EXPECT_THAT(run.err, HasSubstr("--min-keep-rate: a keep rate must be in (0, 1]")) << bad;
  }
  EXPECT_EQ(server_.state().classify_calls(), 0);
}

}  // namespace
}  // namespace clca::perf
