#include "server/observability/metrics.h"

#include <exception>
#include <vector>

#include "absl/strings/str_cat.h"

namespace clca::server {
namespace {

// Latencies from 100 µs to 10 s.
const prometheus::Histogram::BucketBoundaries kSecondsBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
const prometheus::Histogram::BucketBoundaries kBatchSizeBuckets = {1,  2,  3,  4,  6,  8,
                                                                   12, 16, 24, 32, 64, 128};
// The standard keep rates fall on bucket bounds.
const prometheus::Histogram::BucketBoundaries kKeepRateBuckets = {0.1, 0.25, 0.5, 0.7, 0.9, 1.0};
const prometheus::Histogram::BucketBoundaries kAdaptiveKeepRateBuckets = {0.1, 0.2, 0.3, 0.4, 0.5,
                                                                          0.6, 0.7, 0.8, 0.9, 1.0};

constexpr const char* kUnknownModel = "_unknown";

}  // namespace

void ModelMetrics::CountRequest(absl::StatusCode code) const {
  auto index = static_cast<size_t>(code);
  if (index >= requests.size()) index = static_cast<size_t>(absl::StatusCode::kUnknown);
  requests[index]->Increment();
}

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Create() {
  std::unique_ptr<Metrics> metrics(new Metrics());
  absl::Status status = metrics->RegisterFamilies();
  if (!status.ok()) return status;
  metrics->unknown_ = metrics->AddModel(kUnknownModel, 0);
  return metrics;
}

absl::Status Metrics::RegisterFamilies() {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  registry_ = std::make_shared<prometheus::Registry>();
  prometheus::Registry& r = *registry_;
  try {
    requests_ = &BuildCounter()
                     .Name("clca_requests_total")
                     .Help("Classification requests answered, by model, version and status code")
                     .Register(r);
    inferred_images_ = &BuildCounter()
                            .Name("clca_inferred_images_total")
                            .Help("Images run through a model")
                            .Register(r);
    batches_ = &BuildCounter().Name("clca_batches_total").Help("Forward passes run").Register(r);
    gmacs_ = &BuildCounter()
                  .Name("clca_gmacs_total")
                  .Help("Billions of multiply-accumulates computed")
                  .Register(r);
    latency_ = &BuildHistogram()
                    .Name("clca_request_latency_seconds")
                    .Help("From a request's arrival to its answer")
                    .Register(r);
    queue_ = &BuildHistogram()
                  .Name("clca_queue_seconds")
                  .Help("Time a request waited in the batch queue")
                  .Register(r);
    preprocess_ = &BuildHistogram()
                       .Name("clca_preprocess_seconds")
                       .Help("Time decoding and resizing an image")
                       .Register(r);
    compute_ = &BuildHistogram()
                    .Name("clca_compute_seconds")
                    .Help("Time of one batch's forward pass")
                    .Register(r);
    batch_size_ = &BuildHistogram()
                       .Name("clca_batch_size")
                       .Help("Images per forward pass")
                       .Register(r);
    keep_rate_ = &BuildHistogram()
                      .Name("clca_keep_rate")
                      .Help("Keep rate each image was computed at")
                      .Register(r);
    adaptive_keep_rate_ = &BuildHistogram()
                               .Name("clca_adaptive_keep_rate")
                               .Help("Keep rate the server chose for a request that gave "
                                     "min_keep_rate (or for the model's adaptive default)")
                               .Register(r);
    deadline_ = &BuildCounter()
                     .Name("clca_deadline_requests_total")
                     .Help("Calls with a deadline, by outcome: met (answered within it), "
                           "missed (answered or failed past it), refused (answered "
                           "DEADLINE_EXCEEDED at once, predicted to miss it)")
                     .Register(r);
    queue_depth_ = &BuildGauge()
                        .Name("clca_queue_depth")
                        .Help("Requests waiting in the batch queue")
                        .Register(r);
    loads_ = &BuildCounter()
                  .Name("clca_model_loads_total")
                  .Help("Model version loads, by model and result (ok, failed)")
                  .Register(r);
    unloads_ = &BuildCounter()
                    .Name("clca_model_unloads_total")
                    .Help("Model versions retired (unloaded or replaced), by model")
                    .Register(r);
    state_ = &BuildGauge()
                  .Name("clca_model_state")
                  .Help("1 for the state each model version is in (LOADING, AVAILABLE, "
                        "UNLOADING, FAILED, UNLOADED)")
                  .Register(r);
    unauthenticated_ = &BuildCounter()
                            .Name("clca_unauthenticated_total")
                            .Help("Calls refused for a missing or unknown bearer token, by method")
                            .Register(r);
    blas_threads_ = &BuildGauge()
                         .Name("clca_blas_threads")
                         .Help("OpenBLAS threads of one matrix product, process-wide (0: "
                               "LibTorch's BLAS is not OpenBLAS)")
                         .Register(r)
                         .Add({});
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("cannot register metrics: ", e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Metrics::Serve(const MetricsEndpointOptions& options) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start(options, registry_);
  if (!endpoint.ok()) return endpoint.status();
  endpoint_ = *std::move(endpoint);
  return endpoint_->port();
}

void Metrics::CountLoad(const std::string& model, bool ok) {
  loads_->Add({{"model", model}, {"result", ok ? "ok" : "failed"}}).Increment();
}

void Metrics::CountUnload(const std::string& model) { unloads_->Add({{"model", model}}).Increment(); }

void Metrics::SetVersionState(const std::string& model, int64_t version,
                              const std::string& state) {
  static const char* const kStates[] = {"LOADING", "AVAILABLE", "UNLOADING", "FAILED",
                                        "UNLOADED"};
  for (const char* name : kStates) {
    const prometheus::Labels labels = {
        {"model", model}, {"version", std::to_string(version)}, {"state", name}};
    if (state.empty()) {
      if (state_->Has(labels)) state_->Remove(&state_->Add(labels));
    } else {
      state_->Add(labels).Set(state == name ? 1 : 0);
    }
  }
}

void Metrics::CountUnauthenticated(const std::string& method) {
  unauthenticated_->Add({{"method", method}}).Increment();
}

ModelMetrics* Metrics::AddModel(const std::string& model, int64_t version) {
  absl::MutexLock lock(&mu_);
  auto& slot = models_[{model, version}];
  if (slot != nullptr) return slot.get();
  slot = std::make_unique<ModelMetrics>();
  ModelMetrics& m = *slot;
  const prometheus::Labels labels = {{"model", model},
                                     {"version", version > 0 ? std::to_string(version) : ""}};
  for (size_t code = 0; code < m.requests.size(); ++code) {
    prometheus::Labels with_code = labels;
    with_code["code"] = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
    m.requests[code] = &requests_->Add(with_code);
  }
  m.inferred_images = &inferred_images_->Add(labels);
  m.batches = &batches_->Add(labels);
  m.gmacs = &gmacs_->Add(labels);
  m.latency_seconds = &latency_->Add(labels, kSecondsBuckets);
  m.queue_seconds = &queue_->Add(labels, kSecondsBuckets);
  m.preprocess_seconds = &preprocess_->Add(labels, kSecondsBuckets);
  m.compute_seconds = &compute_->Add(labels, kSecondsBuckets);
  m.batch_size = &batch_size_->Add(labels, kBatchSizeBuckets);
  m.keep_rate = &keep_rate_->Add(labels, kKeepRateBuckets);
  m.queue_depth = &queue_depth_->Add(labels);
  m.adaptive_keep_rate = &adaptive_keep_rate_->Add(labels, kAdaptiveKeepRateBuckets);
  for (auto [counter, outcome] : {std::pair{&m.deadline_met, "met"},
                                  std::pair{&m.deadline_missed, "missed"},
                                  std::pair{&m.deadline_refused, "refused"}}) {
    prometheus::Labels with_outcome = labels;
    with_outcome["outcome"] = outcome;
    *counter = &deadline_->Add(with_outcome);
  }
  return &m;
}

}  // namespace clca::server
