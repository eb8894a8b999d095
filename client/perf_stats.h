// The figures of `clca-client perf`: percentiles, the samples a point
// collects, whether its windows are stable, and the pooling of its last
// windows into a PerfPoint. Pure functions, usable on made-up samples.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <vector>

#include "client/perf.h"

namespace clca::perf {

// In request-rate mode the client kept up when at most this fraction of
// requests went out late.
inline constexpr double kMaxDelayedRatio = 0.10;

// Nearest-rank percentile of ascending `sorted` values: the smallest value
// that at least `p` percent of the values do not exceed. 0 when empty.
double Percentile(const std::vector<double>& sorted, double p);

// One finished request.
struct Sample {
  // When its answer (or error) arrived; places it in a window.
  std::chrono::steady_clock::time_point done;
  // Client-side latency; in request-rate mode counted from the scheduled
  // send time.
  double latency_ms = 0;
  // gRPC status code; 0 is OK.
  int code = 0;
  // Index of its keep rate in the mix (PerfPoint::keep_rates).
  int keep_rate = 0;
  // Request-rate mode: sent more than 1 ms after its scheduled time.
  bool delayed = false;
  // From the response's cost; zero for a failed request.
  int batch_size = 0;
  int64_t queue_us = 0;
  int64_t preprocess_us = 0;
  int64_t compute_us = 0;
  int64_t total_us = 0;
  // The keep rate the response reports; zero for a failed request.
  float response_keep_rate = 0;
  // Multiply-accumulates of the image at that keep rate, in billions.
  double gmacs = 0;
};

// One measurement window of a point.
struct Window {
  double duration_s = 0;
  std::vector<Sample> samples;
  // Successful requests per second and their median latency.
  double throughput = 0;
  double p50_ms = 0;
};

// The window of `samples` that lasted `duration_s`, with its throughput and
// p50.
Window MakeWindow(double duration_s, std::vector<Sample> samples);

// Whether, over `windows`, the largest throughput and the largest p50 are
// at most (1 + stability) times the smallest. Zeros are stable only with
// zeros. False when `windows` is empty.
bool WindowsStable(const std::deque<Window>& windows, double stability);

// Pools the samples of `windows` into the figures of `point`: counts,
// throughput, goodput and the share of requests answered within `deadline`
// (zero: none), latency, errors, the server's means, the mean keep rate,
// the delayed ratio, and one entry per keep rate. `point->keep_rates` must
// hold one entry per keep rate of the mix already (their keep_rate set);
// samples whose index falls outside it count in the totals only.
void SummarizeWindows(const std::deque<Window>& windows, std::chrono::milliseconds deadline,
                      PerfPoint* point);

}  // namespace clca::perf
