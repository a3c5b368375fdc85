// grpc.reflection.v1.ServerReflection for gRPC 1.51, whose reflection plugin only offers
// grpc.reflection.v1alpha (Debian's libgrpc++ ships no v1). The two protocols have the same
// messages under another package name, so they are the same bytes on the wire: this service
// takes v1 requests as raw bytes and relays each one over an in-process channel to the server's
// own v1alpha service, and its answer back. Clients that ask for v1 first (newer grpcurl, grpcui,
// Postman) work; v1alpha stays as it is.
#ifndef G4SERVE_COORDINATOR_API_REFLECTION_V1_SERVICE_H_
#define G4SERVE_COORDINATOR_API_REFLECTION_V1_SERVICE_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/channel.h"
#include "grpcpp/impl/service_type.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/sync_stream.h"

namespace g4 {

inline constexpr char kReflectionV1Method[] =
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
inline constexpr char kReflectionV1AlphaMethod[] =
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

class ReflectionV1Service final : public grpc::Service {
 public:
  ReflectionV1Service();

  // The channel to the server's own v1alpha service (Server::InProcessChannel, once built).
  // Until it is set, calls fail with UNAVAILABLE.
  void SetV1AlphaChannel(std::shared_ptr<grpc::Channel> channel);

 private:
  grpc::Status Relay(grpc::ServerContext* context,
                     grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* stream);

  absl::Mutex mu_;
  std::shared_ptr<grpc::Channel> channel_ ABSL_GUARDED_BY(mu_);
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_API_REFLECTION_V1_SERVICE_H_
