// Load generation against a clca-server, in the manner of Triton's
// perf_analyzer: a sweep over concurrency levels or fixed request rates, each
// point measured in windows until throughput and median latency are stable.
// This header holds the options, the results and RunPerf; perf_stats.h has
// the figures computed from the samples, perf_report.h the table, JSON and
// CSV renderings. Depends on gRPC and protobuf only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clca::perf {

// One keep rate of the mix and its share of the requests.
struct KeepRateShare {
  // Absent: the model's default (the request leaves keep_rate unset).
  std::optional<float> keep_rate;
  // Relative weight, > 0; the mix need not sum to 1.
  double weight = 1;
};

// "0.1:0.5,1.0:0.5" (rate:weight pairs) or "0.1,1.0" (equal weights). A rate
// is in (0, 1] or "default" for the model's own. Every entry has a weight or
// none does; rates must not repeat.
absl::StatusOr<std::vector<KeepRateShare>> ParseKeepRateMix(absl::string_view spec);
// How reports and messages name a keep rate: "0.25", or "default" when unset.
std::string KeepRateLabel(const std::optional<float>& keep_rate);
// "1,2,4,8": positive integers.
absl::StatusOr<std::vector<int>> ParseConcurrencyList(absl::string_view spec);
// "start:end[:step]", linear as perf_analyzer's --concurrency-range; step 1
// when left out.
absl::StatusOr<std::vector<int>> ParseConcurrencyRange(absl::string_view spec);
// "50,100": positive requests per second.
absl::StatusOr<std::vector<double>> ParseRateList(absl::string_view spec);
// "start:end:step" in requests per second, linear.
absl::StatusOr<std::vector<double>> ParseRateRange(absl::string_view spec);

enum class Distribution { kConstant, kPoisson };

// 8-bit RGB pixels, interleaved, row-major.
struct RawPixels {
  int width = 0;
  int height = 0;
  std::string rgb;
};

// `count` images of side x side pixels of uniform random bytes (seeded), as
// perf_analyzer's random input data: content does not change the cost.
std::vector<RawPixels> RandomRawImages(int side, int count, uint64_t seed);

struct PerfOptions {
  std::string model;
  // Absent: the highest loaded version.
  std::optional<int64_t> version;
  // 0: the server's default.
  int top_k = 0;
  // Encoded images, sent in rotation.
  std::vector<std::string> images;
  // Or (when `images` is empty) raw pixels of the model's input size, sent in
  // rotation as ClassifyRequest.raw: the server skips decoding.
  std::vector<RawPixels> raw_images;
  // Empty: every request uses the model's default keep rate.
  std::vector<KeepRateShare> keep_rates;
  // Lets the server choose each request's keep rate: every request carries
  // ClassifyRequest.min_keep_rate and no keep_rate, and the server picks the
  // highest keep rate from this one up whose predicted completion meets the
  // deadline (without a deadline, the model's maximum). In (0, 1]; not
  // with `keep_rates`. Absent: not sent.
  std::optional<float> min_keep_rate;

  // Exactly one of the two lists names the points of the sweep: the number
  // of requests kept in flight, or the requests per second sent on schedule.
  // Both empty: concurrency 1.
  std::vector<int> concurrency;
  std::vector<double> request_rates;
  // Intervals between scheduled sends in request-rate mode.
  Distribution distribution = Distribution::kConstant;
  // Threads sending in request-rate mode; each holds one request at a time.
  int max_threads = 16;
  // Concurrency levels over ClassifyStream instead of Classify calls: each
  // of the `concurrency` slots keeps one request in flight on its own stream
  // (perf_analyzer's --streaming). `deadline` does not apply.
  bool streaming = false;

  // Length of one measurement window.
  std::chrono::milliseconds window{2000};
  // Load run before the first window of each point, not measured.
  std::chrono::milliseconds warmup{0};
  // A point is stable when, over its last `stable_windows` windows, the
  // largest throughput and p50 are at most (1 + stability) times the
  // smallest.
  double stability = 0.10;
  int stable_windows = 3;
  // Windows per point at most; the point is reported unstable if they run out.
  int max_windows = 10;

  // Deadline of each request; zero means none. Goodput counts the answers
  // that come within it (in request-rate mode counted from the scheduled
  // send time). Streaming calls are not sent with it, but it still counts.
  std::chrono::milliseconds deadline{0};
  // Sent as "authorization: Bearer <token>" with every call; empty: none.
  // TLS, if any, is the channel's.
  std::string bearer_token;
  // How long to wait for the channel to connect before the sweep.
  std::chrono::milliseconds connect_timeout{10000};
  // Seeds the keep-rate draws and the Poisson intervals.
  uint64_t seed = 0;
};

struct LatencySummary {
  double avg_ms = 0;
  double p50_ms = 0;
  double p90_ms = 0;
  double p95_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

// One entry of the keep-rate mix within a point.
struct KeepRateResult {
  std::optional<float> keep_rate;
  int64_t requests = 0;
  int64_t errors = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double server_compute_ms = 0;
};

struct PerfPoint {
  // The load: concurrency (concurrency mode) or target requests per second.
  int concurrency = 0;
  double request_rate = 0;

  // Successful requests in the measured windows, and their rate. Each request
  // carries one image, so this is also images per second.
  int64_t requests = 0;
  double duration_s = 0;
  double throughput_per_s = 0;
  // Successful requests whose client-side latency was within the deadline,
  // per second; equal to throughput_per_s without a deadline.
  double goodput_per_s = 0;
  // Multiply-accumulates the server reported for those requests, in
  // billions per second: the work served, whatever the keep rates.
  double gmacs_per_s = 0;
  // With a deadline, those requests over all requests of the windows,
  // failed ones included (0 when there were none). Without one, 1: no
  // request can miss it (failures show in `errors`).
  double deadline_met_ratio = 1;
  // Client-side latency of successful requests; in request-rate mode counted
  // from the scheduled send time.
  LatencySummary latency;
  // Failed requests by gRPC status code name, e.g. "RESOURCE_EXHAUSTED".
  std::map<std::string, int64_t> errors;
  int64_t error_count = 0;

  bool stable = false;
  // Windows measured, and how many of the last ones the figures cover.
  int windows = 0;
  int windows_reported = 0;

  // Means over successful responses of what the server reports per request:
  // batch queue wait, decode and resize, the forward pass of the request's
  // batch, and arrival to response.
  double server_queue_ms = 0;
  double server_preprocess_ms = 0;
  double server_compute_ms = 0;
  double server_total_ms = 0;
  double mean_batch_size = 0;
  // Median over successful requests of the client-side latency minus the
  // forward pass of the request's batch: what serving adds to compute (queue,
  // preprocessing, gRPC and the network).
  double added_p50_ms = 0;

  // Request-rate mode: the fraction of requests sent more than 1 ms after
  // their scheduled time, and whether the client kept up (at most 10%).
  double delayed_ratio = 0;
  bool kept_up = true;

  // Mean over successful responses of the keep rate they report: the one
  // asked for, the model's default, or the server's choice with
  // min_keep_rate. 0 when none succeeded.
  double mean_keep_rate = 0;

  // One entry per keep rate of the mix (one unset entry without a mix).
  std::vector<KeepRateResult> keep_rates;
};

struct PerfReport {
  bool request_rate_mode = false;
  // Sent over ClassifyStream (PerfOptions::streaming).
  bool streaming = false;
  // PerfOptions::deadline in milliseconds; 0: none.
  double deadline_ms = 0;
  std::vector<PerfPoint> results;
};

// OK if RunPerf would accept `options`; otherwise INVALID_ARGUMENT saying what
// is wrong.
absl::Status ValidatePerfOptions(const PerfOptions& options);

// Runs the sweep over `channel`. Fails before sending anything if the
// options are inconsistent or the channel does not connect in time; failed
// requests are counted in the results, not returned as errors. `on_point`,
// if set, sees each point as it finishes.
absl::StatusOr<PerfReport> RunPerf(const std::shared_ptr<grpc::Channel>& channel,
                                   const PerfOptions& options,
                                   const std::function<void(const PerfPoint&)>& on_point = {});

}  // namespace clca::perf
