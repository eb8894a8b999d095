#include "server/api/convert.h"

#include <string>
#include <utility>

#include "models/vit/cost.h"

namespace clca::server {

ClassifyInput InputFromProto(const v1::ClassifyRequest& request) {
  ClassifyInput input;
  input.model = request.model();
  if (request.has_version()) input.version = request.version();
  if (request.has_keep_rate()) input.keep_rate = request.keep_rate();
  if (request.has_min_keep_rate()) input.min_keep_rate = request.min_keep_rate();
  input.top_k = request.top_k();
  if (request.has_raw()) {
    input.raw = RawPixels{request.raw().width(), request.raw().height(), request.raw().rgb()};
  } else {
    input.image = request.image();
  }
  return input;
}

void OutputToProto(ClassifyOutput output, v1::ClassifyResponse* response) {
  for (Prediction& p : output.predictions) {
    v1::Prediction* out = response->add_predictions();
    out->set_class_id(p.class_id);
    out->set_label(std::move(p.label));
    out->set_score(p.score);
  }
  response->set_model(std::move(output.model));
  response->set_version(output.version);
  response->set_keep_rate(static_cast<float>(output.keep_rate));
  response->set_request_id(std::move(output.request_id));
  const ClassifyCost& c = output.cost;
  v1::Cost* cost = response->mutable_cost();
  cost->set_gmacs(c.gmacs);
  cost->set_gmacs_full(c.gmacs_full);
  for (int64_t t : c.tokens) cost->add_tokens(t);
  cost->set_batch_size(c.batch_size);
  cost->set_batch_id(c.batch_id);
  cost->set_queue_us(c.queue_us);
  cost->set_preprocess_us(c.preprocess_us);
  cost->set_compute_us(c.compute_us);
  cost->set_total_us(c.total_us);
}

v1::ModelInfo DescribeModel(const ServableModel& servable, const std::vector<int64_t>& versions,
                            bool with_labels) {
  const ModelConfig& c = servable.config();
  v1::ModelInfo info;
  info.set_name(servable.name());
  info.set_version(servable.version());
  for (int64_t v : versions) info.add_versions(v);
  info.set_architecture(c.model);
  info.set_method(ReductionName(c.reduction));
  info.set_backbone(BackboneName(c.backbone));
  info.set_input_size(c.input_size);
  info.set_num_classes(c.num_classes);
  if (with_labels) {
    for (const std::string& label : servable.labels()) info.add_labels(label);
  }
  const KeepRatePolicy& policy = servable.serving().keep_rate;
  info.mutable_keep_rate()->set_default_value(static_cast<float>(servable.default_keep_rate()));
  info.mutable_keep_rate()->set_min(static_cast<float>(policy.min));
  info.mutable_keep_rate()->set_max(static_cast<float>(policy.max));
  for (const auto& [keep_rate, cost] : servable.standard_costs()) {
    v1::KeepRateCost* out = info.add_costs();
    out->set_keep_rate(static_cast<float>(keep_rate));
    out->set_gmacs(cost.gmacs());
    for (int64_t t : cost.tokens) out->add_tokens(t);
  }
  info.set_clca(c.ifa_head && c.clc);
  info.set_parameters(servable.model().parameter_count());
  info.set_device(servable.model().options().device);
  info.set_precision(PrecisionName(servable.model().options().precision));
  const QueueOptions& b = servable.serving().batching;
  info.mutable_batching()->set_max_batch_size(b.max_batch_size);
  info.mutable_batching()->set_max_queue_delay_us(b.max_queue_delay.count());
  info.mutable_batching()->set_queue_capacity(b.queue_capacity);
  info.mutable_batching()->set_workers(servable.pool().workers);
  info.mutable_batching()->set_intra_op_threads(servable.pool().intra_op_threads);
  return info;
}

v1::ModelInfo DescribeVersion(const VersionStatus& status, const std::vector<int64_t>& versions,
                              bool with_labels) {
  v1::ModelInfo info;
  if (status.servable != nullptr) {
    info = DescribeModel(*status.servable, versions, with_labels);
  } else {
    info.set_name(status.model);
    info.set_version(status.version);
    for (int64_t v : versions) info.add_versions(v);
  }
  switch (status.state) {
    case VersionState::kLoading: info.set_state(v1::MODEL_STATE_LOADING); break;
    case VersionState::kAvailable: info.set_state(v1::MODEL_STATE_AVAILABLE); break;
    case VersionState::kUnloading: info.set_state(v1::MODEL_STATE_UNLOADING); break;
    case VersionState::kFailed: info.set_state(v1::MODEL_STATE_FAILED); break;
    case VersionState::kUnloaded: info.set_state(v1::MODEL_STATE_UNLOADED); break;
  }
  info.set_state_reason(status.reason);
  return info;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace clca::server
