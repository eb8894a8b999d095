// One loaded model version: the model, its labels and serving configuration,
// and the batch scheduler whose workers run it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "models/vit/cost.h"
#include "models/vit/model.h"
#include "server/batching/batch_scheduler.h"
#include "server/observability/metrics.h"
#include "server/repository/serving_config.h"

namespace clca::server {

// Keep rates whose cost ModelInfo reports.
inline constexpr double kStandardKeepRates[] = {0.1, 0.25, 0.5, 0.7, 1.0};

class ServableModel {
 public:
  struct Spec {
    std::string name;
    int64_t version = 0;
    // The version directory, for messages.
    std::string path;
    std::unique_ptr<ClcaModel> model;
    std::vector<std::string> labels;
    ServingConfig serving;
    // LibTorch intra-op threads per worker when serving.json gives none;
    // 0: the hardware threads shared among the workers.
    int default_intra_op_threads = 0;
  };

  // Checks the keep-rate policy against the model and starts the workers.
  static absl::StatusOr<std::unique_ptr<ServableModel>> Create(Spec spec, ModelMetrics* metrics);

  const std::string& name() const { return spec_.name; }
  int64_t version() const { return spec_.version; }
  const ModelConfig& config() const { return spec_.model->config(); }
  const std::vector<std::string>& labels() const { return spec_.labels; }
  const ClcaModel& model() const { return *spec_.model; }
  const ServingConfig& serving() const { return spec_.serving; }
  // The cost at each of kStandardKeepRates.
  const std::vector<std::pair<double, Cost>>& standard_costs() const { return standard_costs_; }
  double default_keep_rate() const { return default_keep_rate_; }
  ModelMetrics* metrics() const { return metrics_; }
  BatchScheduler* scheduler() const { return scheduler_.get(); }

  // The keep rate a request asks for, or the default; INVALID_ARGUMENT when
  // it is not finite or outside the allowed range.
  absl::StatusOr<double> ResolveKeepRate(std::optional<float> requested) const;

  // LibTorch intra-op threads of each of its workers.
  int intra_op_threads() const { return intra_op_threads_; }

  // Multiply-accumulates per image at keep rate 1, in billions.
  double gmacs_full() const { return full_cost_.gmacs(); }

 private:
  explicit ServableModel(Spec spec, ModelMetrics* metrics);
  // Runs one forward pass on a blank image (on each worker, at its start).
  void WarmUp() const;
  // Runs on a worker thread: one forward pass, then completes every task.
  void RunBatch(std::vector<std::unique_ptr<InferenceTask>> batch, uint64_t batch_id) const;

  Spec spec_;
  ModelMetrics* metrics_;
  double default_keep_rate_ = 1.0;
  int intra_op_threads_ = 1;
  Cost full_cost_;
  std::vector<std::pair<double, Cost>> standard_costs_;
  std::unique_ptr<BatchScheduler> scheduler_;
};

}  // namespace clca::server
