// The clca.v1.Classifier gRPC service on the callback API. Reactions only
// validate and hand requests to the pipeline; calls are finished from the
// pipeline's threads.
#pragma once

#include <atomic>

#include <grpcpp/grpcpp.h>

#include "clca/v1/classifier.grpc.pb.h"
#include "server/api/auth.h"
#include "server/pipeline/classify_pipeline.h"
#include "server/repository/model_repository.h"

namespace clca::server {

// How many ClassifyStream calls, and items in each, the server holds.
struct StreamLimits {
  // Open ClassifyStream calls, server-wide; more are refused with
  // RESOURCE_EXHAUSTED.
  int max_open_streams = 256;
  // Items of one stream read but not yet answered; the server reads no
  // further item of that stream until one is answered.
  size_t max_in_flight = 64;
};

class ClassifierService final : public v1::Classifier::CallbackService {
 public:
  // `authorizer` may be null: no token needed.
  ClassifierService(const ModelRepository* repository, ClassifyPipeline* pipeline,
                    const TokenAuthorizer* authorizer = nullptr,
                    const StreamLimits& streams = {})
      : repository_(repository),
        pipeline_(pipeline),
        authorizer_(authorizer),
        streams_(streams) {}

  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const v1::ClassifyRequest* request,
                                     v1::ClassifyResponse* response) override;
  grpc::ServerBidiReactor<v1::ClassifyStreamRequest, v1::ClassifyStreamResponse>* ClassifyStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context,
                                     const v1::GetModelRequest* request,
                                     v1::ModelInfo* response) override;

 private:
  // OK when the call may proceed.
  absl::Status Authorize(const grpc::CallbackServerContext& context, const char* method) const;

  const ModelRepository* repository_;
  ClassifyPipeline* pipeline_;
  const TokenAuthorizer* authorizer_;
  const StreamLimits streams_;
  std::atomic<int> open_streams_{0};
};

// The call's deadline on the steady clock (max() when it has none).
TimePoint SteadyDeadline(const grpc::CallbackServerContext& context);

}  // namespace clca::server
