// KeyValueStore over the coordinator's rendezvous store (Fleet.StoreSet / Fleet.StoreGet), so the
// ranks of a replica on different machines can bootstrap their Gloo communicators (and the NCCL
// unique id) through the coordinator they already talk to.
//
// Thread-safe.
#ifndef G4SERVE_WORKER_SERVICE_GRPC_KEY_VALUE_STORE_H_
#define G4SERVE_WORKER_SERVICE_GRPC_KEY_VALUE_STORE_H_

#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include "absl/time/time.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"
#include "worker/comm/key_value_store.h"

namespace g4 {

class GrpcKeyValueStore final : public KeyValueStore {
 public:
  // `rpc_timeout` bounds StoreSet, and is the grace added to a StoreGet's wait for its deadline
  // (the coordinator waits `timeout` for the key, the RPC gets timeout + rpc_timeout).
  explicit GrpcKeyValueStore(std::shared_ptr<grpc::Channel> coordinator,
                             absl::Duration rpc_timeout = absl::Seconds(10));

  // Errors: the RPC's status, annotated with the key ("StoreSet(k): ...").
  absl::Status Set(absl::string_view key, absl::string_view value) override;
  // Sends timeout_ms = `timeout` (at least 0; 0 asks once without waiting). DEADLINE_EXCEEDED
  // naming the key when the coordinator reports it missing (DEADLINE_EXCEEDED or NOT_FOUND) or
  // the RPC's own deadline expires; other RPC errors (UNAVAILABLE, ...) keep their code.
  absl::StatusOr<std::string> Get(absl::string_view key, absl::Duration timeout) override;

 private:
  std::unique_ptr<g4serve::worker::v1::Fleet::Stub> stub_;
  absl::Duration rpc_timeout_;
};

}  // namespace g4

#endif  // G4SERVE_WORKER_SERVICE_GRPC_KEY_VALUE_STORE_H_
