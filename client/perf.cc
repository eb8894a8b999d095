#include "client/perf.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include <grpcpp/client_context.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "clca/v1/classifier.grpc.pb.h"

namespace clca::perf {
namespace {

using Clock = std::chrono::steady_clock;

// Sent later than this after its scheduled time, a request counts as delayed.
constexpr auto kDelayedAfter = std::chrono::milliseconds(1);
// The client kept up when at most this fraction of requests was delayed.
constexpr double kMaxDelayedRatio = 0.10;
// Bounds that keep a typo from starting a million threads or points.
constexpr int kMaxConcurrency = 4096;
constexpr size_t kMaxPoints = 1000;

std::vector<absl::string_view> SplitList(absl::string_view spec) {
  std::vector<absl::string_view> items = absl::StrSplit(spec, ',');
  for (absl::string_view& item : items) item = absl::StripAsciiWhitespace(item);
  return items;
}

absl::StatusOr<int> ParsePositiveInt(absl::string_view text, absl::string_view what) {
  int value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a positive integer, got \"", text, "\""));
  }
  return value;
}

absl::StatusOr<double> ParsePositiveNumber(absl::string_view text, absl::string_view what) {
  double value = 0;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value) || value <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a positive number, got \"", text, "\""));
  }
  return value;
}

absl::StatusOr<std::vector<absl::string_view>> SplitRange(absl::string_view spec) {
  std::vector<absl::string_view> parts = absl::StrSplit(spec, ':');
  if (parts.size() < 2 || parts.size() > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected start:end or start:end:step, got \"", spec, "\""));
  }
  for (absl::string_view& part : parts) part = absl::StripAsciiWhitespace(part);
  return parts;
}

std::string KeepRateLabel(const std::optional<float>& keep_rate) {
  return keep_rate ? absl::StrFormat("%g", *keep_rate) : "default";
}

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string CsvField(absl::string_view text) {
  if (text.find_first_of(",\"\n") == absl::string_view::npos) return std::string(text);
  return absl::StrCat("\"", absl::StrReplaceAll(text, {{"\"", "\"\""}}), "\"");
}

std::string Ms(double ms) { return absl::StrFormat("%.3f", ms); }

// A generator seeded from the run's seed, the point and the stream within it.
std::mt19937_64 MakeRng(uint64_t seed, uint64_t point, uint64_t stream) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(point), static_cast<uint32_t>(stream)};
  return std::mt19937_64(seq);
}

// ---------------------------------------------------------------------------
// Measurement.

// One finished request.
struct Sample {
  Clock::time_point done;
  double latency_ms = 0;
  int code = 0;
  int keep_rate = 0;  // index into the mix
  bool delayed = false;
  int batch_size = 0;
  int64_t queue_us = 0;
  int64_t preprocess_us = 0;
  int64_t compute_us = 0;
  int64_t total_us = 0;
};

struct Window {
  double duration_s = 0;
  std::vector<Sample> samples;
  double throughput = 0;
  double p50_ms = 0;
};

std::vector<double> SortedLatencies(const std::vector<const Sample*>& samples) {
  std::vector<double> latencies;
  latencies.reserve(samples.size());
  for (const Sample* s : samples) {
    if (s->code == 0) latencies.push_back(s->latency_ms);
  }
  std::sort(latencies.begin(), latencies.end());
  return latencies;
}

using Stream = grpc::ClientReaderWriter<v1::ClassifyStreamRequest, v1::ClassifyStreamResponse>;

// The prepared requests, per image and keep rate: for Classify, and wrapped
// for ClassifyStream (empty unless streaming).
struct Requests {
  std::vector<std::vector<v1::ClassifyRequest>> unary;
  std::vector<std::vector<v1::ClassifyStreamRequest>> streamed;
};

// State shared by the sending threads of one point.
class PointState {
 public:
  PointState(v1::Classifier::Stub* stub, const PerfOptions& options, const Requests& requests)
      : stub_(stub), options_(options), requests_(requests.unary),
        stream_requests_(requests.streamed) {}

  // Sends one request and records it; latency counts from `scheduled`.
  void Send(size_t image, int keep_rate, Clock::time_point scheduled, bool delayed) {
    grpc::ClientContext context;
    if (options_.deadline.count() > 0) {
      context.set_deadline(std::chrono::system_clock::now() + options_.deadline);
    }
    v1::ClassifyResponse response;
    const grpc::Status status =
        stub_->Classify(&context, requests_[image % requests_.size()][keep_rate], &response);
    Record(scheduled, static_cast<int>(status.error_code()), keep_rate, delayed,
           status.ok() ? &response.cost() : nullptr);
  }

  // Streaming: sends one request on `stream` and records its response;
  // latency counts from `scheduled`. False if the stream broke; the caller
  // then records its final status.
  bool SendOnStream(Stream* stream, size_t image, int keep_rate, Clock::time_point scheduled) {
    v1::ClassifyStreamResponse response;
    if (!stream->Write(stream_requests_[image % stream_requests_.size()][keep_rate]) ||
        !stream->Read(&response)) {
      return false;
    }
    const int code = response.status().code();
    Record(scheduled, code, keep_rate, false, code == 0 ? &response.response().cost() : nullptr);
    return true;
  }

  void Record(Clock::time_point scheduled, int code, int keep_rate, bool delayed,
              const v1::Cost* cost) {
    Sample sample;
    sample.done = Clock::now();
    sample.latency_ms =
        std::chrono::duration<double, std::milli>(sample.done - scheduled).count();
    sample.code = code;
    sample.keep_rate = keep_rate;
    sample.delayed = delayed;
    if (cost) {
      sample.batch_size = cost->batch_size();
      sample.queue_us = cost->queue_us();
      sample.preprocess_us = cost->preprocess_us();
      sample.compute_us = cost->compute_us();
      sample.total_us = cost->total_us();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    samples_.push_back(sample);
  }

  v1::Classifier::Stub* stub() const { return stub_; }

  // Removes and returns the samples that finished before `end`.
  std::vector<Sample> TakeBefore(Clock::time_point end) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Sample> taken;
    std::vector<Sample> kept;
    for (Sample& s : samples_) (s.done < end ? taken : kept).push_back(s);
    samples_ = std::move(kept);
    return taken;
  }

  bool stopped() const { return stop_.load(); }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(stop_mutex_);
      stop_ = true;
    }
    stop_cv_.notify_all();
  }
  // Sleeps until `when`; false if stopped first.
  bool SleepUntil(Clock::time_point when) {
    std::unique_lock<std::mutex> lock(stop_mutex_);
    return !stop_cv_.wait_until(lock, when, [this] { return stop_.load(); });
  }

  size_t NextImage() { return next_image_.fetch_add(1); }

 private:
  v1::Classifier::Stub* stub_;
  const PerfOptions& options_;
  const std::vector<std::vector<v1::ClassifyRequest>>& requests_;
  const std::vector<std::vector<v1::ClassifyStreamRequest>>& stream_requests_;
  std::mutex mutex_;
  std::vector<Sample> samples_;
  std::atomic<size_t> next_image_{0};
  std::atomic<bool> stop_{false};
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
};

// The planned send times of request-rate mode, with the image and keep rate
// of each, drawn in order from one seeded generator.
class Schedule {
 public:
  struct Slot {
    Clock::time_point time;
    size_t index = 0;
    int keep_rate = 0;
  };

  Schedule(Clock::time_point start, double rate, Distribution distribution,
           const std::vector<double>& weights, std::mt19937_64 rng)
      : next_(start),
        rng_(rng),
        pick_(weights.begin(), weights.end()),
        interval_(1.0 / rate),
        poisson_(distribution == Distribution::kPoisson),
        exponential_(rate) {}

  Slot Next() {
    std::lock_guard<std::mutex> lock(mutex_);
    Slot slot{next_, index_++, pick_(rng_)};
    const double seconds = poisson_ ? exponential_(rng_) : interval_;
    next_ += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    return slot;
  }

 private:
  std::mutex mutex_;
  Clock::time_point next_;
  size_t index_ = 0;
  std::mt19937_64 rng_;
  std::discrete_distribution<int> pick_;
  double interval_;
  bool poisson_;
  std::exponential_distribution<double> exponential_;
};

bool Stable(const std::deque<Window>& windows, double stability) {
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

// Pools the samples of `windows` into the figures of a point.
void Summarize(const std::deque<Window>& windows, size_t mix_size, PerfPoint* point) {
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

  double queue = 0, preprocess = 0, compute = 0, total = 0, batch = 0;
  std::vector<double> added;
  int64_t delayed = 0;
  std::vector<std::vector<const Sample*>> by_keep_rate(mix_size);
  for (const Sample* s : all) {
    delayed += s->delayed ? 1 : 0;
    by_keep_rate[s->keep_rate].push_back(s);
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

// Runs one point of the sweep: `concurrency` > 0 keeps that many requests in
// flight, otherwise `rate` requests per second are sent on schedule.
PerfPoint MeasurePoint(v1::Classifier::Stub* stub, const PerfOptions& options,
                       const Requests& requests, const std::vector<KeepRateShare>& mix,
                       int concurrency, double rate, size_t point_index) {
  PerfPoint point;
  point.concurrency = concurrency;
  point.request_rate = rate;
  for (const KeepRateShare& share : mix) point.keep_rates.push_back({share.keep_rate});
  std::vector<double> weights;
  for (const KeepRateShare& share : mix) weights.push_back(share.weight);

  PointState state(stub, options, requests);
  std::vector<std::thread> threads;
  const Clock::time_point start = Clock::now();
  std::optional<Schedule> schedule;
  if (concurrency > 0 && options.streaming) {
    for (int t = 0; t < concurrency; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937_64 rng = MakeRng(options.seed, point_index, static_cast<uint64_t>(t) + 1);
        std::discrete_distribution<int> pick(weights.begin(), weights.end());
        // One stream per slot, opened again if it breaks.
        std::unique_ptr<grpc::ClientContext> context;
        std::unique_ptr<Stream> stream;
        while (!state.stopped()) {
          if (!stream) {
            context = std::make_unique<grpc::ClientContext>();
            stream = state.stub()->ClassifyStream(context.get());
          }
          const Clock::time_point sent = Clock::now();
          const int keep_rate = pick(rng);
          if (state.SendOnStream(stream.get(), state.NextImage(), keep_rate, sent)) continue;
          const grpc::Status status = stream->Finish();
          state.Record(sent, status.ok() ? static_cast<int>(grpc::StatusCode::UNKNOWN)
                                         : static_cast<int>(status.error_code()),
                       keep_rate, false, nullptr);
          stream.reset();
        }
        if (stream) {
          stream->WritesDone();
          stream->Finish();
        }
      });
    }
  } else if (concurrency > 0) {
    for (int t = 0; t < concurrency; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937_64 rng = MakeRng(options.seed, point_index, static_cast<uint64_t>(t) + 1);
        std::discrete_distribution<int> pick(weights.begin(), weights.end());
        while (!state.stopped()) state.Send(state.NextImage(), pick(rng), Clock::now(), false);
      });
    }
  } else {
    schedule.emplace(start, rate, options.distribution, weights,
                     MakeRng(options.seed, point_index, 0));
    for (int t = 0; t < options.max_threads; ++t) {
      threads.emplace_back([&] {
        while (!state.stopped()) {
          const Schedule::Slot slot = schedule->Next();
          if (!state.SleepUntil(slot.time)) return;
          const bool delayed = Clock::now() - slot.time > kDelayedAfter;
          state.Send(slot.index, slot.keep_rate, slot.time, delayed);
        }
      });
    }
  }

  Clock::time_point begin = start + options.warmup;
  std::this_thread::sleep_until(begin);
  state.TakeBefore(begin);
  std::deque<Window> recent;
  const size_t keep = static_cast<size_t>(std::max(1, options.stable_windows));
  while (point.windows < options.max_windows) {
    const Clock::time_point end = begin + options.window;
    std::this_thread::sleep_until(end);
    Window window;
    window.duration_s = std::chrono::duration<double>(end - begin).count();
    window.samples = state.TakeBefore(end);
    std::vector<const Sample*> pointers;
    for (const Sample& s : window.samples) pointers.push_back(&s);
    const std::vector<double> latencies = SortedLatencies(pointers);
    window.throughput = latencies.size() / window.duration_s;
    window.p50_ms = Percentile(latencies, 50);
    recent.push_back(std::move(window));
    if (recent.size() > keep) recent.pop_front();
    ++point.windows;
    if (recent.size() == keep && Stable(recent, options.stability)) {
      point.stable = true;
      break;
    }
    begin = end;
  }
  state.Stop();
  for (std::thread& thread : threads) thread.join();

  point.windows_reported = static_cast<int>(recent.size());
  Summarize(recent, mix.size(), &point);
  return point;
}

absl::Status Validate(const PerfOptions& options) {
  auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(parts...));
  };
  if (options.images.empty() && options.raw_images.empty()) return invalid("no image to send");
  if (!options.images.empty() && !options.raw_images.empty()) {
    return invalid("send encoded images or raw pixels, not both");
  }
  for (const RawPixels& raw : options.raw_images) {
    if (raw.width <= 0 || raw.height <= 0 ||
        raw.rgb.size() != 3 * static_cast<size_t>(raw.width) * raw.height) {
      return invalid("a raw image needs width * height * 3 bytes");
    }
  }
  if (!options.concurrency.empty() && !options.request_rates.empty()) {
    return invalid("give concurrency levels or request rates, not both");
  }
  if (options.streaming && !options.request_rates.empty()) {
    return invalid("streaming measures concurrency levels, not request rates");
  }
  for (int c : options.concurrency) {
    if (c < 1 || c > kMaxConcurrency) {
      return invalid("concurrency must be in [1, ", kMaxConcurrency, "], got ", c);
    }
  }
  for (double r : options.request_rates) {
    if (!std::isfinite(r) || r <= 0) return invalid("request rate must be positive, got ", r);
  }
  for (const KeepRateShare& share : options.keep_rates) {
    if (!std::isfinite(share.weight) || share.weight <= 0) {
      return invalid("keep-rate weights must be positive");
    }
  }
  if (options.window.count() <= 0) return invalid("the window must be positive");
  if (options.warmup.count() < 0) return invalid("the warm-up must not be negative");
  if (options.max_windows < 1) return invalid("max_windows must be at least 1");
  if (options.stable_windows < 1) return invalid("stable_windows must be at least 1");
  if (!(options.stability > 0)) return invalid("stability must be positive");
  if (options.max_threads < 1 || options.max_threads > kMaxConcurrency) {
    return invalid("max_threads must be in [1, ", kMaxConcurrency, "]");
  }
  if (options.top_k < 0) return invalid("top_k must not be negative");
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Rendering.

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

absl::StatusOr<std::vector<KeepRateShare>> ParseKeepRateMix(absl::string_view spec) {
  std::vector<KeepRateShare> mix;
  size_t weighted = 0;
  for (absl::string_view item : SplitList(spec)) {
    if (item.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("empty entry in \"", spec, "\""));
    }
    std::vector<absl::string_view> parts = absl::StrSplit(item, ':');
    if (parts.size() > 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected rate or rate:weight, got \"", item, "\""));
    }
    KeepRateShare share;
    const absl::string_view rate_text = absl::StripAsciiWhitespace(parts[0]);
    if (rate_text != "default") {
      double rate = 0;
      if (!absl::SimpleAtod(rate_text, &rate) || !(rate > 0 && rate <= 1)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "keep rate \"", rate_text, "\" is not a number in (0, 1] or \"default\""));
      }
      share.keep_rate = static_cast<float>(rate);
    }
    if (parts.size() == 2) {
      absl::StatusOr<double> weight =
          ParsePositiveNumber(absl::StripAsciiWhitespace(parts[1]),
                              absl::StrCat("the weight of keep rate ", rate_text));
      if (!weight.ok()) return weight.status();
      share.weight = *weight;
      ++weighted;
    }
    for (const KeepRateShare& other : mix) {
      if (other.keep_rate == share.keep_rate) {
        return absl::InvalidArgumentError(
            absl::StrCat("keep rate ", KeepRateLabel(share.keep_rate), " is given twice"));
      }
    }
    mix.push_back(share);
  }
  if (weighted != 0 && weighted != mix.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("give every keep rate a weight or none, got \"", spec, "\""));
  }
  return mix;
}

absl::StatusOr<std::vector<int>> ParseConcurrencyList(absl::string_view spec) {
  std::vector<int> levels;
  for (absl::string_view item : SplitList(spec)) {
    absl::StatusOr<int> level = ParsePositiveInt(item, "a concurrency level");
    if (!level.ok()) return level.status();
    if (*level > kMaxConcurrency) {
      return absl::InvalidArgumentError(
          absl::StrCat("concurrency ", *level, " exceeds ", kMaxConcurrency));
    }
    levels.push_back(*level);
  }
  return levels;
}

absl::StatusOr<std::vector<int>> ParseConcurrencyRange(absl::string_view spec) {
  absl::StatusOr<std::vector<absl::string_view>> parts = SplitRange(spec);
  if (!parts.ok()) return parts.status();
  absl::StatusOr<int> start = ParsePositiveInt((*parts)[0], "the start");
  if (!start.ok()) return start.status();
  absl::StatusOr<int> end = ParsePositiveInt((*parts)[1], "the end");
  if (!end.ok()) return end.status();
  absl::StatusOr<int> step = parts->size() == 3 ? ParsePositiveInt((*parts)[2], "the step") : 1;
  if (!step.ok()) return step.status();
  if (*end < *start) {
    return absl::InvalidArgumentError(
        absl::StrCat("the end ", *end, " is below the start ", *start));
  }
  if (*end > kMaxConcurrency) {
    return absl::InvalidArgumentError(
        absl::StrCat("concurrency ", *end, " exceeds ", kMaxConcurrency));
  }
  std::vector<int> levels;
  for (int c = *start; c <= *end; c += *step) levels.push_back(c);
  return levels;
}

absl::StatusOr<std::vector<double>> ParseRateList(absl::string_view spec) {
  std::vector<double> rates;
  for (absl::string_view item : SplitList(spec)) {
    absl::StatusOr<double> rate = ParsePositiveNumber(item, "a request rate");
    if (!rate.ok()) return rate.status();
    rates.push_back(*rate);
  }
  return rates;
}

absl::StatusOr<std::vector<double>> ParseRateRange(absl::string_view spec) {
  absl::StatusOr<std::vector<absl::string_view>> parts = SplitRange(spec);
  if (!parts.ok()) return parts.status();
  absl::StatusOr<double> start = ParsePositiveNumber((*parts)[0], "the start");
  if (!start.ok()) return start.status();
  absl::StatusOr<double> end = ParsePositiveNumber((*parts)[1], "the end");
  if (!end.ok()) return end.status();
  absl::StatusOr<double> step =
      parts->size() == 3 ? ParsePositiveNumber((*parts)[2], "the step") : 1.0;
  if (!step.ok()) return step.status();
  if (*end < *start) {
    return absl::InvalidArgumentError(
        absl::StrCat("the end ", *end, " is below the start ", *start));
  }
  if ((*end - *start) / *step >= kMaxPoints) {
    return absl::InvalidArgumentError(absl::StrCat("more than ", kMaxPoints, " rates"));
  }
  std::vector<double> rates;
  // The tolerance keeps the end when the steps do not add up exactly.
  for (size_t i = 0; *start + i * *step <= *end * (1 + 1e-9); ++i) {
    rates.push_back(*start + i * *step);
  }
  return rates;
}

std::vector<RawPixels> RandomRawImages(int side, int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<RawPixels> images(std::max(0, count));
  for (RawPixels& image : images) {
    image.width = image.height = side;
    image.rgb.resize(3 * static_cast<size_t>(side) * side);
    for (char& c : image.rgb) c = static_cast<char>(rng() & 0xff);
  }
  return images;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double n = static_cast<double>(sorted.size());
  // The small tolerance keeps p * n / 100 from rounding up past an exact rank.
  double rank = std::ceil(std::clamp(p, 0.0, 100.0) * n / 100.0 - 1e-9);
  rank = std::clamp(rank, 1.0, n);
  return sorted[static_cast<size_t>(rank) - 1];
}

absl::StatusOr<PerfReport> RunPerf(const std::shared_ptr<grpc::Channel>& channel,
                                   const PerfOptions& options,
                                   const std::function<void(const PerfPoint&)>& on_point) {
  if (absl::Status valid = Validate(options); !valid.ok()) return valid;
  std::vector<KeepRateShare> mix = options.keep_rates;
  if (mix.empty()) mix.push_back(KeepRateShare{});

  // One prepared request per image and keep rate.
  const size_t num_images = options.images.size() + options.raw_images.size();
  Requests prepared;
  std::vector<std::vector<v1::ClassifyRequest>>& requests = prepared.unary;
  requests.resize(num_images);
  for (size_t i = 0; i < num_images; ++i) {
    for (const KeepRateShare& share : mix) {
      v1::ClassifyRequest request;
      request.set_model(options.model);
      if (options.version) request.set_version(*options.version);
      if (share.keep_rate) request.set_keep_rate(*share.keep_rate);
      request.set_top_k(options.top_k);
      if (options.images.empty()) {
        const RawPixels& raw = options.raw_images[i];
        request.mutable_raw()->set_width(raw.width);
        request.mutable_raw()->set_height(raw.height);
        request.mutable_raw()->set_rgb(raw.rgb);
      } else {
        request.set_image(options.images[i]);
      }
      if (options.streaming) {
        v1::ClassifyStreamRequest wrapped;
        *wrapped.mutable_request() = request;
        if (prepared.streamed.size() <= i) prepared.streamed.resize(i + 1);
        prepared.streamed[i].push_back(std::move(wrapped));
      }
      requests[i].push_back(std::move(request));
    }
  }

  if (!channel->WaitForConnected(std::chrono::system_clock::now() + options.connect_timeout)) {
    return absl::UnavailableError(absl::StrCat("could not connect to the server within ",
                                               options.connect_timeout.count(), " ms"));
  }
  std::unique_ptr<v1::Classifier::Stub> stub = v1::Classifier::NewStub(channel);

  PerfReport report;
  report.request_rate_mode = !options.request_rates.empty();
  report.streaming = options.streaming;
  std::vector<int> levels = options.concurrency;
  if (!report.request_rate_mode && levels.empty()) levels.push_back(1);
  const size_t points = report.request_rate_mode ? options.request_rates.size() : levels.size();
  for (size_t i = 0; i < points; ++i) {
    PerfPoint point =
        report.request_rate_mode
            ? MeasurePoint(stub.get(), options, prepared, mix, 0, options.request_rates[i], i)
            : MeasurePoint(stub.get(), options, prepared, mix, levels[i], 0, i);
    if (on_point) on_point(point);
    report.results.push_back(std::move(point));
  }
  return report;
}

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
  std::string out = absl::StrCat("Server ", context.server, ", model ", context.model);
  if (context.version) absl::StrAppend(&out, " v", *context.version);
  absl::StrAppend(&out, ", keep rates ", MixText(context.keep_rates),
                  report.streaming ? ", over ClassifyStream" : "", "\n");
  absl::StrAppend(&out,
                  "Latency: client-side, ms. Queue, Compute: server-reported means per "
                  "request, ms. Added p50: median of latency minus compute, ms.\n\n");
  const bool rate_mode = report.request_rate_mode;
  const bool per_keep_rate = context.keep_rates.size() > 1;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {rate_mode ? "Rate" : "Concurrency",
                                     "Requests", "Infer/s", "Avg", "p50", "p90", "p95", "p99",
                                     "Queue", "Compute", "Added p50", "Errors", "Stable"};
  if (rate_mode) header.push_back("Sent late");
  rows.push_back(header);
  for (const PerfPoint& p : report.results) {
    std::vector<std::string> row = {
        LoadLabel(report, p),
        absl::StrCat(p.requests),
        absl::StrFormat("%.2f", p.throughput_per_s),
        absl::StrFormat("%.2f", p.latency.avg_ms),
        absl::StrFormat("%.2f", p.latency.p50_ms),
        absl::StrFormat("%.2f", p.latency.p90_ms),
        absl::StrFormat("%.2f", p.latency.p95_ms),
        absl::StrFormat("%.2f", p.latency.p99_ms),
        absl::StrFormat("%.2f", p.server_queue_ms),
        absl::StrFormat("%.2f", p.server_compute_ms),
        absl::StrFormat("%.2f", p.added_p50_ms),
        absl::StrCat(p.error_count),
        absl::StrCat(p.stable ? "yes" : "no", " (", p.windows, ")")};
    if (rate_mode) row.push_back(absl::StrFormat("%.1f%%", 100 * p.delayed_ratio));
    rows.push_back(row);
    if (!per_keep_rate) continue;
    for (const KeepRateResult& k : p.keep_rates) {
      std::vector<std::string> sub = {
          absl::StrCat("keep ", KeepRateLabel(k.keep_rate)),
          absl::StrCat(k.requests),
          absl::StrFormat("%.2f", p.duration_s > 0 ? k.requests / p.duration_s : 0.0),
          "",
          absl::StrFormat("%.2f", k.p50_ms),
          "",
          "",
          absl::StrFormat("%.2f", k.p99_ms),
          "",
          absl::StrFormat("%.2f", k.server_compute_ms),
          "",
          absl::StrCat(k.errors),
          ""};
      if (rate_mode) sub.push_back("");
      rows.push_back(sub);
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
  std::string out = absl::StrCat("{\"server\":", JsonString(context.server),
                                 ",\"model\":", JsonString(context.model));
  if (context.version) absl::StrAppend(&out, ",\"version\":", *context.version);
  absl::StrAppend(&out, ",\"mode\":", rate_mode ? "\"request_rate\"" : "\"concurrency\"",
                  ",\"streaming\":", report.streaming ? "true" : "false", ",\"keep_rates\":[");
  for (size_t i = 0; i < context.keep_rates.size(); ++i) {
    const KeepRateShare& share = context.keep_rates[i];
    absl::StrAppend(&out, i ? "," : "", "{\"keep_rate\":",
                    share.keep_rate ? absl::StrFormat("%g", *share.keep_rate) : "null",
                    ",\"weight\":", absl::StrFormat("%g", share.weight), "}");
  }
  absl::StrAppend(&out, "],\"results\":[");
  for (size_t i = 0; i < report.results.size(); ++i) {
    const PerfPoint& p = report.results[i];
    absl::StrAppend(&out, i ? "," : "", "{");
    if (rate_mode) {
      absl::StrAppendFormat(&out, "\"request_rate\":%g,", p.request_rate);
    } else {
      absl::StrAppend(&out, "\"concurrency\":", p.concurrency, ",");
    }
    absl::StrAppendFormat(&out, "\"requests\":%d,\"duration_s\":%.3f,\"throughput_per_s\":%.3f,",
                          p.requests, p.duration_s, p.throughput_per_s);
    absl::StrAppend(&out, "\"latency_ms\":{\"avg\":", Ms(p.latency.avg_ms),
                    ",\"p50\":", Ms(p.latency.p50_ms), ",\"p90\":", Ms(p.latency.p90_ms),
                    ",\"p95\":", Ms(p.latency.p95_ms), ",\"p99\":", Ms(p.latency.p99_ms),
                    ",\"max\":", Ms(p.latency.max_ms), "},");
    absl::StrAppend(&out, "\"error_count\":", p.error_count, ",\"errors\":{");
    size_t e = 0;
    for (const auto& [code, count] : p.errors) {
      absl::StrAppend(&out, e++ ? "," : "", JsonString(code), ":", count);
    }
    absl::StrAppend(&out, "},\"stable\":", p.stable ? "true" : "false",
                    ",\"windows\":", p.windows, ",\"windows_reported\":", p.windows_reported);
    absl::StrAppend(&out, ",\"server_queue_ms\":", Ms(p.server_queue_ms),
                    ",\"server_preprocess_ms\":", Ms(p.server_preprocess_ms),
                    ",\"server_compute_ms\":", Ms(p.server_compute_ms),
                    ",\"server_total_ms\":", Ms(p.server_total_ms),
                    ",\"mean_batch_size\":", absl::StrFormat("%.3f", p.mean_batch_size),
                    ",\"added_p50_ms\":", Ms(p.added_p50_ms));
    if (rate_mode) {
      absl::StrAppendFormat(&out, ",\"delayed_ratio\":%.4f,\"kept_up\":%s", p.delayed_ratio,
                            p.kept_up ? "true" : "false");
    }
    absl::StrAppend(&out, ",\"keep_rates\":[");
    for (size_t k = 0; k < p.keep_rates.size(); ++k) {
      const KeepRateResult& r = p.keep_rates[k];
      absl::StrAppend(&out, k ? "," : "", "{\"keep_rate\":",
                      r.keep_rate ? absl::StrFormat("%g", *r.keep_rate) : "null",
                      ",\"requests\":", r.requests, ",\"errors\":", r.errors,
                      ",\"p50_ms\":", Ms(r.p50_ms), ",\"p99_ms\":", Ms(r.p99_ms),
                      ",\"server_compute_ms\":", Ms(r.server_compute_ms), "}");
    }
    absl::StrAppend(&out, "]}");
  }
  absl::StrAppend(&out, "]}\n");
  return out;
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
    absl::StrAppend(&out, absl::StrJoin(row, ","), "\n");
  }
  return out;
}

}  // namespace clca::perf
