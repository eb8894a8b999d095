// The mapping between clca.v1 messages and the server's own types.
#pragma once

#include <cstdint>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "clca/v1/classifier.pb.h"
#include "server/pipeline/classify_request.h"
#include "server/repository/model_repository.h"
#include "server/repository/servable.h"

namespace clca::server {

// A view of `request`: the image bytes are not copied, so `request` must
// outlive the returned input.
ClassifyInput InputFromProto(const v1::ClassifyRequest& request);

void OutputToProto(ClassifyOutput output, v1::ClassifyResponse* response);

// Describes a loaded model version; `versions` lists the AVAILABLE versions
// of the model.
v1::ModelInfo DescribeModel(const ServableModel& servable, const std::vector<int64_t>& versions,
                            bool with_labels);
// Describes any version with its state: in full when a copy of it is loaded,
// by name, version and state otherwise.
v1::ModelInfo DescribeVersion(const VersionStatus& status, const std::vector<int64_t>& versions,
                              bool with_labels);

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace clca::server
