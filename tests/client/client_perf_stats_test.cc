// The figures of `clca-client perf` from made-up samples: percentiles,
// windows, their stability, and the pooling of windows into a point,
// goodput against a deadline and the mean keep rate included.
#include <chrono>
#include <deque>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "client/perf.h"
#include "client/perf_stats.h"

namespace clca::perf {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

constexpr std::chrono::milliseconds kNoDeadline{0};
constexpr int kOk = 0;
constexpr int kDeadlineExceeded = 4;
constexpr int kResourceExhausted = 8;

Sample Ok(double latency_ms, int keep_rate = 0) {
  Sample s;
  s.latency_ms = latency_ms;
  s.code = kOk;
  s.keep_rate = keep_rate;
  return s;
}

Sample Failed(int code, double latency_ms, int keep_rate = 0) {
  Sample s = Ok(latency_ms, keep_rate);
  s.code = code;
  return s;
}

// A successful sample with the server's cost filled in.
Sample Costed(double latency_ms, int keep_rate, int batch_size, int64_t queue_us,
              int64_t preprocess_us, int64_t compute_us, int64_t total_us) {
  Sample s = Ok(latency_ms, keep_rate);
  s.batch_size = batch_size;
  s.queue_us = queue_us;
  s.preprocess_us = preprocess_us;
  s.compute_us = compute_us;
  s.total_us = total_us;
  return s;
}

std::vector<double> OneTo(int n) {
  std::vector<double> values;
  for (int i = 1; i <= n; ++i) values.push_back(i);
  return values;
}

TEST(PercentileTest, NearestRank) {
  const std::vector<double> hundred = OneTo(100);
  EXPECT_EQ(Percentile(hundred, 50), 50);
  EXPECT_EQ(Percentile(hundred, 90), 90);
  EXPECT_EQ(Percentile(hundred, 95), 95);
  EXPECT_EQ(Percentile(hundred, 99), 99);
  EXPECT_EQ(Percentile(hundred, 100), 100);
  EXPECT_EQ(Percentile(hundred, 0), 1);
  const std::vector<double> ten = OneTo(10);
  EXPECT_EQ(Percentile(ten, 50), 5);
  EXPECT_EQ(Percentile(ten, 90), 9);
  EXPECT_EQ(Percentile(ten, 95), 10);
  EXPECT_EQ(Percentile(ten, 99), 10);
  const std::vector<double> twenty = OneTo(20);
  EXPECT_EQ(Percentile(twenty, 95), 19);
  EXPECT_EQ(Percentile(twenty, 50.1), 11);
}

TEST(PercentileTest, SmallInputs) {
  EXPECT_EQ(Percentile({}, 50), 0);
  EXPECT_EQ(Percentile({7.5}, 1), 7.5);
  EXPECT_EQ(Percentile({7.5}, 99), 7.5);
  EXPECT_EQ(Percentile({1, 2}, 50), 1);
  EXPECT_EQ(Percentile({1, 2}, 51), 2);
}


Window WindowOf(double throughput, double p50_ms) {
  Window w;
  w.throughput = throughput;
  w.p50_ms = p50_ms;
  return w;
}

// A point whose mix has `keep_rates` entries.
PerfPoint PointWithMix(const std::vector<std::optional<float>>& keep_rates) {
  PerfPoint point;
  for (const auto& keep_rate : keep_rates) point.keep_rates.push_back({keep_rate});
  return point;
}

TEST(MakeWindowTest, CountsOnlySuccessfulRequests) {
  const Window w = MakeWindow(
      2.0, {Ok(5), Ok(1), Failed(kResourceExhausted, 0.5), Ok(3), Failed(kDeadlineExceeded, 90)});
  EXPECT_EQ(w.samples.size(), 5u);
  EXPECT_DOUBLE_EQ(w.throughput, 1.5);  // 3 successes in 2 s
  EXPECT_DOUBLE_EQ(w.p50_ms, 3);        // of 1, 3, 5; the failures left out
}

TEST(MakeWindowTest, EmptyOrZeroLengthWindowsHaveZeros) {
  const Window empty = MakeWindow(1.0, {});
  EXPECT_EQ(empty.throughput, 0);
  EXPECT_EQ(empty.p50_ms, 0);
  const Window instant = MakeWindow(0.0, {Ok(1)});
  EXPECT_EQ(instant.throughput, 0);
  EXPECT_EQ(instant.p50_ms, 1);
}

TEST(WindowsStableTest, WithinTheToleranceOnBothFigures) {
  EXPECT_TRUE(WindowsStable({WindowOf(100, 10), WindowOf(109, 10.5), WindowOf(105, 10.9)}, 0.10));
  // Throughput spreads by 11%.
  EXPECT_FALSE(WindowsStable({WindowOf(100, 10), WindowOf(111, 10), WindowOf(105, 10)}, 0.10));
  // p50 spreads by 20%.
  EXPECT_FALSE(WindowsStable({WindowOf(100, 10), WindowOf(100, 12), WindowOf(100, 11)}, 0.10));
  // A looser tolerance accepts it.
  EXPECT_TRUE(WindowsStable({WindowOf(100, 10), WindowOf(100, 12), WindowOf(100, 11)}, 0.25));
  EXPECT_TRUE(WindowsStable({WindowOf(50, 3)}, 0.01));
}

TEST(WindowsStableTest, ZerosAreStableOnlyWithZeros) {
  // Every request failing: no throughput and no latency in any window.
  EXPECT_TRUE(WindowsStable({WindowOf(0, 0), WindowOf(0, 0)}, 0.10));
  EXPECT_FALSE(WindowsStable({WindowOf(0, 0), WindowOf(10, 5)}, 0.10));
  EXPECT_FALSE(WindowsStable({}, 0.10));
}

TEST(SummarizeWindowsTest, PoolsLatencyThroughputAndErrorsOverWindows) {
  std::vector<Sample> first, second;
  for (int i = 1; i <= 50; ++i) first.push_back(Ok(i));
  for (int i = 51; i <= 100; ++i) second.push_back(Ok(i));
  first.push_back(Failed(kResourceExhausted, 0.2));
  second.push_back(Failed(kResourceExhausted, 0.3));
  second.push_back(Failed(kDeadlineExceeded, 500));
  const std::deque<Window> windows = {MakeWindow(2.0, first), MakeWindow(3.0, second)};

  PerfPoint point = PointWithMix({std::nullopt});
  SummarizeWindows(windows, kNoDeadline, &point);
  EXPECT_EQ(point.requests, 100);
  EXPECT_DOUBLE_EQ(point.duration_s, 5);
  EXPECT_DOUBLE_EQ(point.throughput_per_s, 20);
  EXPECT_DOUBLE_EQ(point.latency.avg_ms, 50.5);
  EXPECT_DOUBLE_EQ(point.latency.p50_ms, 50);
  EXPECT_DOUBLE_EQ(point.latency.p90_ms, 90);
  EXPECT_DOUBLE_EQ(point.latency.p95_ms, 95);
  EXPECT_DOUBLE_EQ(point.latency.p99_ms, 99);
  EXPECT_DOUBLE_EQ(point.latency.max_ms, 100);  // the 500 ms failure left out
  EXPECT_EQ(point.error_count, 3);
  EXPECT_THAT(point.errors, ElementsAre(Pair("DEADLINE_EXCEEDED", 1), Pair("RESOURCE_EXHAUSTED", 2)));
  ASSERT_EQ(point.keep_rates.size(), 1u);
  EXPECT_EQ(point.keep_rates[0].requests, 100);
  EXPECT_EQ(point.keep_rates[0].errors, 3);
}

TEST(SummarizeWindowsTest, ServerFiguresAreMeansOverSuccessfulRequests) {
  // Microseconds in, milliseconds out; the failure's zeros do not count.
  const std::deque<Window> windows = {MakeWindow(
      1.0, {Costed(10, 0, 1, 1000, 2000, 4000, 8000), Costed(20, 0, 3, 3000, 0, 8000, 12000),
            Failed(kResourceExhausted, 1)})};
  PerfPoint point = PointWithMix({std::nullopt});
  SummarizeWindows(windows, kNoDeadline, &point);
  EXPECT_DOUBLE_EQ(point.server_queue_ms, 2);
  EXPECT_DOUBLE_EQ(point.server_preprocess_ms, 1);
  EXPECT_DOUBLE_EQ(point.server_compute_ms, 6);
  EXPECT_DOUBLE_EQ(point.server_total_ms, 10);
  EXPECT_DOUBLE_EQ(point.mean_batch_size, 2);
  // Latency minus compute: 10 - 4 = 6 and 20 - 8 = 12; the median of two is
  // the lower by nearest rank.
  EXPECT_DOUBLE_EQ(point.added_p50_ms, 6);
}

TEST(SummarizeWindowsTest, SplitsFiguresByKeepRate) {
  std::vector<Sample> samples;
  for (int i = 1; i <= 10; ++i) samples.push_back(Costed(i, 0, 1, 0, 0, 1000, 0));
  for (int i = 1; i <= 4; ++i) samples.push_back(Costed(10 * i, 1, 1, 0, 0, 5000, 0));
  samples.push_back(Failed(kResourceExhausted, 1, 1));
  samples.push_back(Failed(kResourceExhausted, 1, 1));
  PerfPoint point = PointWithMix({0.25f, 1.0f});
  SummarizeWindows({MakeWindow(1.0, samples)}, kNoDeadline, &point);

  ASSERT_EQ(point.keep_rates.size(), 2u);
  const KeepRateResult& low = point.keep_rates[0];
  EXPECT_FLOAT_EQ(*low.keep_rate, 0.25f);
  EXPECT_EQ(low.requests, 10);
  EXPECT_EQ(low.errors, 0);
  EXPECT_DOUBLE_EQ(low.p50_ms, 5);
  EXPECT_DOUBLE_EQ(low.p99_ms, 10);
  EXPECT_DOUBLE_EQ(low.server_compute_ms, 1);
  const KeepRateResult& full = point.keep_rates[1];
  EXPECT_FLOAT_EQ(*full.keep_rate, 1.0f);
  EXPECT_EQ(full.requests, 4);
  EXPECT_EQ(full.errors, 2);
  EXPECT_DOUBLE_EQ(full.p50_ms, 20);
  EXPECT_DOUBLE_EQ(full.p99_ms, 40);
  EXPECT_DOUBLE_EQ(full.server_compute_ms, 5);
  EXPECT_EQ(point.requests, 14);
  EXPECT_EQ(point.error_count, 2);
}

TEST(SummarizeWindowsTest, SamplesOutsideTheMixCountInTheTotalsOnly) {
  PerfPoint point = PointWithMix({std::nullopt});
  SummarizeWindows({MakeWindow(1.0, {Ok(1, 0), Ok(2, 5), Ok(3, -1)})}, kNoDeadline, &point);
  EXPECT_EQ(point.requests, 3);
  EXPECT_EQ(point.keep_rates[0].requests, 1);
}

TEST(SummarizeWindowsTest, DelayedRatioDecidesWhetherTheClientKeptUp) {
  std::vector<Sample> samples(10, Ok(1));
  samples[0].delayed = true;  // 10%: still kept up
  PerfPoint point = PointWithMix({std::nullopt});
  SummarizeWindows({MakeWindow(1.0, samples)}, kNoDeadline, &point);
  EXPECT_DOUBLE_EQ(point.delayed_ratio, 0.1);
  EXPECT_TRUE(point.kept_up);

  samples[1].delayed = true;  // 20%
  point = PointWithMix({std::nullopt});
  SummarizeWindows({MakeWindow(1.0, samples)}, kNoDeadline, &point);
  EXPECT_DOUBLE_EQ(point.delayed_ratio, 0.2);
  EXPECT_FALSE(point.kept_up);
}

TEST(SummarizeWindowsTest, NoSamplesGiveZeros) {
  PerfPoint point = PointWithMix({std::nullopt});
  SummarizeWindows({MakeWindow(1.0, {}), MakeWindow(1.0, {})}, kNoDeadline, &point);
  EXPECT_EQ(point.requests, 0);
  EXPECT_DOUBLE_EQ(point.duration_s, 2);
  EXPECT_EQ(point.throughput_per_s, 0);
  EXPECT_EQ(point.latency.p99_ms, 0);
  EXPECT_EQ(point.added_p50_ms, 0);
  EXPECT_EQ(point.delayed_ratio, 0);
  EXPECT_TRUE(point.kept_up);
  EXPECT_TRUE(point.errors.empty());
}

// Successful answers with the keep rate the server reports.
Sample Answered(double latency_ms, float keep_rate) {
  Sample s = Ok(latency_ms);
  s.response_keep_rate = keep_rate;
  return s;
}

TEST(SummarizeWindowsTest, GoodputCountsAnswersWithinTheDeadline) {
  // 4 answers, one exactly at the deadline, and a failure, over 2 s.
  const std::deque<Window> windows = {
      MakeWindow(1.0, {Ok(10), Ok(25), Failed(kDeadlineExceeded, 25)}),
      MakeWindow(1.0, {Ok(30), Ok(40)})};
  PerfPoint point = PointWithMix({std::nullopt});
  SummarizeWindows(windows, std::chrono::milliseconds(25), &point);
  EXPECT_DOUBLE_EQ(point.throughput_per_s, 2);
  EXPECT_DOUBLE_EQ(point.goodput_per_s, 1);            // 10 and 25 ms, over 2 s
  EXPECT_DOUBLE_EQ(point.deadline_met_ratio, 2.0 / 5);  // the failure counts as missed
}

TEST(SummarizeWindowsTest, WithoutADeadlineGoodputIsThroughputAndNothingIsMissed) {
  const std::deque<Window> windows = {
      MakeWindow(2.0, {Ok(10), Ok(2500), Failed(kResourceExhausted, 1)})};
  PerfPoint point = PointWithMix({std::nullopt});
  SummarizeWindows(windows, kNoDeadline, &point);
  EXPECT_DOUBLE_EQ(point.goodput_per_s, point.throughput_per_s);
  EXPECT_DOUBLE_EQ(point.goodput_per_s, 1);
  EXPECT_DOUBLE_EQ(point.deadline_met_ratio, 1);
}

TEST(SummarizeWindowsTest, NoRequestsMeetNoDeadline) {
  PerfPoint point = PointWithMix({std::nullopt});
  SummarizeWindows({MakeWindow(1.0, {})}, std::chrono::milliseconds(50), &point);
  EXPECT_EQ(point.goodput_per_s, 0);
  EXPECT_EQ(point.deadline_met_ratio, 0);
  // Every request failed.
  point = PointWithMix({std::nullopt});
  SummarizeWindows({MakeWindow(1.0, {Failed(kDeadlineExceeded, 50)})},
                   std::chrono::milliseconds(50), &point);
  EXPECT_EQ(point.goodput_per_s, 0);
  EXPECT_EQ(point.deadline_met_ratio, 0);
}

TEST(SummarizeWindowsTest, MeanKeepRateOfTheAnswers) {
  // The server chose 0.5, 0.75 and 1; the failure's keep rate does not count.
  const std::deque<Window> windows = {MakeWindow(
      1.0, {Answered(1, 0.5f), Answered(1, 0.75f), Answered(1, 1.0f), Failed(kDeadlineExceeded, 1)})};
  PerfPoint point = PointWithMix({std::nullopt});
  SummarizeWindows(windows, kNoDeadline, &point);
  EXPECT_DOUBLE_EQ(point.mean_keep_rate, 0.75);
  point = PointWithMix({std::nullopt});
  SummarizeWindows({MakeWindow(1.0, {Failed(kDeadlineExceeded, 1)})}, kNoDeadline, &point);
  EXPECT_EQ(point.mean_keep_rate, 0);
}

TEST(SummarizeWindowsTest, GmacsPerSecondOfTheAnswers) {
  // Two windows of 1 s and 3 s; the failure's cost does not count.
  Sample small = Ok(1), large = Ok(1), failed = Failed(kResourceExhausted, 1);
  small.gmacs = 1.5;
  large.gmacs = 4.5;
  failed.gmacs = 100;
  const std::deque<Window> windows = {MakeWindow(1.0, {small, failed}),
                                      MakeWindow(3.0, {large, large})};
  PerfPoint point = PointWithMix({std::nullopt});
  SummarizeWindows(windows, kNoDeadline, &point);
  EXPECT_DOUBLE_EQ(point.gmacs_per_s, (1.5 + 4.5 + 4.5) / 4.0);
}

}  // namespace
}  // namespace clca::perf
