// The clca.v1.ModelControl gRPC service: load, unload and reload model
// versions while serving. Behind the bearer tokens when they are set. Each
// call blocks a gRPC thread until its loads end, so it runs on the sync API.
#pragma once

#include <grpcpp/grpcpp.h>

#include "clca/v1/classifier.grpc.pb.h"
#include "server/api/auth.h"
#include "server/repository/model_repository.h"

namespace clca::server {

class ModelControlService final : public v1::ModelControl::Service {
 public:
  // `authorizer` may be null: no token needed.
  ModelControlService(ModelRepository* repository, const TokenAuthorizer* authorizer)
      : repository_(repository), authorizer_(authorizer) {}

  grpc::Status Load(grpc::ServerContext* context, const v1::ModelControlRequest* request,
                    v1::ModelControlResponse* response) override;
  grpc::Status Unload(grpc::ServerContext* context, const v1::ModelControlRequest* request,
                      v1::ModelControlResponse* response) override;
  grpc::Status Reload(grpc::ServerContext* context, const v1::ModelControlRequest* request,
                      v1::ModelControlResponse* response) override;

 private:
  // Checks the token and the request, runs `operation`, and describes every
  // version of the model afterwards.
  template <typename Operation>
  grpc::Status Run(grpc::ServerContext* context, const char* method,
                   const v1::ModelControlRequest& request, v1::ModelControlResponse* response,
                   Operation operation);

  ModelRepository* const repository_;
  const TokenAuthorizer* const authorizer_;
};

}  // namespace clca::server
