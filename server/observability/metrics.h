// Prometheus metrics of the server, served over HTTP at /metrics. Families
// are registered once at start-up and the metrics of each model version are
// created when it is loaded, so the request path only updates values.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/observability/metrics_endpoint.h"

namespace clca::server {

// The metrics of one model version (or of requests naming no loaded model).
struct ModelMetrics {
  // Requests answered, by canonical status code.
  std::array<prometheus::Counter*, 17> requests{};
  prometheus::Counter* inferred_images = nullptr;
  prometheus::Counter* batches = nullptr;
  prometheus::Counter* gmacs = nullptr;
  prometheus::Histogram* latency_seconds = nullptr;
  prometheus::Histogram* queue_seconds = nullptr;
  prometheus::Histogram* preprocess_seconds = nullptr;
  prometheus::Histogram* compute_seconds = nullptr;
  prometheus::Histogram* batch_size = nullptr;
  prometheus::Histogram* keep_rate = nullptr;
  prometheus::Gauge* queue_depth = nullptr;
  // Keep rates the server chose for requests that let it (min_keep_rate).
  prometheus::Histogram* adaptive_keep_rate = nullptr;
  // Calls with a deadline: answered within it, answered or failed past it,
  // and refused at once because they were predicted to miss it.
  prometheus::Counter* deadline_met = nullptr;
  prometheus::Counter* deadline_missed = nullptr;
  prometheus::Counter* deadline_refused = nullptr;

  void CountRequest(absl::StatusCode code) const;
};

class Metrics {
 public:
  static absl::StatusOr<std::unique_ptr<Metrics>> Create();

  // Serves /metrics (port 0 picks a free one) and returns the port bound.
  absl::StatusOr<int> Serve(const MetricsEndpointOptions& options);

  // Creates the metrics of a model version; call at load time, not per
  // request. The same (model, version) returns the same object.
  ModelMetrics* AddModel(const std::string& model, int64_t version);
  // Requests that named no loaded model.
  ModelMetrics* unknown_model() const { return unknown_; }

  // OpenBLAS's thread count (0: the BLAS is not OpenBLAS).
  void SetBlasThreads(int threads) { blas_threads_->Set(threads); }

  // Model lifecycle events (not on the request path).
  void CountLoad(const std::string& model, bool ok);
  void CountUnload(const std::string& model);
  // clca_model_state{model, version, state} is 1 for `state` and 0 for the
  // others; "" removes the version's samples.
  void SetVersionState(const std::string& model, int64_t version, const std::string& state);
  // Calls refused for a missing or unknown bearer token, by RPC.
  void CountUnauthenticated(const std::string& method);

 private:
  Metrics() = default;
  absl::Status RegisterFamilies();

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<MetricsEndpoint> endpoint_;
  prometheus::Family<prometheus::Counter>* requests_ = nullptr;
  prometheus::Family<prometheus::Counter>* inferred_images_ = nullptr;
  prometheus::Family<prometheus::Counter>* batches_ = nullptr;
  prometheus::Family<prometheus::Counter>* gmacs_ = nullptr;
  prometheus::Family<prometheus::Histogram>* latency_ = nullptr;
  prometheus::Family<prometheus::Histogram>* queue_ = nullptr;
  prometheus::Family<prometheus::Histogram>* preprocess_ = nullptr;
  prometheus::Family<prometheus::Histogram>* compute_ = nullptr;
  prometheus::Family<prometheus::Histogram>* batch_size_ = nullptr;
  prometheus::Family<prometheus::Histogram>* keep_rate_ = nullptr;
  prometheus::Family<prometheus::Histogram>* adaptive_keep_rate_ = nullptr;
  prometheus::Family<prometheus::Counter>* deadline_ = nullptr;
  prometheus::Family<prometheus::Gauge>* queue_depth_ = nullptr;
  prometheus::Gauge* blas_threads_ = nullptr;
  prometheus::Family<prometheus::Counter>* loads_ = nullptr;
  prometheus::Family<prometheus::Counter>* unloads_ = nullptr;
  prometheus::Family<prometheus::Gauge>* state_ = nullptr;
  prometheus::Family<prometheus::Counter>* unauthenticated_ = nullptr;

  absl::Mutex mu_;
  std::map<std::pair<std::string, int64_t>, std::unique_ptr<ModelMetrics>> models_
      ABSL_GUARDED_BY(mu_);
  ModelMetrics* unknown_ = nullptr;
};

}  // namespace clca::server
