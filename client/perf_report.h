// Renderings of a perf report: an aligned table for people, JSON and CSV for
// scripts, and a one-line progress summary per point.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "client/perf.h"

namespace clca::perf {

// What the renderings say about the run besides the results.
struct ReportContext {
  std::string server;
  std::string model;
  std::optional<int64_t> version;
  std::vector<KeepRateShare> keep_rates;
  // PerfOptions::min_keep_rate: the server chose the keep rates.
  std::optional<float> min_keep_rate;
};

// Aligned columns, one row per point, plus rows per keep rate when there is a
// mix and the errors by code.
std::string FormatPerfTable(const ReportContext& context, const PerfReport& report);
// One JSON object on one line: {"server", "model", "version"?, "mode",
// "streaming", "deadline_ms"?, "keep_rates", "min_keep_rate"?,
// "results": [...]}; docs/DEPLOY.md lists the fields of each result.
std::string PerfJson(const ReportContext& context, const PerfReport& report);
// A header row and one row per point; columns added over time go last.
std::string PerfCsv(const ReportContext& context, const PerfReport& report);

// One line saying how a point went, for progress output.
std::string DescribePoint(const PerfPoint& point);

}  // namespace clca::perf
