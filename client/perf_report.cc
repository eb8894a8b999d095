#include "client/perf_report.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace clca::perf {
namespace {

// Keeps the keys in the order written, so the output reads as before.
using Json = nlohmann::ordered_json;

std::string CsvField(absl::string_view text) {
  if (text.find_first_of(",\"\n") == absl::string_view::npos) return std::string(text);
  return absl::StrCat("\"", absl::StrReplaceAll(text, {{"\"", "\"\""}}), "\"");
}

std::string Ms(double ms) { return absl::StrFormat("%.3f", ms); }

// `value` rounded to `decimals` places, so that the JSON carries the
// precision the measurement has rather than binary noise.
double Rounded(double value, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

// A float keep rate or weight as the decimal it was given as (0.1, not
// 0.10000000149011612), or null when unset.
Json ShortNumber(double value) {
  double parsed = 0;
  const std::string text = absl::StrFormat("%g", value);
  if (!absl::SimpleAtod(text, &parsed)) return value;
  return parsed;
}
Json KeepRateJson(const std::optional<float>& keep_rate) {
  return keep_rate ? ShortNumber(*keep_rate) : Json(nullptr);
}

std::string LoadLabel(const PerfReport& report, const PerfPoint& point) {
  return report.request_rate_mode ? absl::StrFormat("%g/s", point.request_rate)
                                  : absl::StrCat(point.concurrency);
}

std::string ErrorsText(const std::map<std::string, int64_t>& errors, absl::string_view separator) {
  return absl::StrJoin(errors, separator, [](std::string* out, const auto& entry) {
    absl::StrAppend(out, entry.first, "=", entry.second);
  });
}

std::string MixText(const std::vector<KeepRateShare>& mix) {
  if (mix.empty()) return "default";
  double total = 0;
  for (const KeepRateShare& share : mix) total += share.weight;
  return absl::StrJoin(mix, ", ", [total](std::string* out, const KeepRateShare& share) {
    absl::StrAppendFormat(out, "%s (%.0f%%)", KeepRateLabel(share.keep_rate),
                          100 * share.weight / total);
  });
}

// Right-aligned columns separated by two spaces.
std::string AlignRows(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      absl::StrAppend(&line, c ? "  " : "", std::string(widths[c] - row[c].size(), ' '), row[c]);
    }
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(line), "\n");
  }
  return out;
}

}  // namespace

std::string DescribePoint(const PerfPoint& point) {
  std::string out = point.concurrency > 0
                        ? absl::StrCat("concurrency ", point.concurrency)
                        : absl::StrFormat("request rate %g/s", point.request_rate);
  absl::StrAppendFormat(&out, ": %d requests, %.2f/s, p50 %.2f ms, p99 %.2f ms, %d errors, %s",
                        point.requests, point.throughput_per_s, point.latency.p50_ms,
                        point.latency.p99_ms, point.error_count,
                        point.stable ? absl::StrCat("stable after ", point.windows, " windows")
                                     : absl::StrCat("not stable after ", point.windows,
                                                    " windows"));
  if (point.concurrency == 0 && !point.kept_up) {
    absl::StrAppendFormat(&out, "; the client sent %.0f%% of requests late",
                          100 * point.delayed_ratio);
  }
  return out;
}

std::string FormatPerfTable(const ReportContext& context, const PerfReport& report) {
  const bool rate_mode = report.request_rate_mode;
  const bool per_keep_rate = context.keep_rates.size() > 1;
  const bool deadline = report.deadline_ms > 0;
  std::string out = absl::StrCat("Server ", context.server, ", model ", context.model);
  if (context.version) absl::StrAppend(&out, " v", *context.version);
  if (context.min_keep_rate) {
    absl::StrAppendFormat(&out, ", keep rates chosen by the server from %g up",
                          *context.min_keep_rate);
  } else {
    absl::StrAppend(&out, ", keep rates ", MixText(context.keep_rates));
  }
  if (deadline) absl::StrAppendFormat(&out, ", deadline %g ms", report.deadline_ms);
  absl::StrAppend(&out, report.streaming ? ", over ClassifyStream" : "", "\n");
  absl::StrAppend(&out,
                  "Latency: client-side, ms. Queue, Compute: server-reported means per "
                  "request, ms. Added p50: median of latency minus compute, ms. Keep: mean "
                  "keep rate of the answers.\n");
  if (deadline) {
    absl::StrAppend(&out,
                    "Goodput: answers within the deadline per second. In time: their share of "
                    "all requests, failed ones included.\n");
  }
  absl::StrAppend(&out, "\n");

  // Each row as the header's columns; those of a deadline only with one.
  struct Row {
    std::string load, requests, infer, goodput, in_time, avg, p50, p90, p95, p99, queue,
        compute, added, keep, errors, stable, late;
  };
  std::vector<std::vector<std::string>> rows;
  auto add = [&](const Row& r) {
    std::vector<std::string> row = {r.load, r.requests, r.infer};
    if (deadline) row.insert(row.end(), {r.goodput, r.in_time});
    row.insert(row.end(), {r.avg, r.p50, r.p90, r.p95, r.p99, r.queue, r.compute, r.added,
                           r.keep, r.errors, r.stable});
    if (rate_mode) row.push_back(r.late);
    rows.push_back(std::move(row));
  };
  auto f2 = [](double value) { return absl::StrFormat("%.2f", value); };
  add({rate_mode ? "Rate" : "Concurrency", "Requests", "Infer/s", "Goodput/s", "In time", "Avg",
       "p50", "p90", "p95", "p99", "Queue", "Compute", "Added p50", "Keep", "Errors", "Stable",
       "Sent late"});
  for (const PerfPoint& p : report.results) {
    add({LoadLabel(report, p), absl::StrCat(p.requests), f2(p.throughput_per_s),
         f2(p.goodput_per_s), absl::StrFormat("%.1f%%", 100 * p.deadline_met_ratio),
         f2(p.latency.avg_ms), f2(p.latency.p50_ms), f2(p.latency.p90_ms), f2(p.latency.p95_ms),
         f2(p.latency.p99_ms), f2(p.server_queue_ms), f2(p.server_compute_ms),
         f2(p.added_p50_ms), f2(p.mean_keep_rate), absl::StrCat(p.error_count),
         absl::StrCat(p.stable ? "yes" : "no", " (", p.windows, ")"),
         absl::StrFormat("%.1f%%", 100 * p.delayed_ratio)});
    if (!per_keep_rate) continue;
    for (const KeepRateResult& k : p.keep_rates) {
      Row sub;
      sub.load = absl::StrCat("keep ", KeepRateLabel(k.keep_rate));
      sub.requests = absl::StrCat(k.requests);
      sub.infer = f2(p.duration_s > 0 ? k.requests / p.duration_s : 0.0);
      sub.p50 = f2(k.p50_ms);
      sub.p99 = f2(k.p99_ms);
      sub.compute = f2(k.server_compute_ms);
      sub.errors = absl::StrCat(k.errors);
      add(sub);
    }
  }
  absl::StrAppend(&out, AlignRows(rows));
  for (const PerfPoint& p : report.results) {
    if (!p.errors.empty()) {
      absl::StrAppend(&out, "errors at ", LoadLabel(report, p), ": ", ErrorsText(p.errors, ", "),
                      "\n");
    }
    if (rate_mode && !p.kept_up) {
      absl::StrAppendFormat(&out,
                            "warning: at %s the client could not keep up: %.0f%% of requests "
                            "went out more than 1 ms after their scheduled time; raise "
                            "--max-threads, or the server is saturated\n",
                            LoadLabel(report, p), 100 * p.delayed_ratio);
    }
  }
  return out;
}

std::string PerfJson(const ReportContext& context, const PerfReport& report) {
  const bool rate_mode = report.request_rate_mode;
  Json out = Json::object();
  out["server"] = context.server;
  out["model"] = context.model;
  if (context.version) out["version"] = *context.version;
  out["mode"] = rate_mode ? "request_rate" : "concurrency";
  out["streaming"] = report.streaming;
  if (report.deadline_ms > 0) out["deadline_ms"] = ShortNumber(report.deadline_ms);
  Json& mix = out["keep_rates"] = Json::array();
  for (const KeepRateShare& share : context.keep_rates) {
    mix.push_back({{"keep_rate", KeepRateJson(share.keep_rate)},
                   {"weight", ShortNumber(share.weight)}});
  }
  if (context.min_keep_rate) out["min_keep_rate"] = ShortNumber(*context.min_keep_rate);
  Json& results = out["results"] = Json::array();
  for (const PerfPoint& p : report.results) {
    Json point = Json::object();
    if (rate_mode) {
      point["request_rate"] = ShortNumber(p.request_rate);
    } else {
      point["concurrency"] = p.concurrency;
    }
    point["requests"] = p.requests;
    point["duration_s"] = Rounded(p.duration_s, 3);
    point["throughput_per_s"] = Rounded(p.throughput_per_s, 3);
    point["goodput_per_s"] = Rounded(p.goodput_per_s, 3);
    point["gmacs_per_s"] = Rounded(p.gmacs_per_s, 3);
    point["deadline_met_ratio"] = Rounded(p.deadline_met_ratio, 4);
    point["latency_ms"] = {{"avg", Rounded(p.latency.avg_ms, 3)},
                           {"p50", Rounded(p.latency.p50_ms, 3)},
                           {"p90", Rounded(p.latency.p90_ms, 3)},
                           {"p95", Rounded(p.latency.p95_ms, 3)},
                           {"p99", Rounded(p.latency.p99_ms, 3)},
                           {"max", Rounded(p.latency.max_ms, 3)}};
    point["error_count"] = p.error_count;
    Json& errors = point["errors"] = Json::object();
    for (const auto& [code, count] : p.errors) errors[code] = count;
    point["stable"] = p.stable;
    point["windows"] = p.windows;
    point["windows_reported"] = p.windows_reported;
    point["server_queue_ms"] = Rounded(p.server_queue_ms, 3);
    point["server_preprocess_ms"] = Rounded(p.server_preprocess_ms, 3);
    point["server_compute_ms"] = Rounded(p.server_compute_ms, 3);
    point["server_total_ms"] = Rounded(p.server_total_ms, 3);
    point["mean_batch_size"] = Rounded(p.mean_batch_size, 3);
    point["added_p50_ms"] = Rounded(p.added_p50_ms, 3);
    if (rate_mode) {
      point["delayed_ratio"] = Rounded(p.delayed_ratio, 4);
      point["kept_up"] = p.kept_up;
    }
    point["mean_keep_rate"] = Rounded(p.mean_keep_rate, 4);
    Json& keep_rates = point["keep_rates"] = Json::array();
    for (const KeepRateResult& r : p.keep_rates) {
      keep_rates.push_back({{"keep_rate", KeepRateJson(r.keep_rate)},
                            {"requests", r.requests},
                            {"errors", r.errors},
                            {"p50_ms", Rounded(r.p50_ms, 3)},
                            {"p99_ms", Rounded(r.p99_ms, 3)},
                            {"server_compute_ms", Rounded(r.server_compute_ms, 3)}});
    }
    results.push_back(std::move(point));
  }
  // Invalid UTF-8 in a name becomes U+FFFD rather than an exception.
  return out.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string PerfCsv(const ReportContext& context, const PerfReport& report) {
  const bool rate_mode = report.request_rate_mode;
  std::vector<std::string> header = {
      rate_mode ? "request_rate" : "concurrency", "requests", "duration_s", "throughput_per_s",
      "avg_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "server_queue_ms",
      "server_preprocess_ms", "server_compute_ms", "server_total_ms", "mean_batch_size",
      "added_p50_ms", "error_count", "errors", "stable", "windows"};
  if (rate_mode) {
    header.push_back("delayed_ratio");
    header.push_back("kept_up");
  }
  const bool per_keep_rate = context.keep_rates.size() > 1;
  if (per_keep_rate) {
    for (const KeepRateShare& share : context.keep_rates) {
      const std::string label = KeepRateLabel(share.keep_rate);
      for (const char* column : {"requests", "errors", "p50_ms", "p99_ms"}) {
        header.push_back(absl::StrCat(column, "@", label));
      }
    }
  }
  // Added last, so that the earlier columns keep their positions.
  for (const char* column :
       {"goodput_per_s", "deadline_met_ratio", "mean_keep_rate", "gmacs_per_s"}) {
    header.push_back(column);
  }
  std::string out = absl::StrCat(absl::StrJoin(header, ","), "\n");
  for (const PerfPoint& p : report.results) {
    std::vector<std::string> row = {
        rate_mode ? absl::StrFormat("%g", p.request_rate) : absl::StrCat(p.concurrency),
        absl::StrCat(p.requests),
        absl::StrFormat("%.3f", p.duration_s),
        absl::StrFormat("%.3f", p.throughput_per_s),
        Ms(p.latency.avg_ms),
        Ms(p.latency.p50_ms),
        Ms(p.latency.p90_ms),
        Ms(p.latency.p95_ms),
        Ms(p.latency.p99_ms),
        Ms(p.latency.max_ms),
        Ms(p.server_queue_ms),
        Ms(p.server_preprocess_ms),
        Ms(p.server_compute_ms),
        Ms(p.server_total_ms),
        absl::StrFormat("%.3f", p.mean_batch_size),
        Ms(p.added_p50_ms),
        absl::StrCat(p.error_count),
        CsvField(ErrorsText(p.errors, ";")),
        p.stable ? "true" : "false",
        absl::StrCat(p.windows)};
    if (rate_mode) {
      row.push_back(absl::StrFormat("%.4f", p.delayed_ratio));
      row.push_back(p.kept_up ? "true" : "false");
    }
    if (per_keep_rate) {
      for (const KeepRateResult& k : p.keep_rates) {
        row.push_back(absl::StrCat(k.requests));
        row.push_back(absl::StrCat(k.errors));
        row.push_back(Ms(k.p50_ms));
        row.push_back(Ms(k.p99_ms));
      }
    }
    row.push_back(absl::StrFormat("%.3f", p.goodput_per_s));
    row.push_back(absl::StrFormat("%.4f", p.deadline_met_ratio));
    row.push_back(absl::StrFormat("%.4f", p.mean_keep_rate));
    row.push_back(absl::StrFormat("%.3f", p.gmacs_per_s));
    absl::StrAppend(&out, absl::StrJoin(row, ","), "\n");
  }
  return out;
}

}  // namespace clca::perf
