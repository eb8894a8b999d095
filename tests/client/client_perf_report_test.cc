// The renderings of a perf report: JSON (parsed back and checked field by
// field, since scripts read it), CSV, the table and the progress line.
#include <algorithm>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "client/perf.h"
#include "client/perf_report.h"

namespace clca::perf {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// The keys of a JSON object in the order written.
std::vector<std::string> Keys(const nlohmann::ordered_json& object) {
  std::vector<std::string> keys;
  for (const auto& item : object.items()) keys.push_back(item.key());
  return keys;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  for (char c : text) {
    if (c == '\n') {
      lines.push_back(line);
      line.clear();
    } else {
      line += c;
    }
  }
  return lines;
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
    p.goodput_per_s = 45.0 * i;
    p.gmacs_per_s = 12.5 * i;
    p.deadline_met_ratio = 0.9;
    p.mean_keep_rate = 0.4;
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
  return {"127.0.0.1:50051", "leaf\"net", std::nullopt, {{0.25f, 3}, {1.0f, 1}}, std::nullopt};
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
  const std::vector<std::string> lines = Lines(csv);
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

TEST(PerfRenderTest, JsonFieldsAreTheDocumentedOnesInOrder) {
  ReportContext context = SampleContext();
  context.version = 2;
  for (bool rate_mode : {false, true}) {
    SCOPED_TRACE(rate_mode ? "request rate" : "concurrency");
    const nlohmann::ordered_json json =
        nlohmann::ordered_json::parse(PerfJson(context, SampleReport(rate_mode)));
    EXPECT_THAT(Keys(json), ElementsAre("server", "model", "version", "mode", "streaming",
                                        "keep_rates", "results"));
    EXPECT_THAT(Keys(json["keep_rates"][0]), ElementsAre("keep_rate", "weight"));
    std::vector<std::string> fields = {rate_mode ? "request_rate" : "concurrency",
                                       "requests",
                                       "duration_s",
                                       "throughput_per_s",
                                       "goodput_per_s",
                                       "gmacs_per_s",
                                       "deadline_met_ratio",
                                       "latency_ms",
                                       "error_count",
                                       "errors",
                                       "stable",
                                       "windows",
                                       "windows_reported",
                                       "server_queue_ms",
                                       "server_preprocess_ms",
                                       "server_compute_ms",
                                       "server_total_ms",
                                       "mean_batch_size",
                                       "added_p50_ms"};
    if (rate_mode) {
      fields.push_back("delayed_ratio");
      fields.push_back("kept_up");
    }
    fields.push_back("mean_keep_rate");
    fields.push_back("keep_rates");
    for (const auto& result : json["results"]) {
      EXPECT_THAT(Keys(result), ElementsAreArray(fields));
      EXPECT_THAT(Keys(result["latency_ms"]),
                  ElementsAre("avg", "p50", "p90", "p95", "p99", "max"));
      EXPECT_THAT(Keys(result["keep_rates"][0]), ElementsAre("keep_rate", "requests", "errors",
                                                             "p50_ms", "p99_ms",
                                                             "server_compute_ms"));
    }
  }
}

TEST(PerfRenderTest, JsonValuesAreRoundedAsTheMeasurementWarrants) {
  PerfReport report = SampleReport(true);
  report.streaming = true;
  PerfPoint& p = report.results[0];
  p.request_rate = 12.5;
  p.duration_s = 6.0004;
  p.throughput_per_s = 123.45678;
  p.latency.p50_ms = 1.23449;
  p.mean_batch_size = 1.0 / 3;
  p.delayed_ratio = 0.123456;
  ReportContext context = SampleContext();
  context.version = 7;
  context.keep_rates = {{0.1f, 0.5}, {std::nullopt, 2}};
  const std::string text = PerfJson(context, report);
  ASSERT_EQ(text.back(), '\n');
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << "one line";
  const nlohmann::json json = nlohmann::json::parse(text);
  EXPECT_EQ(json["version"], 7);
  EXPECT_EQ(json["streaming"], true);
  // A float keep rate as given, not as its binary value.
  EXPECT_THAT(text, HasSubstr("\"keep_rate\":0.1,"));
  EXPECT_TRUE(json["keep_rates"][1]["keep_rate"].is_null());
  EXPECT_DOUBLE_EQ(json["keep_rates"][1]["weight"].get<double>(), 2);
  const nlohmann::json& point = json["results"][0];
  EXPECT_DOUBLE_EQ(point["request_rate"].get<double>(), 12.5);
  EXPECT_DOUBLE_EQ(point["duration_s"].get<double>(), 6.0);
  EXPECT_DOUBLE_EQ(point["throughput_per_s"].get<double>(), 123.457);
  EXPECT_DOUBLE_EQ(point["latency_ms"]["p50"].get<double>(), 1.234);
  EXPECT_DOUBLE_EQ(point["mean_batch_size"].get<double>(), 0.333);
  EXPECT_DOUBLE_EQ(point["delayed_ratio"].get<double>(), 0.1235);
  EXPECT_EQ(point["windows_reported"], 3);
  // Scripts pick figures out with a plain pattern: no spaces after colons.
  EXPECT_THAT(text, HasSubstr("\"throughput_per_s\":123.457,"));
}

TEST(PerfRenderTest, JsonEscapesNamesAndSurvivesInvalidUtf8) {
  ReportContext context = SampleContext();
  context.server = "host\t\"quoted\"\\";
  context.model = std::string("bad\xff\xfe") + "name";
  const std::string text = PerfJson(context, SampleReport(false));
  const nlohmann::json json = nlohmann::json::parse(text);
  EXPECT_EQ(json["server"], "host\t\"quoted\"\\");
  EXPECT_EQ(json["model"], "bad\xEF\xBF\xBD\xEF\xBF\xBDname");  // U+FFFD twice
}

TEST(PerfRenderTest, CsvHeaderNamesEveryColumn) {
  ReportContext single = SampleContext();
  single.keep_rates.clear();
  EXPECT_EQ(Lines(PerfCsv(single, SampleReport(false)))[0],
            "concurrency,requests,duration_s,throughput_per_s,avg_ms,p50_ms,p90_ms,p95_ms,"
            "p99_ms,max_ms,server_queue_ms,server_preprocess_ms,server_compute_ms,"
            "server_total_ms,mean_batch_size,added_p50_ms,error_count,errors,stable,windows,"
            "goodput_per_s,deadline_met_ratio,mean_keep_rate,gmacs_per_s");
  const std::vector<std::string> rate = Lines(PerfCsv(SampleContext(), SampleReport(true)));
  EXPECT_EQ(rate[0],
            "request_rate,requests,duration_s,throughput_per_s,avg_ms,p50_ms,p90_ms,p95_ms,"
            "p99_ms,max_ms,server_queue_ms,server_preprocess_ms,server_compute_ms,"
            "server_total_ms,mean_batch_size,added_p50_ms,error_count,errors,stable,windows,"
            "delayed_ratio,kept_up,requests@0.25,errors@0.25,p50_ms@0.25,p99_ms@0.25,"
            "requests@1,errors@1,p50_ms@1,p99_ms@1,goodput_per_s,deadline_met_ratio,"
            "mean_keep_rate,gmacs_per_s");
  EXPECT_THAT(rate[2], ::testing::EndsWith(",false,5,0.5000,false,120,0,8.000,15.000,80,0,11.000,"
                                           "22.000,90.000,0.9000,0.4000,25.000"));
}

TEST(DescribePointTest, OneLinePerPoint) {
  const PerfReport report = SampleReport(true);
  EXPECT_EQ(DescribePoint(report.results[0]),
            "request rate 25/s: 100 requests, 50.00/s, p50 9.00 ms, p99 20.00 ms, 0 errors, "
            "stable after 4 windows");
  EXPECT_EQ(DescribePoint(report.results[1]),
            "request rate 50/s: 200 requests, 100.00/s, p50 9.00 ms, p99 20.00 ms, 4 errors, not "
            "stable after 5 windows; the client sent 50% of requests late");
  EXPECT_THAT(DescribePoint(SampleReport(false).results[0]), HasSubstr("concurrency 1: 100 "));
}

TEST(PerfRenderTest, DeadlineAndServerChosenKeepRates) {
  PerfReport report = SampleReport(false);
  report.deadline_ms = 50;
  ReportContext context = SampleContext();
  context.keep_rates.clear();
  context.min_keep_rate = 0.3f;
  const std::string text = PerfJson(context, report);
  const nlohmann::json json = nlohmann::json::parse(text);
  EXPECT_EQ(json["deadline_ms"], 50);
  EXPECT_THAT(text, HasSubstr("\"min_keep_rate\":0.3,"));
  const nlohmann::json& point = json["results"][1];
  EXPECT_DOUBLE_EQ(point["goodput_per_s"].get<double>(), 90);
  EXPECT_DOUBLE_EQ(point["deadline_met_ratio"].get<double>(), 0.9);
  EXPECT_DOUBLE_EQ(point["mean_keep_rate"].get<double>(), 0.4);
  EXPECT_DOUBLE_EQ(point["gmacs_per_s"].get<double>(), 25);
  // Neither is written when unset.
  const nlohmann::json plain = nlohmann::json::parse(PerfJson(SampleContext(), SampleReport(false)));
  EXPECT_FALSE(plain.contains("deadline_ms"));
  EXPECT_FALSE(plain.contains("min_keep_rate"));

  const std::string table = FormatPerfTable(context, report);
  EXPECT_THAT(table, HasSubstr("keep rates chosen by the server from 0.3 up, deadline 50 ms\n"));
  EXPECT_THAT(table, HasSubstr("Goodput: answers within the deadline per second."));
  EXPECT_THAT(table, HasSubstr("Concurrency  Requests  Infer/s  Goodput/s  In time"));
  EXPECT_THAT(table, HasSubstr("  100.00      90.00    90.0%"));
  EXPECT_THAT(table, HasSubstr("Added p50  Keep  Errors"));
  EXPECT_THAT(table, HasSubstr("1.25  0.40"));
}

TEST(PerfRenderTest, TableLeavesOutDeadlineColumnsWithoutADeadline) {
  const std::string table = FormatPerfTable(SampleContext(), SampleReport(false));
  EXPECT_THAT(table, HasSubstr("Concurrency  Requests  Infer/s    Avg"));
  EXPECT_THAT(table, ::testing::Not(HasSubstr("Goodput")));
  EXPECT_THAT(table, HasSubstr("  Keep  Errors"));
  // Every row of the aligned block has the header's width or less.
  const std::vector<std::string> lines = Lines(table);
  size_t header = 0;
  while (header < lines.size() && lines[header].rfind("Concurrency", 0) != 0) ++header;
  ASSERT_LT(header, lines.size());
  for (size_t i = header + 1; i < lines.size() && !lines[i].empty(); ++i) {
    if (lines[i].rfind("errors at", 0) == 0) break;
    EXPECT_LE(lines[i].size(), lines[header].size()) << lines[i];
  }
}

}  // namespace
}  // namespace clca::perf
