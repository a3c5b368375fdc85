// absl::Status <-> grpc::Status. The canonical codes are numerically identical.
#ifndef G4SERVE_WORKER_SERVICE_STATUS_UTIL_H_
#define G4SERVE_WORKER_SERVICE_STATUS_UTIL_H_

#include <string>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace g4 {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

inline absl::Status ToAbslStatus(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace g4

#endif  // G4SERVE_WORKER_SERVICE_STATUS_UTIL_H_
