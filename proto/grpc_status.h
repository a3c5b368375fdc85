// Conversions between absl::Status (used everywhere inside g4serve) and grpc::Status (the wire).
// The codes are the same canonical codes with the same numbers. One place for both directions:
// the coordinator and the worker both convert at their gRPC boundaries.
#ifndef G4SERVE_PROTO_GRPC_STATUS_H_
#define G4SERVE_PROTO_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace g4 {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace g4

#endif  // G4SERVE_PROTO_GRPC_STATUS_H_
