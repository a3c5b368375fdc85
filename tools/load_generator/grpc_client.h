// g4-load backend for g4serve.v1.Inference/Generate (server-streaming gRPC).
#ifndef G4SERVE_TOOLS_LOAD_GENERATOR_GRPC_CLIENT_H_
#define G4SERVE_TOOLS_LOAD_GENERATOR_GRPC_CLIENT_H_

#include <memory>
#include <string>

#include "g4serve/v1/inference.grpc.pb.h"
#include "tools/load_generator/load_client.h"

namespace g4::load {

class GrpcLoadClient : public LoadClient {
 public:
  explicit GrpcLoadClient(const LoadOptions& options);
  RequestResult Send(const RequestSpec& spec) override;

 private:
  LoadOptions options_;
  std::unique_ptr<g4serve::v1::Inference::Stub> stub_;
};

}  // namespace g4::load

#endif  // G4SERVE_TOOLS_LOAD_GENERATOR_GRPC_CLIENT_H_
