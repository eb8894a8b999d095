#include "client/perf_stats.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/status.h"

namespace clca::perf {
namespace {

// Latencies of the successful samples, ascending.
std::vector<double> SortedLatencies(const std::vector<const Sample*>& samples) {
  std::vector<double> latencies;
  latencies.reserve(samples.size());
  for (const Sample* s : samples) {
    if (s->code == 0) latencies.push_back(s->latency_ms);
  }
  std::sort(latencies.begin(), latencies.end());
  return latencies;
}

}  // namespace

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double n = static_cast<double>(sorted.size());
  // The small tolerance keeps p * n / 100 from rounding up past an exact rank.
  double rank = std::ceil(std::clamp(p, 0.0, 100.0) * n / 100.0 - 1e-9);
  rank = std::clamp(rank, 1.0, n);
  return sorted[static_cast<size_t>(rank) - 1];
}

Window MakeWindow(double duration_s, std::vector<Sample> samples) {
  Window window;
  window.duration_s = duration_s;
  window.samples = std::move(samples);
  std::vector<const Sample*> pointers;
  pointers.reserve(window.samples.size());
  for (const Sample& s : window.samples) pointers.push_back(&s);
  const std::vector<double> latencies = SortedLatencies(pointers);
  window.throughput = duration_s > 0 ? latencies.size() / duration_s : 0;
  window.p50_ms = Percentile(latencies, 50);
  return window;
}

bool WindowsStable(const std::deque<Window>& windows, double stability) {
  if (windows.empty()) return false;
  auto within = [stability](double lo, double hi) {
    if (lo <= 0) return hi <= 0;
    return hi <= lo * (1 + stability);
  };
  double t_lo = windows.front().throughput, t_hi = t_lo;
  double l_lo = windows.front().p50_ms, l_hi = l_lo;
  for (const Window& w : windows) {
    t_lo = std::min(t_lo, w.throughput);
    t_hi = std::max(t_hi, w.throughput);
    l_lo = std::min(l_lo, w.p50_ms);
    l_hi = std::max(l_hi, w.p50_ms);
  }
  return within(t_lo, t_hi) && within(l_lo, l_hi);
}

void SummarizeWindows(const std::deque<Window>& windows, std::chrono::milliseconds deadline,
                      PerfPoint* point) {
  std::vector<const Sample*> all;
  double duration_s = 0;
  for (const Window& w : windows) {
    duration_s += w.duration_s;
    for (const Sample& s : w.samples) all.push_back(&s);
  }
  point->duration_s = duration_s;
  const std::vector<double> latencies = SortedLatencies(all);
  point->requests = static_cast<int64_t>(latencies.size());
  point->throughput_per_s = duration_s > 0 ? point->requests / duration_s : 0;
  if (!latencies.empty()) {
    double sum = 0;
    for (double l : latencies) sum += l;
    point->latency.avg_ms = sum / latencies.size();
    point->latency.p50_ms = Percentile(latencies, 50);
    point->latency.p90_ms = Percentile(latencies, 90);
    point->latency.p95_ms = Percentile(latencies, 95);
    point->latency.p99_ms = Percentile(latencies, 99);
    point->latency.max_ms = latencies.back();
  }

  const size_t mix_size = point->keep_rates.size();
  const double deadline_ms = static_cast<double>(deadline.count());
  int64_t within_deadline = 0;
  double queue = 0, preprocess = 0, compute = 0, total = 0, batch = 0, keep_rate = 0, gmacs = 0;
  std::vector<double> added;
  int64_t delayed = 0;
  std::vector<std::vector<const Sample*>> by_keep_rate(mix_size);
  for (const Sample* s : all) {
    delayed += s->delayed ? 1 : 0;
    if (s->keep_rate >= 0 && static_cast<size_t>(s->keep_rate) < mix_size) {
      by_keep_rate[s->keep_rate].push_back(s);
    }
    if (s->code != 0) {
      ++point->errors[absl::StatusCodeToString(static_cast<absl::StatusCode>(s->code))];
      ++point->error_count;
      continue;
    }
    queue += s->queue_us;
    preprocess += s->preprocess_us;
    compute += s->compute_us;
    total += s->total_us;
    batch += s->batch_size;
    keep_rate += s->response_keep_rate;
    gmacs += s->gmacs;
    if (deadline_ms <= 0 || s->latency_ms <= deadline_ms) ++within_deadline;
    added.push_back(s->latency_ms - s->compute_us / 1e3);
  }
  std::sort(added.begin(), added.end());
  point->added_p50_ms = added.empty() ? 0 : Percentile(added, 50);
  if (point->requests > 0) {
    const double n = static_cast<double>(point->requests);
    point->server_queue_ms = queue / n / 1e3;
    point->server_preprocess_ms = preprocess / n / 1e3;
    point->server_compute_ms = compute / n / 1e3;
    point->server_total_ms = total / n / 1e3;
    point->mean_batch_size = batch / n;
    point->mean_keep_rate = keep_rate / n;
  }
  point->goodput_per_s = duration_s > 0 ? within_deadline / duration_s : 0;
  point->gmacs_per_s = duration_s > 0 ? gmacs / duration_s : 0;
  if (deadline_ms <= 0) {
    point->deadline_met_ratio = 1;
  } else {
    point->deadline_met_ratio =
        all.empty() ? 0 : static_cast<double>(within_deadline) / all.size();
  }
  point->delayed_ratio = all.empty() ? 0 : static_cast<double>(delayed) / all.size();
  point->kept_up = point->delayed_ratio <= kMaxDelayedRatio;

  for (size_t k = 0; k < mix_size; ++k) {
    KeepRateResult& result = point->keep_rates[k];
    const std::vector<double> sorted = SortedLatencies(by_keep_rate[k]);
    result.requests = static_cast<int64_t>(sorted.size());
    result.errors = static_cast<int64_t>(by_keep_rate[k].size() - sorted.size());
    result.p50_ms = Percentile(sorted, 50);
    result.p99_ms = Percentile(sorted, 99);
    double compute_us = 0;
    for (const Sample* s : by_keep_rate[k]) compute_us += s->code == 0 ? s->compute_us : 0;
    result.server_compute_ms = sorted.empty() ? 0 : compute_us / sorted.size() / 1e3;
  }
}

}  // namespace clca::perf
