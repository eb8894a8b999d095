// The sending side of RunPerf: the threads that keep requests in flight or
// send them on schedule, and the measurement of each point in windows.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include <grpcpp/client_context.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "clca/v1/classifier.grpc.pb.h"
#include "client/perf.h"
#include "client/perf_stats.h"
#include "client/security.h"

namespace clca::perf {
namespace {

using Clock = std::chrono::steady_clock;

// Sent later than this after its scheduled time, a request counts as delayed.
constexpr auto kDelayedAfter = std::chrono::milliseconds(1);

// A generator seeded from the run's seed, the point and the stream within it.
std::mt19937_64 MakeRng(uint64_t seed, uint64_t point, uint64_t stream) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(point), static_cast<uint32_t>(stream)};
  return std::mt19937_64(seq);
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
    AddBearerToken(options_.bearer_token, &context);
    v1::ClassifyResponse response;
    const grpc::Status status =
        stub_->Classify(&context, requests_[image % requests_.size()][keep_rate], &response);
    Record(scheduled, static_cast<int>(status.error_code()), keep_rate, delayed,
           status.ok() ? &response : nullptr);
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
    Record(scheduled, code, keep_rate, false, code == 0 ? &response.response() : nullptr);
    return true;
  }

  // `response`: the answer of a successful request, null otherwise.
  void Record(Clock::time_point scheduled, int code, int keep_rate, bool delayed,
              const v1::ClassifyResponse* response) {
    Sample sample;
    sample.done = Clock::now();
    sample.latency_ms =
        std::chrono::duration<double, std::milli>(sample.done - scheduled).count();
    sample.code = code;
    sample.keep_rate = keep_rate;
    sample.delayed = delayed;
    if (response) {
      const v1::Cost& cost = response->cost();
      sample.batch_size = cost.batch_size();
      sample.queue_us = cost.queue_us();
      sample.preprocess_us = cost.preprocess_us();
      sample.compute_us = cost.compute_us();
      sample.total_us = cost.total_us();
      sample.response_keep_rate = response->keep_rate();
      sample.gmacs = cost.gmacs();
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
            AddBearerToken(options.bearer_token, context.get());
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
    recent.push_back(MakeWindow(std::chrono::duration<double>(end - begin).count(),
                                state.TakeBefore(end)));
    if (recent.size() > keep) recent.pop_front();
    ++point.windows;
    if (recent.size() == keep && WindowsStable(recent, options.stability)) {
      point.stable = true;
      break;
    }
    begin = end;
  }
  state.Stop();
  for (std::thread& thread : threads) thread.join();

  point.windows_reported = static_cast<int>(recent.size());
  SummarizeWindows(recent, options.deadline, &point);
  return point;
}

}  // namespace

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

absl::StatusOr<PerfReport> RunPerf(const std::shared_ptr<grpc::Channel>& channel,
                                   const PerfOptions& options,
                                   const std::function<void(const PerfPoint&)>& on_point) {
  if (absl::Status valid = ValidatePerfOptions(options); !valid.ok()) return valid;
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
      if (options.min_keep_rate) request.set_min_keep_rate(*options.min_keep_rate);
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
  report.deadline_ms = static_cast<double>(options.deadline.count());
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

}  // namespace clca::perf
