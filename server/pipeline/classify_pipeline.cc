#include "server/pipeline/classify_pipeline.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <random>
#include <utility>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "models/cpu/threads.h"
#include "models/preprocess/preprocess.h"
#include "server/batching/compute_time_model.h"
#include "server/observability/log_fields.h"

namespace clca::server {
namespace {

constexpr int kDefaultTopK = 5;

int64_t Micros(Duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

ThreadPool::Options PoolOptions(const PipelineOptions& options) {
  ThreadPool::Options pool;
  pool.num_threads = options.preprocess_threads > 0 ? options.preprocess_threads
                                                    : HardwareThreads();
  pool.max_pending = options.max_pending_preprocess;
  // One image per thread: LibTorch's own parallelism would only oversubscribe.
  pool.thread_started = [] { SetIntraOpThreads(1); };
  return pool;
}

absl::Status CallEnded(const CallContext& call, TimePoint now) {
  // A cancellation at about the deadline is gRPC enforcing the deadline.
  if (call.deadline <= now + std::chrono::milliseconds(20)) {
    return absl::DeadlineExceededError(
        "deadline passed before the image was decoded; allow a longer deadline");
  }
  return absl::CancelledError("call cancelled by the client");
}

}  // namespace

void CancelToken::Cancel() {
  cancelled_.store(true);
  if (BatchScheduler::Queue* queue = queue_.load()) queue->NotifyCancelled();
}

std::shared_ptr<const std::atomic<bool>> CancelToken::Flag(
    const std::shared_ptr<CancelToken>& token) {
  if (token == nullptr) return nullptr;
  return std::shared_ptr<const std::atomic<bool>>(token, &token->cancelled_);
}

bool CancelToken::SetQueue(BatchScheduler::Queue* queue) {
  queue_.store(queue);
  return cancelled_.load();
}

// One request in flight.
struct ClassifyPipeline::Request {
  ClassifyInput input;
  CallContext call;
  Done done;
  // Held until the request is answered: calls accepted on a version finish
  // on it even if it is unloaded meanwhile.
  std::shared_ptr<const ServableModel> servable;
  double keep_rate = 1.0;
  // Set: the server chooses the keep rate in [min_keep_rate, max] to meet
  // the deadline (keep_rate is then the highest allowed until it does).
  std::optional<double> min_keep_rate;
  // Answered DEADLINE_EXCEEDED without computing, predicted to miss it.
  bool refused_for_deadline = false;
  int top_k = kDefaultTopK;
  Duration preprocess_time{};
};

ClassifyPipeline::ClassifyPipeline(const ModelRepository* repository, Metrics* metrics,
                                   const PipelineOptions& options)
    : repository_(repository),
      metrics_(metrics),
      options_(options),
      clock_(options.clock != nullptr ? options.clock : Clock::Real()),
      preprocess_pool_(std::make_unique<ThreadPool>(PoolOptions(options))) {}

ClassifyPipeline::~ClassifyPipeline() {
  preprocess_pool_.reset();
  if (!WaitUntilIdle(absl::Seconds(10))) {
    spdlog::error("event=pipeline_stop reason=\"requests still unanswered\" accepted={} "
                  "answered={}", accepted(), answered());
  }
}

std::string ClassifyPipeline::NewRequestId() {
  static const uint32_t prefix = std::random_device()() & 0xffffff;
  static std::atomic<uint64_t> counter{0};
  return absl::StrFormat("%06x-%d", prefix, counter.fetch_add(1) + 1);
}

void ClassifyPipeline::StopAccepting() {
  absl::MutexLock lock(&mu_);
  accepting_ = false;
}

bool ClassifyPipeline::WaitUntilIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(this, &ClassifyPipeline::IdleLocked), timeout);
}

int64_t ClassifyPipeline::accepted() const {
  absl::MutexLock lock(&mu_);
  return accepted_;
}

int64_t ClassifyPipeline::answered() const {
  absl::MutexLock lock(&mu_);
  return answered_;
}

void ClassifyPipeline::Submit(ClassifyInput input, CallContext call, Done done) {
  auto request = std::make_shared<Request>();
  request->input = std::move(input);
  request->call = std::move(call);
  if (request->call.arrival == TimePoint()) request->call.arrival = clock_->Now();
  request->done = std::move(done);
  bool accepting = false;
  {
    absl::MutexLock lock(&mu_);
    accepting = accepting_;
    if (accepting) ++accepted_;
  }
  if (!accepting) {
    const ClassifyInput& in = request->input;
    absl::StatusOr<std::shared_ptr<const ServableModel>> servable = repository_->Find(
        in.model, in.version.value_or(0) > 0 ? in.version : std::nullopt);
    (servable.ok() ? (*servable)->metrics() : metrics_->unknown_model())
        ->CountRequest(absl::StatusCode::kUnavailable);
    spdlog::info("event=classify request_id={} code=UNAVAILABLE reason=shutting_down",
                 LogQuoted(request->call.request_id));
    request->done(absl::UnavailableError(
        "the server is shutting down; retry on another replica or after it restarts"));
    return;
  }

  absl::Status valid = Validate(*request);
  if (!valid.ok()) return Complete(*request, valid);
  const int64_t bytes = static_cast<int64_t>(
      request->input.raw ? request->input.raw->rgb.size() : request->input.image.size());
  absl::Status budget;
  {
    absl::MutexLock lock(&mu_);
    if (pending_decode_bytes_ + bytes > options_.max_pending_decode_bytes) {
      budget = absl::ResourceExhaustedError(absl::StrCat(
          "the server holds ", pending_decode_bytes_ >> 20,
          " MiB of images waiting to be decoded (at most ",
          options_.max_pending_decode_bytes >> 20, " MiB, --max-pending-decode-mib); retry later"));
    } else {
      pending_decode_bytes_ += bytes;
    }
  }
  if (!budget.ok()) return Complete(*request, budget);
  absl::Status scheduled = preprocess_pool_->Schedule([this, request, bytes] {
    Preprocess(request);
    absl::MutexLock lock(&mu_);
    pending_decode_bytes_ -= bytes;
  });
  if (!scheduled.ok()) {
    {
      absl::MutexLock lock(&mu_);
      pending_decode_bytes_ -= bytes;
    }
    Complete(*request, scheduled);
  }
}

absl::Status ClassifyPipeline::Validate(Request& request) const {
  const ClassifyInput& in = request.input;
  if (in.version && *in.version <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("version must be a positive number, got ",
                                                   *in.version,
                                                   "; leave it unset for the highest version"));
  }
  absl::StatusOr<std::shared_ptr<const ServableModel>> servable =
      repository_->Find(in.model, in.version);
  if (!servable.ok()) return servable.status();
  request.servable = *std::move(servable);
  if (in.top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be 0 (for ", kDefaultTopK,
                                                   ") or positive, got ", in.top_k));
  }
  request.top_k = std::min(in.top_k == 0 ? kDefaultTopK : in.top_k,
                           request.servable->config().num_classes);
  absl::StatusOr<double> keep_rate = request.servable->ResolveKeepRate(in.keep_rate);
  if (!keep_rate.ok()) return keep_rate.status();
  request.keep_rate = *keep_rate;
  // An explicit keep_rate wins over min_keep_rate and the model's adaptive
  // default.
  if (!in.keep_rate) {
    const KeepRatePolicy& policy = request.servable->serving().keep_rate;
    if (in.min_keep_rate) {
      absl::StatusOr<double> min = request.servable->ResolveMinKeepRate(*in.min_keep_rate);
      if (!min.ok()) return min.status();
      request.min_keep_rate = *min;
    } else if (policy.adaptive_min) {
      request.min_keep_rate = *policy.adaptive_min;
    }
  }
  if (in.raw) {
    const RawPixels& raw = *in.raw;
    const int size = request.servable->config().input_size;
    if (raw.width != size || raw.height != size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "raw image is ", raw.width, " x ", raw.height, "; the model takes ", size, " x ",
          size, " pixels (resize and crop first, or send the encoded image)"));
    }
    const int64_t expected = 3LL * size * size;
    if (static_cast<int64_t>(raw.rgb.size()) != expected) {
      return absl::InvalidArgumentError(
          absl::StrCat("raw image has ", raw.rgb.size(), " bytes; ", size, " x ", size,
                       " RGB pixels take ", expected));
    }
    return absl::OkStatus();
  }
  if (in.image.empty()) {
    return absl::InvalidArgumentError(
        "image is empty; send the bytes of a JPEG, PNG, WebP or BMP file, or raw pixels");
  }
  if (static_cast<int64_t>(in.image.size()) > options_.max_image_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("image is ", in.image.size(),
                                                   " bytes; the server accepts at most ",
                                                   options_.max_image_bytes));
  }
  return absl::OkStatus();
}

void ClassifyPipeline::Preprocess(std::shared_ptr<Request> request) {
  const CallContext& call = request->call;
  TimePoint start = clock_->Now();
  if (call.deadline <= start || (call.cancel && call.cancel->cancelled())) {
    return Complete(*request, CallEnded(call, start));
  }
  const ServableModel& servable = *request->servable;
  // The keep rate, chosen before decoding when the request lets the server
  // choose, and the compute the task adds to the backlog. A call predicted to
  // finish past its deadline, even at the lowest keep rate it allows, is
  // answered now, neither decoded nor computed.
  Duration predicted_compute{};
  servable.arrivals().Record(start);
  if (std::optional<ComputeTimeModel::Fit> fit = servable.compute_model().Current()) {
    const TimePoint now = start;
    // Decoding comes first, at about its recent duration.
    const Duration backlog = servable.BacklogPerWorker();
    const Duration wait = backlog + RecentPreprocessTime();
    // What one image adds to the workers' load: a batch's fixed cost is
    // shared by its images, and under load, when a backlog builds up,
    // batches are full.
    const int max_batch = servable.serving().batching.max_batch_size;
    const auto per_image_seconds = [&](double gmacs) {
      return fit->per_gmac * gmacs + fit->fixed / max_batch;
    };
    std::vector<RateCost> rates;
    if (request->min_keep_rate) {
      // Of the allowed keep rates, those at which the recent arrivals would
      // keep the workers at most 90 % busy (batches full): choosing by the
      // backlog alone would let the first callers of a burst take the
      // highest keep rate and leave the next ones only refusals.
      const double per_second = servable.arrivals().PerSecond(now);
      const double capacity = 0.9 * servable.workers();
      const RateCost* lowest = nullptr;
      for (const RateCost& rate : servable.adaptive_rates()) {
        if (rate.keep_rate < *request->min_keep_rate - 1e-9) continue;
        lowest = &rate;
        if (per_second * per_image_seconds(rate.gmacs) <= capacity) rates.push_back(rate);
      }
      if (rates.empty() || rates.back().keep_rate != lowest->keep_rate) rates.push_back(*lowest);
    } else {
      rates.push_back({request->keep_rate, servable.GmacsAt(request->keep_rate)});
    }
    // The batch it joins: under a backlog, as full as the work queued ahead
    // fills it; the whole batch must finish before the answer goes out.
    const double ahead = std::chrono::duration<double>(backlog).count() /
                         std::max(1e-9, per_image_seconds(rates.front().gmacs));
    const int batch_images =
        static_cast<int>(std::clamp(1.0 + std::floor(ahead), 1.0, static_cast<double>(max_batch)));
    const std::optional<size_t> chosen =
        ChooseKeepRate(rates, *fit, now, wait, call.deadline, batch_images);
    if (!chosen) {
      request->refused_for_deadline = true;
      const double late_ms = std::chrono::duration<double, std::milli>(
                                 now + wait - call.deadline).count() +
                             1e3 * fit->Seconds(batch_images * rates.back().gmacs);
      return Complete(*request, absl::DeadlineExceededError(absl::StrFormat(
                                    "predicted to finish %.0f ms after the deadline at keep "
                                    "rate %g (%.0f ms of work queued ahead); not computed: "
                                    "retry with a longer deadline%s",
                                    late_ms, rates.back().keep_rate,
                                    std::chrono::duration<double, std::milli>(wait).count(),
                                    request->min_keep_rate ? "" : " or set min_keep_rate")));
    }
    request->keep_rate = rates[*chosen].keep_rate;
    predicted_compute = std::chrono::duration_cast<Duration>(
        std::chrono::duration<double>(per_image_seconds(rates[*chosen].gmacs)));
  } else if (request->min_keep_rate) {
    // Nothing has run yet to predict from: the highest allowed.
    request->keep_rate = servable.adaptive_rates().front().keep_rate;
  }
  if (request->min_keep_rate) servable.metrics()->adaptive_keep_rate->Observe(request->keep_rate);

  PreprocessOptions preprocess;
  preprocess.input_size = servable.config().input_size;
  preprocess.max_encoded_bytes = options_.max_image_bytes;
  preprocess.max_pixels = options_.max_image_pixels;
  // The heaviest decodes (progressive 4:4:4 JPEG) hold about 12 bytes a pixel.
  preprocess.max_decode_bytes =
      std::max(preprocess.max_decode_bytes, 12 * options_.max_image_pixels);
  absl::StatusOr<torch::Tensor> tensor;
  try {
    if (request->input.raw) {
      // Validate checked the size: the pixels are the model input.
      const int size = preprocess.input_size;
      torch::Tensor pixels = torch::empty({3, size, size}, torch::kFloat32);
      NormalizeCropInto(reinterpret_cast<const uint8_t*>(request->input.raw->rgb.data()),
                        size, 0, 0, size, /*flip=*/false, pixels.data_ptr<float>());
      tensor = std::move(pixels);
    } else {
      const std::string_view image = request->input.image;
      tensor = PreprocessEncoded(reinterpret_cast<const uint8_t*>(image.data()), image.size(),
                                 preprocess);
    }
  } catch (const std::exception& e) {
    tensor = absl::InvalidArgumentError(absl::StrCat("cannot decode the image: ", e.what()));
  }
  request->preprocess_time = clock_->Now() - start;
  RecordPreprocessTime(request->preprocess_time);
  if (!tensor.ok()) {
    return Complete(*request, absl::Status(tensor.status().code(),
                                           absl::StrCat("image: ", tensor.status().message())));
  }
  servable.metrics()->preprocess_seconds->Observe(
      std::chrono::duration<double>(request->preprocess_time).count());

  auto task = std::make_unique<InferenceTask>();
  task->request_id = call.request_id;
  task->image = *std::move(tensor);
  task->keep_rate = request->keep_rate;
  task->predicted_compute = predicted_compute;
  task->top_k = request->top_k;
  task->deadline = call.deadline;
  task->cancelled = CancelToken::Flag(call.cancel);
  task->done = [this, request](absl::StatusOr<TaskResult> result) {
    if (!result.ok()) return Complete(*request, result.status());
    const ServableModel& model = *request->servable;
    ClassifyOutput output;
    for (size_t i = 0; i < result->class_ids.size(); ++i) {
      output.predictions.push_back(
          {result->class_ids[i], model.labels()[result->class_ids[i]], result->scores[i]});
    }
    output.model = model.name();
    output.version = model.version();
    output.keep_rate = request->keep_rate;
    output.request_id = request->call.request_id;
    ClassifyCost& cost = output.cost;
    cost.gmacs = result->gmacs;
    cost.gmacs_full = model.gmacs_full();
    cost.tokens = std::move(result->tokens);
    cost.batch_size = result->batch_size;
    cost.batch_id = result->batch_id;
    cost.queue_us = Micros(result->queue_time);
    cost.preprocess_us = Micros(request->preprocess_time);
    cost.compute_us = Micros(result->compute_time);
    Complete(*request, std::move(output));
  };
  BatchScheduler::Queue* queue = servable.queue();
  if (const TimePoint now = clock_->Now(); now >= call.deadline) {
    return task->Finish(CallEnded(call, now));
  }
  absl::Status status = queue->Schedule(&task);
  if (!status.ok()) return task->Finish(status);
  if (call.cancel && call.cancel->SetQueue(queue)) queue->NotifyCancelled();
}

void ClassifyPipeline::RecordPreprocessTime(Duration took) {
  absl::MutexLock lock(&mu_);
  recent_preprocess_ = (recent_preprocess_ * 7 + took) / 8;
}

Duration ClassifyPipeline::RecentPreprocessTime() const {
  absl::MutexLock lock(&mu_);
  return recent_preprocess_;
}

void ClassifyPipeline::Complete(Request& request, absl::StatusOr<ClassifyOutput> result) {
  const TimePoint now = clock_->Now();
  const int64_t total_us = Micros(now - request.call.arrival);
  ModelMetrics* m = request.servable ? request.servable->metrics() : metrics_->unknown_model();
  m->CountRequest(result.status().code());
  if (request.servable && request.call.deadline != TimePoint::max()) {
    if (request.refused_for_deadline) {
      m->deadline_refused->Increment();
    } else if (result.ok() && now <= request.call.deadline) {
      m->deadline_met->Increment();
    } else if (result.ok() || result.status().code() == absl::StatusCode::kDeadlineExceeded) {
      m->deadline_missed->Increment();
    }
  }
  // Fields a client chose are quoted and escaped: they cannot end the line.
  const std::string ids =
      request.call.client_request_id.empty()
          ? LogQuoted(request.call.request_id)
          : absl::StrCat(LogQuoted(request.call.request_id), " client_request_id=",
                         LogQuoted(request.call.client_request_id, 128));
  const std::string model = LogQuoted(request.input.model, 128);
  if (result.ok()) {
    result->cost.total_us = total_us;
    m->latency_seconds->Observe(total_us * 1e-6);
    const ClassifyCost& cost = result->cost;
    spdlog::info(
        "event=classify request_id={} model={} version={} code=OK keep_rate={} "
        "top_class={} batch_id={} batch_size={} queue_us={} preprocess_us={} compute_us={} "
        "total_us={}",
        ids, model, result->version, result->keep_rate,
        result->predictions.empty() ? -1 : result->predictions.front().class_id, cost.batch_id,
        cost.batch_size, cost.queue_us, cost.preprocess_us, cost.compute_us, total_us);
  } else {
    const absl::Status& status = result.status();
    const auto level = status.code() == absl::StatusCode::kInternal ? spdlog::level::err
                                                                     : spdlog::level::info;
    spdlog::log(level, "event=classify request_id={} model={} code={} total_us={} message={}",
                ids, model, absl::StatusCodeToString(status.code()), total_us,
                LogQuoted(status.message(), 512));
  }
  Done done = std::move(request.done);
  request.done = nullptr;
  done(std::move(result));
  absl::MutexLock lock(&mu_);
  ++answered_;
}

}  // namespace clca::server
