// Starting a gRPC server on one address so that a port in use is an error with one clear line.
//
// gRPC servers set SO_REUSEPORT by default: a second process on the same port starts and the
// kernel splits new connections between the two. StartGrpcServer turns that off, and folds
// gRPC's own log line about a failed bind (several hundred characters of nested error) into the
// returned status, so a binary prints one stderr line and exits 1 (docs/coordinator.md).
#ifndef G4SERVE_PROTO_GRPC_LISTEN_H_
#define G4SERVE_PROTO_GRPC_LISTEN_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace g4 {

struct StartedGrpcServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the bound port (the picked one for port 0)
};

// Adds `address` ("host:port", "[v6]:port"; port 0 picks one) as the only listening port of
// `builder` (with `credentials`; null: insecure, SO_REUSEPORT off) and starts it. UNAVAILABLE "cannot listen
// on ADDRESS: <reason>" (e.g. "Address already in use") when it cannot bind.
absl::StatusOr<StartedGrpcServer> StartGrpcServer(
    grpc::ServerBuilder& builder, const std::string& address,
    std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);

}  // namespace g4

#endif  // G4SERVE_PROTO_GRPC_LISTEN_H_
