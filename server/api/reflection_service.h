// gRPC server reflection (grpc.reflection.v1alpha) for the services the
// server registers, answered from the compiled-in descriptors. Follows the
// bearer-token rule like the clca.v1 services.
#pragma once

#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "server/api/auth.h"

namespace clca::server {

class ReflectionService final
    : public grpc::reflection::v1alpha::ServerReflection::CallbackService {
 public:
  // `services`: full names of the services to list; `authorizer` may be null
  // (no tokens required).
  ReflectionService(std::vector<std::string> services, const TokenAuthorizer* authorizer);

  grpc::ServerBidiReactor<grpc::reflection::v1alpha::ServerReflectionRequest,
                          grpc::reflection::v1alpha::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext* context) override;

  // The answer to one request.
  grpc::reflection::v1alpha::ServerReflectionResponse Answer(
      const grpc::reflection::v1alpha::ServerReflectionRequest& request) const;

 private:
  const std::vector<std::string> services_;
  const TokenAuthorizer* const authorizer_;
};

}  // namespace clca::server
