#include "server/repository/servable.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <utility>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "models/cpu/threads.h"
#include "server/observability/log_fields.h"

namespace clca::server {
namespace {

double Seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// The decimal number a client meant by a float keep rate (0.7f -> 0.7), so it
// batches with, and reduces tokens exactly like, the same rate from JSON.
double ClientKeepRate(float value) {
  char buffer[32];
  for (int digits = 6; digits <= 9; ++digits) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", digits, value);
    const double parsed = std::strtod(buffer, nullptr);
    if (static_cast<float>(parsed) == value) return parsed;
  }
  return value;
}

}  // namespace

absl::StatusOr<std::shared_ptr<ServableModel>> ServableModel::Create(Spec spec,
                                                                     BatchScheduler* scheduler,
                                                                     ModelMetrics* metrics) {
  std::shared_ptr<ServableModel> servable(new ServableModel(std::move(spec), metrics));
  const Spec& s = servable->spec_;
  const KeepRatePolicy& policy = s.serving.keep_rate;
  servable->default_keep_rate_ = policy.default_rate.value_or(s.model->config().keep_rate);
  const double rate = servable->default_keep_rate_;
  if (rate < policy.min || rate > policy.max) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: default keep rate %g is outside the allowed range [%g, %g]", s.path, rate,
        policy.min, policy.max));
  }
  for (double warm : s.serving.warmup.keep_rates) {
    if (warm < policy.min || warm > policy.max) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: serving.json: warm-up keep rate %g is outside the allowed range [%g, %g]", s.path,
          warm, policy.min, policy.max));
    }
  }
  absl::StatusOr<Cost> full = EstimateCost(s.model->config(), 1.0);
  if (!full.ok()) return full.status();
  servable->full_cost_ = *std::move(full);
  for (double keep_rate : kStandardKeepRates) {
    absl::StatusOr<Cost> cost = EstimateCost(s.model->config(), keep_rate);
    if (!cost.ok()) return cost.status();
    servable->standard_costs_.emplace_back(keep_rate, *std::move(cost));
  }

  // Keep rates to choose from: the max, multiples of 0.05 below it, the min.
  std::vector<double> rates = {policy.max};
  for (int step = static_cast<int>(std::floor((policy.max - 1e-9) * 20));
       step / 20.0 > policy.min + 1e-9; --step) {
    rates.push_back(step / 20.0);
  }
  if (policy.min < rates.back()) rates.push_back(policy.min);
  for (double keep_rate : rates) {
    absl::StatusOr<Cost> cost = EstimateCost(s.model->config(), keep_rate);
    if (!cost.ok()) return cost.status();
    servable->adaptive_rates_.push_back({keep_rate, cost->gmacs()});
  }
  servable->scheduler_ = scheduler;

  BatchRunnerOptions runner_options;
  runner_options.max_batch = s.serving.batching.max_batch_size;
  runner_options.cuda_graphs = s.serving.cuda_graphs;
  for (int i = 0; i < std::max(1, scheduler->num_workers()); ++i) {
    absl::StatusOr<std::unique_ptr<BatchRunner>> runner =
        BatchRunner::Create(*s.model, runner_options);
    if (!runner.ok()) {
      return absl::Status(runner.status().code(),
                          absl::StrCat(s.path, ": ", runner.status().message()));
    }
    servable->free_runners_.push_back(runner->get());
    servable->runners_.push_back(*std::move(runner));
  }

  QueueOptions options = s.serving.batching;
  options.name = absl::StrCat(s.name, "/", s.version);
  BatchScheduler::QueueHooks hooks;
  const std::string name = s.name;
  const int64_t version = s.version;
  hooks.batch_failed = [name, version](uint64_t batch_id, const std::string& cause) {
    spdlog::error("event=batch_failed model={} version={} batch_id={} cause={}",
                  LogQuoted(name), version, batch_id, LogQuoted(cause, 512));
  };
  hooks.queue_depth_changed = [metrics](size_t depth) {
    if (metrics != nullptr) metrics->queue_depth->Set(static_cast<double>(depth));
  };
  // The batch function holds the version while it runs; a version already
  // gone has no tasks left to run.
  std::weak_ptr<ServableModel> weak = servable;
  absl::StatusOr<std::unique_ptr<BatchScheduler::Queue>> queue = scheduler->AddQueue(
      options,
      [weak](std::vector<std::unique_ptr<InferenceTask>> batch, uint64_t batch_id) {
        if (std::shared_ptr<ServableModel> self = weak.lock()) {
          self->RunBatch(std::move(batch), batch_id);
        }
      },
      std::move(hooks));
  if (!queue.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(s.path, ": serving.json: ", queue.status().message()));
  }
  servable->queue_ = *std::move(queue);
  return servable;
}

ServableModel::ServableModel(Spec spec, ModelMetrics* metrics)
    : spec_(std::move(spec)), metrics_(metrics) {}

ServableModel::~ServableModel() {
  // Leaves the scheduler before the model it runs is freed.
  queue_.reset();
  if (spec_.on_destroyed) spec_.on_destroyed();
}

absl::Status ServableModel::WarmUp() {
  if (!spec_.serving.warmup.enabled) return absl::OkStatus();
  std::vector<int> sizes = spec_.serving.warmup.batch_sizes;
  if (sizes.empty()) sizes = {1, spec_.serving.batching.max_batch_size};
  // A batch never holds more requests than the queue does.
  const int largest = std::min(spec_.serving.batching.max_batch_size,
                               spec_.serving.batching.queue_capacity);
  for (int& size : sizes) size = std::min(size, largest);
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  std::vector<double> rates = spec_.serving.warmup.keep_rates;
  if (rates.empty()) rates = {default_keep_rate_};
  // On a GPU: the CUDA graph of every batch bucket up to the largest batch,
  // at each warm-up keep rate, for each runner. The version takes no calls
  // yet, so no batch holds a runner.
  for (const auto& runner : runners_) {
    if (!runner->UsesGraphs()) continue;
    for (double rate : rates) {
      for (int64_t bucket = 1;; bucket *= 2) {
        const int64_t size = BatchBucket(bucket, largest);
        if (absl::Status s = runner->Prepare(size, rate); !s.ok()) {
          return absl::Status(s.code(), absl::StrCat("warm-up capture at batch size ", size,
                                                     ", keep rate ", rate, ": ", s.message()));
        }
        if (size >= largest) break;
      }
    }
  }
  if (!runners_.empty() && runners_.front()->UsesGraphs()) {
    spdlog::info("event=cuda_graphs_captured model={} version={} graphs_per_worker={}",
                 LogQuoted(spec_.name), spec_.version, runners_.front()->stats().graphs);
  }
  const int side = config().input_size;
  const torch::Tensor blank = torch::zeros({3, side, side});
  // Each pass twice: the first builds kernels and buffers, the second's time
  // starts the compute-time model.
  struct Pass {
    double rate;
    int size;
    bool representative;
    bool spread = false;  // keep rates spread over the allowed range instead
  };
  std::vector<Pass> passes;
  for (bool representative : {false, true}) {
    for (double rate : rates) {
      for (int size : sizes) passes.push_back({rate, size, representative});
    }
  }
  // A batch of mixed keep rates too, where batches mix them: its products
  // have row counts that one keep rate never gives.
  const KeepRatePolicy& policy = spec_.serving.keep_rate;
  if (spec_.serving.batching.mix_keep_rates && policy.min < policy.max && largest > 1) {
    passes.push_back({policy.max, largest, false, true});
  }
  for (const auto& [rate, size, representative, spread] : passes) {
    // `size` tasks of one keep rate, run as one batch (flushed at once).
    absl::Mutex mu;
    int left = size;
    absl::Status failure;
    for (int i = 0; i < size; ++i) {
      auto task = std::make_unique<InferenceTask>();
      task->request_id = "warm-up";
      task->image = blank;
      task->keep_rate = spread ? policy.min + (policy.max - policy.min) * i / (size - 1) : rate;
      task->warm_up = true;
      task->representative_time = representative;
      task->done = [&mu, &left, &failure](absl::StatusOr<TaskResult> result) {
        absl::MutexLock lock(&mu);
        if (!result.ok() && failure.ok()) failure = result.status();
        --left;
      };
      if (absl::Status scheduled = queue_->Schedule(&task); !scheduled.ok()) {
        absl::MutexLock lock(&mu);
        left -= size - i;
        if (failure.ok()) failure = scheduled;
        break;
      }
    }
    queue_->RunNow();
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* n) { return *n == 0; }, &left));
    if (!failure.ok()) {
      const std::string rates_used =
          spread ? absl::StrCat("s ", policy.min, " to ", policy.max) : absl::StrCat(" ", rate);
      return absl::Status(failure.code(), absl::StrCat("warm-up at batch size ", size,
                                                       ", keep rate", rates_used, ": ",
                                                       failure.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<double> ServableModel::ResolveMinKeepRate(float requested) const {
  return AllowedKeepRate(requested, "min_keep_rate", "");
}

double ServableModel::GmacsAt(double keep_rate) const {
  for (const RateCost& rate : adaptive_rates_) {
    if (std::abs(rate.keep_rate - keep_rate) < 1e-9) return rate.gmacs;
  }
  absl::StatusOr<Cost> cost = EstimateCost(config(), keep_rate);
  return cost.ok() ? cost->gmacs() : gmacs_full();
}

Duration ServableModel::BacklogPerWorker() const {
  return scheduler_->Backlog() / std::max(1, scheduler_->num_workers());
}

absl::StatusOr<double> ServableModel::ResolveKeepRate(std::optional<float> requested) const {
  if (!requested) return default_keep_rate_;
  return AllowedKeepRate(*requested, "keep_rate",
                         absl::StrFormat(" or leave it unset for the default %g",
                                         default_keep_rate_));
}

absl::StatusOr<double> ServableModel::AllowedKeepRate(float requested, absl::string_view field,
                                                      absl::string_view hint) const {
  const double rate = ClientKeepRate(requested);
  const KeepRatePolicy& policy = spec_.serving.keep_rate;
  if (!std::isfinite(rate) || rate < policy.min || rate > policy.max) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s %g is not allowed for model %s version %d: use a number in [%g, %g]%s", field, rate,
        spec_.name, spec_.version, policy.min, policy.max, hint));
  }
  return rate;
}

BatchRunner* ServableModel::AcquireRunner() const {
  absl::MutexLock lock(&runners_mu_);
  runners_mu_.Await(absl::Condition(
      +[](std::vector<BatchRunner*>* free) { return !free->empty(); }, &free_runners_));
  BatchRunner* runner = free_runners_.back();
  free_runners_.pop_back();
  return runner;
}

void ServableModel::ReleaseRunner(BatchRunner* runner) const {
  absl::MutexLock lock(&runners_mu_);
  free_runners_.push_back(runner);
}

void ServableModel::RunBatch(std::vector<std::unique_ptr<InferenceTask>> batch,
                             uint64_t batch_id) const {
  const TimePoint start = Clock::Real()->Now();
  const auto batch_size = static_cast<int>(batch.size());
  // Tasks by keep rate; a batch of several keep rates is one mixed forward pass.
  std::map<double, std::vector<int>> by_rate;
  for (int i = 0; i < batch_size; ++i) by_rate[batch[i]->keep_rate].push_back(i);
  std::vector<torch::Tensor> probabilities(batch.size());
  std::vector<std::vector<int64_t>> tokens(batch.size());
  std::vector<double> gmacs(batch.size());
  absl::Status status;
  try {
    std::vector<torch::Tensor> images;
    std::vector<double> keep_rates;
    images.reserve(batch.size());
    for (const auto& task : batch) {
      images.push_back(task->image);
      keep_rates.push_back(task->keep_rate);
    }
    for (const auto& [keep_rate, members] : by_rate) {
      absl::StatusOr<Cost> cost = EstimateCost(config(), keep_rate);
      if (!cost.ok()) {
        status = cost.status();
        break;
      }
      for (int i : members) gmacs[i] = cost->gmacs();
    }
    if (status.ok()) {
      BatchRunner* runner = AcquireRunner();
      absl::StatusOr<MixedForwardResult> result = runner->Run(images, keep_rates);
      ReleaseRunner(runner);
      if (result.ok()) {
        tokens = std::move(result->tokens);
        c10::InferenceMode inference;
        const torch::Tensor p = torch::softmax(result->logits, 1).contiguous();
        for (int i = 0; i < batch_size; ++i) probabilities[i] = p[i];
      } else {
        status = result.status();
      }
    }
  } catch (const std::exception& e) {
    status = absl::InternalError(e.what());
  }
  const TimePoint end = Clock::Real()->Now();
  if (!status.ok()) {
    spdlog::error("event=batch_failed model={} version={} batch_id={} batch_size={} cause={}",
                  LogQuoted(spec_.name), spec_.version, batch_id, batch_size,
                  LogQuoted(status.message(), 512));
    for (auto& task : batch) {
      task->Finish(absl::InternalError(
          absl::StrCat("the model failed on this batch (batch ", batch_id, "); see server log")));
    }
    return;
  }
  const bool warm_up = batch.front()->warm_up;
  double batch_gmacs = 0;
  for (double g : gmacs) batch_gmacs += g;
  if (batch.front()->representative_time) {
    compute_model_.Observe(batch_gmacs, Seconds(end - start));
  }
  if (metrics_ != nullptr && !warm_up) {
    metrics_->batches->Increment();
    metrics_->inferred_images->Increment(batch_size);
    metrics_->gmacs->Increment(batch_gmacs);
    metrics_->compute_seconds->Observe(Seconds(end - start));
    metrics_->batch_size->Observe(batch_size);
    for (const auto& [keep_rate, members] : by_rate) {
      for (size_t m = 0; m < members.size(); ++m) metrics_->keep_rate->Observe(keep_rate);
    }
  }
  spdlog::debug("event=batch model={} version={} batch_id={} batch_size={} keep_rates={} "
                "compute_us={}",
                LogQuoted(spec_.name), spec_.version, batch_id, batch_size, by_rate.size(),
                std::chrono::duration_cast<std::chrono::microseconds>(end - start).count());
  for (int i = 0; i < batch_size; ++i) {
    InferenceTask& task = *batch[i];
    const int64_t num_classes = probabilities[i].size(0);
    const float* row = probabilities[i].data_ptr<float>();
    std::vector<int> order(num_classes);
    for (int c = 0; c < num_classes; ++c) order[c] = c;
    const int k = std::min<int>(task.top_k, static_cast<int>(num_classes));
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [row](int a, int b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    TaskResult result;
    for (int j = 0; j < k; ++j) {
      result.class_ids.push_back(order[j]);
      result.scores.push_back(row[order[j]]);
    }
    result.tokens = std::move(tokens[i]);
    result.gmacs = gmacs[i];
    result.batch_size = batch_size;
    result.batch_id = batch_id;
    result.queue_time = start - task.enqueue_time;
    result.compute_time = end - start;
    if (metrics_ != nullptr && !warm_up) {
      metrics_->queue_seconds->Observe(Seconds(result.queue_time));
    }
    task.Finish(std::move(result));
  }
}

}  // namespace clca::server
