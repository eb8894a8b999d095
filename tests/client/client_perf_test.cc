// The pieces of `clca-client perf` that need no server: percentiles, the
// parsing of keep-rate mixes, concurrency levels and rates, and the JSON, CSV
// and table renderings of a report.
#include <algorithm>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "client/perf.h"
#include "client/perf_report.h"
#include "client/perf_stats.h"

namespace clca::perf {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

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

TEST(KeepRateMixTest, RateWeightPairs) {
  absl::StatusOr<std::vector<KeepRateShare>> mix = ParseKeepRateMix("0.1:0.5, 1.0:0.5");
  ASSERT_TRUE(mix.ok()) << mix.status();
  ASSERT_EQ(mix->size(), 2u);
  EXPECT_FLOAT_EQ(*(*mix)[0].keep_rate, 0.1f);
  EXPECT_DOUBLE_EQ((*mix)[0].weight, 0.5);
  EXPECT_FLOAT_EQ(*(*mix)[1].keep_rate, 1.0f);
  EXPECT_DOUBLE_EQ((*mix)[1].weight, 0.5);
}

TEST(KeepRateMixTest, BareListHasEqualWeightsAndDefaultIsTheModels) {
  absl::StatusOr<std::vector<KeepRateShare>> mix = ParseKeepRateMix("0.25,default,1");
  ASSERT_TRUE(mix.ok()) << mix.status();
  ASSERT_EQ(mix->size(), 3u);
  EXPECT_FLOAT_EQ(*(*mix)[0].keep_rate, 0.25f);
  EXPECT_FALSE((*mix)[1].keep_rate.has_value());
  EXPECT_FLOAT_EQ(*(*mix)[2].keep_rate, 1.0f);
  for (const KeepRateShare& share : *mix) EXPECT_EQ(share.weight, 1);
}

TEST(KeepRateMixTest, BadSpecsSayWhatIsWrong) {
  struct Case {
    const char* spec;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"2.0:1", "keep rate \"2.0\" is not a number in (0, 1]"},
           {"0:1", "is not a number in (0, 1]"},
           {"-0.5", "is not a number in (0, 1]"},
           {"abc", "keep rate \"abc\""},
           {"nan", "is not a number in (0, 1]"},
           {"0.1:0", "the weight of keep rate 0.1 must be a positive number"},
           {"0.1:-1", "must be a positive number"},
           {"0.1:x", "must be a positive number"},
           {"0.1:inf", "must be a positive number"},
           {"0.1:1:2", "expected rate or rate:weight"},
           {"", "empty entry"},
           {"0.1,,0.5", "empty entry"},
           {"0.1:1,0.5", "give every keep rate a weight or none"},
           {"0.5,0.50", "keep rate 0.5 is given twice"},
           {"default,default", "keep rate default is given twice"},
       }) {
    absl::StatusOr<std::vector<KeepRateShare>> mix = ParseKeepRateMix(c.spec);
    ASSERT_FALSE(mix.ok()) << c.spec;
    EXPECT_EQ(mix.status().code(), absl::StatusCode::kInvalidArgument) << c.spec;
    EXPECT_THAT(std::string(mix.status().message()), HasSubstr(c.message)) << c.spec;
  }
}

TEST(LoadSpecTest, ConcurrencyListsAndRanges) {
  EXPECT_THAT(*ParseConcurrencyList("1,2,4,8"), ElementsAre(1, 2, 4, 8));
  EXPECT_THAT(*ParseConcurrencyRange("1:8:2"), ElementsAre(1, 3, 5, 7));
  EXPECT_THAT(*ParseConcurrencyRange("2:4"), ElementsAre(2, 3, 4));
  EXPECT_THAT(*ParseConcurrencyRange("3:3"), ElementsAre(3));
  for (const char* bad : {"0", "1,,2", "x", "-1", "1.5", "100000"}) {
    EXPECT_FALSE(ParseConcurrencyList(bad).ok()) << bad;
  }
  for (const char* bad : {"8:1", "1", "1:2:0", "1:2:3:4", "a:b", "0:4"}) {
    EXPECT_FALSE(ParseConcurrencyRange(bad).ok()) << bad;
  }
  EXPECT_THAT(std::string(ParseConcurrencyRange("8:1").status().message()),
              HasSubstr("below the start"));
}

TEST(LoadSpecTest, RateListsAndRanges) {
  EXPECT_THAT(*ParseRateList("50, 100,2.5"), ElementsAre(50, 100, 2.5));
  EXPECT_THAT(*ParseRateRange("10:30:10"), ElementsAre(10, 20, 30));
  EXPECT_THAT(*ParseRateRange("0.1:0.3:0.1"), ElementsAre(0.1, 0.2, 0.30000000000000004));
  for (const char* bad : {"0", "-5", "x", "inf", ""}) {
    EXPECT_FALSE(ParseRateList(bad).ok()) << bad;
  }
  for (const char* bad : {"30:10:10", "1:2:0", "1:100000:1", "1"}) {
    EXPECT_FALSE(ParseRateRange(bad).ok()) << bad;
  }
}

PerfReport SampleReport(bool rate_mode) {
  PerfReport report;
  report.request_rate_mode = rate_mode;
  for (int i = 1; i <= 2; ++i) {
    PerfPoint p;
    if (rate_mode) {
      p.request_rate = 25.0 * i;
    } else {
      p.concurrency = i;
    }
    p.requests = 100 * i;
    p.duration_s = 2;
    p.throughput_per_s = 50.0 * i;
    p.latency = {10, 9, 12, 13, 20, 25};
    p.stable = i == 1;
    p.windows = 3 + i;
    p.windows_reported = 3;
    p.server_compute_ms = 6.5;
    p.added_p50_ms = 1.25;
    p.keep_rates = {{0.25f, 60 * i, 0, 8, 15, 5}, {1.0f, 40 * i, 0, 11, 22, 8}};
    if (i == 2) {
      p.errors = {{"RESOURCE_EXHAUSTED", 3}, {"DEADLINE_EXCEEDED", 1}};
      p.error_count = 4;
      p.delayed_ratio = 0.5;
      p.kept_up = false;
    }
    report.results.push_back(p);
  }
  return report;
}

ReportContext SampleContext() {
  return {"127.0.0.1:50051", "leaf\"net", std::nullopt, {{0.25f, 3}, {1.0f, 1}}};
}

TEST(PerfRenderTest, JsonHasOneResultPerPoint) {
  const nlohmann::json json =
      nlohmann::json::parse(PerfJson(SampleContext(), SampleReport(false)));
  EXPECT_EQ(json["server"], "127.0.0.1:50051");
  EXPECT_EQ(json["model"], "leaf\"net");
  EXPECT_EQ(json["mode"], "concurrency");
  EXPECT_FALSE(json.contains("version"));
  ASSERT_EQ(json["keep_rates"].size(), 2u);
  EXPECT_EQ(json["keep_rates"][0]["weight"], 3);
  ASSERT_EQ(json["results"].size(), 2u);
  const nlohmann::json& first = json["results"][0];
  EXPECT_EQ(first["concurrency"], 1);
  EXPECT_EQ(first["requests"], 100);
  EXPECT_DOUBLE_EQ(first["throughput_per_s"].get<double>(), 50);
  EXPECT_DOUBLE_EQ(first["latency_ms"]["p99"].get<double>(), 20);
  EXPECT_TRUE(first["errors"].empty());
  EXPECT_EQ(first["stable"], true);
  EXPECT_DOUBLE_EQ(first["server_compute_ms"].get<double>(), 6.5);
  EXPECT_DOUBLE_EQ(first["added_p50_ms"].get<double>(), 1.25);
  EXPECT_FALSE(first.contains("kept_up"));
  ASSERT_EQ(first["keep_rates"].size(), 2u);
  EXPECT_DOUBLE_EQ(first["keep_rates"][0]["keep_rate"].get<double>(), 0.25);
  EXPECT_EQ(first["keep_rates"][1]["requests"], 40);
  const nlohmann::json& second = json["results"][1];
  EXPECT_EQ(second["errors"]["RESOURCE_EXHAUSTED"], 3);
  EXPECT_EQ(second["error_count"], 4);
  EXPECT_EQ(second["stable"], false);

  const nlohmann::json rates = nlohmann::json::parse(PerfJson(SampleContext(), SampleReport(true)));
  EXPECT_EQ(rates["mode"], "request_rate");
  EXPECT_EQ(rates["results"][1]["request_rate"], 50);
  EXPECT_EQ(rates["results"][1]["kept_up"], false);
}

TEST(PerfRenderTest, CsvHasAHeaderAndOneRowPerPoint) {
  const std::string csv = PerfCsv(SampleContext(), SampleReport(false));
  std::vector<std::string> lines;
  std::string line;
  for (char c : csv) {
    if (c == '\n') {
      lines.push_back(line);
      line.clear();
    } else {
      line += c;
    }
  }
  ASSERT_EQ(lines.size(), 3u) << csv;
  EXPECT_THAT(lines[0], HasSubstr("concurrency,requests,duration_s,throughput_per_s,avg_ms,"
                                  "p50_ms,p90_ms,p95_ms,p99_ms"));
  EXPECT_THAT(lines[0], HasSubstr("requests@0.25,errors@0.25,p50_ms@0.25,p99_ms@0.25"));
  EXPECT_THAT(lines[0], HasSubstr("mean_batch_size,added_p50_ms,error_count"));
  EXPECT_THAT(lines[1], HasSubstr(",1.250,"));
  EXPECT_THAT(lines[1], HasSubstr("1,100,2.000,50.000,10.000,9.000"));
  EXPECT_THAT(lines[2], HasSubstr("DEADLINE_EXCEEDED=1;RESOURCE_EXHAUSTED=3"));
  // Every row has as many fields as the header.
  auto fields = [](const std::string& row) { return std::count(row.begin(), row.end(), ','); };
  EXPECT_EQ(fields(lines[1]), fields(lines[0]));
  EXPECT_EQ(fields(lines[2]), fields(lines[0]));
}

TEST(PerfRenderTest, TableHasAlignedColumnsRowsPerKeepRateAndErrors) {
  const std::string table = FormatPerfTable(SampleContext(), SampleReport(true));
  EXPECT_THAT(table, HasSubstr("keep rates 0.25 (75%), 1 (25%)"));
  EXPECT_THAT(table, HasSubstr("Rate  Requests  Infer/s"));
  EXPECT_THAT(table, HasSubstr("keep 0.25"));
  EXPECT_THAT(table, HasSubstr("errors at 50/s: DEADLINE_EXCEEDED=1, RESOURCE_EXHAUSTED=3"));
  EXPECT_THAT(table, HasSubstr("warning: at 50/s the client could not keep up: 50% of"));
}

}  // namespace
}  // namespace clca::perf
