#include "server/repository/servable.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "models/cpu/threads.h"

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

absl::StatusOr<std::unique_ptr<ServableModel>> ServableModel::Create(Spec spec,
                                                                     ModelMetrics* metrics) {
  std::unique_ptr<ServableModel> servable(new ServableModel(std::move(spec), metrics));
  const Spec& s = servable->spec_;
  const KeepRatePolicy& policy = s.serving.keep_rate;
  servable->default_keep_rate_ = policy.default_rate.value_or(s.model->config().keep_rate);
  const double rate = servable->default_keep_rate_;
  if (rate < policy.min || rate > policy.max) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: default keep rate %g is outside the allowed range [%g, %g]", s.path, rate,
        policy.min, policy.max));
  }
  absl::StatusOr<Cost> full = EstimateCost(s.model->config(), 1.0);
  if (!full.ok()) return full.status();
  servable->full_cost_ = *std::move(full);
  for (double keep_rate : kStandardKeepRates) {
    absl::StatusOr<Cost> cost = EstimateCost(s.model->config(), keep_rate);
    if (!cost.ok()) return cost.status();
    servable->standard_costs_.emplace_back(keep_rate, *std::move(cost));
  }

  BatchSchedulerOptions options = s.serving.batching;
  options.name = absl::StrCat(s.name, "/", s.version);
  const int threads = s.serving.intra_op_threads > 0 ? s.serving.intra_op_threads
                      : s.default_intra_op_threads > 0
                          ? s.default_intra_op_threads
                          : std::max(1, HardwareThreads() / std::max(1, options.num_workers));
  servable->intra_op_threads_ = threads;
  BatchScheduler::Hooks hooks;
  hooks.worker_started = [self = servable.get(), threads] {
    SetIntraOpThreads(threads);
    self->WarmUp();
  };
  ModelMetrics* m = servable->metrics_;
  hooks.queue_depth_changed = [m](size_t depth) {
    if (m != nullptr) m->queue_depth->Set(static_cast<double>(depth));
  };
  ServableModel* self = servable.get();
  absl::StatusOr<std::unique_ptr<BatchScheduler>> scheduler = BatchScheduler::Create(
      options,
      [self](std::vector<std::unique_ptr<InferenceTask>> batch, uint64_t batch_id) {
        self->RunBatch(std::move(batch), batch_id);
      },
      std::move(hooks));
  if (!scheduler.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(s.path, ": serving.json: ", scheduler.status().message()));
  }
  servable->scheduler_ = *std::move(scheduler);
  return servable;
}

ServableModel::ServableModel(Spec spec, ModelMetrics* metrics)
    : spec_(std::move(spec)), metrics_(metrics) {}

absl::StatusOr<double> ServableModel::ResolveKeepRate(std::optional<float> requested) const {
  if (!requested) return default_keep_rate_;
  const double rate = ClientKeepRate(*requested);
  const KeepRatePolicy& policy = spec_.serving.keep_rate;
  if (!std::isfinite(rate) || rate < policy.min || rate > policy.max) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "keep_rate %g is not allowed for model %s version %d: use a number in [%g, %g] "
        "or leave it unset for the default %g",
        rate, spec_.name, spec_.version, policy.min, policy.max, default_keep_rate_));
  }
  return rate;
}

void ServableModel::WarmUp() const {
  // The first forward pass allocates and starts thread pools; pay for it
  // before the first request does.
  const int size = config().input_size;
  try {
    c10::InferenceMode inference;
    absl::StatusOr<ForwardResult> result =
        spec_.model->Forward(torch::zeros({1, 3, size, size}), default_keep_rate_);
    if (!result.ok()) {
      spdlog::warn("event=warm_up_failed model={} version={} cause=\"{}\"", spec_.name,
                   spec_.version, std::string(result.status().message()));
    }
  } catch (const std::exception& e) {
    spdlog::warn("event=warm_up_failed model={} version={} cause=\"{}\"", spec_.name,
                 spec_.version, e.what());
  }
}

void ServableModel::RunBatch(std::vector<std::unique_ptr<InferenceTask>> batch,
                             uint64_t batch_id) const {
  const TimePoint start = Clock::Real()->Now();
  const double keep_rate = batch.front()->keep_rate;
  const auto batch_size = static_cast<int>(batch.size());
  absl::StatusOr<Cost> cost = EstimateCost(config(), keep_rate);
  torch::Tensor probabilities;
  std::vector<int64_t> tokens;
  absl::Status status = cost.status();
  if (status.ok()) {
    try {
      c10::InferenceMode inference;
      std::vector<torch::Tensor> images;
      images.reserve(batch.size());
      for (const auto& task : batch) images.push_back(task->image);
      absl::StatusOr<ForwardResult> result = spec_.model->Forward(torch::stack(images), keep_rate);
      if (result.ok()) {
        probabilities = torch::softmax(result->logits.to(torch::kCPU, torch::kFloat32), 1)
                            .contiguous();
        tokens = std::move(result->tokens);
      } else {
        status = result.status();
      }
    } catch (const std::exception& e) {
      status = absl::InternalError(e.what());
    }
  }
  const TimePoint end = Clock::Real()->Now();
  if (!status.ok()) {
    spdlog::error("event=batch_failed model={} version={} batch_id={} batch_size={} cause=\"{}\"",
                  spec_.name, spec_.version, batch_id, batch_size, std::string(status.message()));
    for (auto& task : batch) {
      task->Finish(absl::InternalError(
          absl::StrCat("the model failed on this batch (batch ", batch_id, "); see server log")));
    }
    return;
  }
  if (metrics_ != nullptr) {
    metrics_->batches->Increment();
    metrics_->inferred_images->Increment(batch_size);
    metrics_->gmacs->Increment(cost->gmacs() * batch_size);
    metrics_->compute_seconds->Observe(Seconds(end - start));
    metrics_->batch_size->Observe(batch_size);
    metrics_->keep_rate->Observe(keep_rate);
  }
  spdlog::debug("event=batch model={} version={} batch_id={} batch_size={} keep_rate={} "
                "compute_us={}",
                spec_.name, spec_.version, batch_id, batch_size, keep_rate,
                std::chrono::duration_cast<std::chrono::microseconds>(end - start).count());
  const int64_t num_classes = probabilities.size(1);
  const float* data = probabilities.data_ptr<float>();
  for (int i = 0; i < batch_size; ++i) {
    InferenceTask& task = *batch[i];
    const float* row = data + i * num_classes;
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
    result.tokens = tokens;
    result.gmacs = cost->gmacs();
    result.batch_size = batch_size;
    result.batch_id = batch_id;
    result.queue_time = start - task.enqueue_time;
    result.compute_time = end - start;
    if (metrics_ != nullptr) metrics_->queue_seconds->Observe(Seconds(result.queue_time));
    task.Finish(std::move(result));
  }
}

}  // namespace clca::server
