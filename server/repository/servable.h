// One loaded model version: the model, its labels and serving configuration,
// and its queue on the server's shared batch scheduler. Held by
// std::shared_ptr: a request keeps the version it was accepted on until it
// is answered, even after the version is unloaded.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "models/exec/batch_runner.h"
#include "models/vit/cost.h"
#include "models/vit/model.h"
#include "server/batching/batch_scheduler.h"
#include "server/batching/compute_time_model.h"
#include "server/observability/metrics.h"
#include "server/repository/serving_config.h"

namespace clca::server {

// Keep rates whose cost ModelInfo reports.
inline constexpr double kStandardKeepRates[] = {0.1, 0.25, 0.5, 0.7, 1.0};

// The worker pool every version computes on.
struct PoolLayout {
  int workers = 1;
  // LibTorch intra-op threads of each worker.
  int intra_op_threads = 1;
};

class ServableModel : public std::enable_shared_from_this<ServableModel> {
 public:
  struct Spec {
    std::string name;
    int64_t version = 0;
    // The version directory, for messages.
    std::string path;
    std::unique_ptr<ClcaModel> model;
    std::vector<std::string> labels;
    ServingConfig serving;
    PoolLayout pool;
    // Called when the servable is destroyed (its last call answered); must
    // not block.
    std::function<void()> on_destroyed;
  };

  // Checks the keep-rate policy against the model and opens its queue on
  // `scheduler`, which must outlive it.
  static absl::StatusOr<std::shared_ptr<ServableModel>> Create(Spec spec,
                                                               BatchScheduler* scheduler,
                                                               ModelMetrics* metrics);
  ~ServableModel();

  // Runs the warm-up forward passes of serving.json through the scheduler
  // and waits for them: afterwards the version's first calls find their
  // kernels ready. An error when a pass fails.
  absl::Status WarmUp();

  const std::string& name() const { return spec_.name; }
  int64_t version() const { return spec_.version; }
  const std::string& path() const { return spec_.path; }
  const ModelConfig& config() const { return spec_.model->config(); }
  const std::vector<std::string>& labels() const { return spec_.labels; }
  const ClcaModel& model() const { return *spec_.model; }
  const ServingConfig& serving() const { return spec_.serving; }
  const PoolLayout& pool() const { return spec_.pool; }
  double default_keep_rate() const { return default_keep_rate_; }
  ModelMetrics* metrics() const { return metrics_; }
  BatchScheduler::Queue* queue() const { return queue_.get(); }
  // The cost at each of kStandardKeepRates.
  const std::vector<std::pair<double, Cost>>& standard_costs() const { return standard_costs_; }

  // The keep rate a request asks for, or the default; INVALID_ARGUMENT when
  // it is not finite or outside the allowed range.
  absl::StatusOr<double> ResolveKeepRate(std::optional<float> requested) const;

  // A request's min_keep_rate, checked against the policy: INVALID_ARGUMENT
  // when it is not finite or outside the allowed range.
  absl::StatusOr<double> ResolveMinKeepRate(float requested) const;

  // The keep rates the server may choose for a request that allows
  // [min_keep_rate, the policy's max], highest first: the max, then every
  // multiple of 0.05 below it down to the policy's min, and the min.
  const std::vector<RateCost>& adaptive_rates() const { return adaptive_rates_; }
  // Multiply-accumulates per image at `keep_rate`, in billions.
  double GmacsAt(double keep_rate) const;
  // Compute time of this version's batches, learnt from those that ran
  // (warm-up included).
  const ComputeTimeModel& compute_model() const { return compute_model_; }
  // Compute already waiting or running on the shared workers, per worker.
  Duration BacklogPerWorker() const;
  // Requests for this version reaching the batch queue, recently.
  ArrivalRate& arrivals() const { return arrivals_; }
  // Batch workers of the shared pool.
  int workers() const { return scheduler_->num_workers(); }

  // Multiply-accumulates per image at keep rate 1, in billions.
  double gmacs_full() const { return full_cost_.gmacs(); }

 private:
  ServableModel(Spec spec, ModelMetrics* metrics);
  // `requested` as the decimal the client meant, when the keep-rate policy
  // allows it; INVALID_ARGUMENT naming `field`, then `hint`, otherwise.
  absl::StatusOr<double> AllowedKeepRate(float requested, absl::string_view field,
                                         absl::string_view hint) const;
  // Runs on a worker thread: one forward pass, then completes every task.
  void RunBatch(std::vector<std::unique_ptr<InferenceTask>> batch, uint64_t batch_id) const;
  // A runner no other batch is using, and its return.
  BatchRunner* AcquireRunner() const;
  void ReleaseRunner(BatchRunner* runner) const;

  Spec spec_;
  ModelMetrics* metrics_;
  double default_keep_rate_ = 1.0;
  Cost full_cost_;
  std::vector<std::pair<double, Cost>> standard_costs_;
  std::vector<RateCost> adaptive_rates_;
  mutable ComputeTimeModel compute_model_;
  mutable ArrivalRate arrivals_;
  // One runner per worker of the pool (each batch takes one for its pass).
  std::vector<std::unique_ptr<BatchRunner>> runners_;
  mutable absl::Mutex runners_mu_;
  mutable std::vector<BatchRunner*> free_runners_ ABSL_GUARDED_BY(runners_mu_);
  BatchScheduler* scheduler_ = nullptr;
  std::unique_ptr<BatchScheduler::Queue> queue_;
};

}  // namespace clca::server
