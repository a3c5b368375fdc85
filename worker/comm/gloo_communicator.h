// Gloo backend of Communicator: CPU collectives over TCP. Data pointers are host memory.
#ifndef G4SERVE_WORKER_COMM_GLOO_COMMUNICATOR_H_
#define G4SERVE_WORKER_COMM_GLOO_COMMUNICATOR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "worker/comm/communicator.h"
#include "worker/comm/key_value_store.h"

namespace g4 {

struct GlooOptions {
  int rank = 0;
  int size = 1;
  // Rendezvous store shared by all ranks of the group; must outlive CreateGlooCommunicator (it is
  // not used after connecting). Not owned.
  KeyValueStore* store = nullptr;
  // Namespace for this group's keys in `store` ("<prefix>/<rank>"). Every group (and every
  // re-bootstrap after a failure) needs its own prefix.
  std::string prefix = "g4/gloo";
  // Address this rank listens on and advertises to its peers. Loopback by default (tests).
  std::string hostname = "127.0.0.1";
  // When non-empty, listen on this network interface (e.g. "eth0") instead of `hostname`.
  std::string interface;
  // Bound on connecting (waiting for every peer's address, then the TCP handshakes) and on each
  // collective.
  absl::Duration timeout = absl::Seconds(30);
};

// Connects to all `size` ranks (full mesh) and returns the communicator. Blocks until every rank
// has called it with the same store and prefix, or fails with DEADLINE_EXCEEDED (naming the ranks
// that did not join) after `timeout`.
absl::StatusOr<std::unique_ptr<Communicator>> CreateGlooCommunicator(const GlooOptions& options);

}  // namespace g4

#endif  // G4SERVE_WORKER_COMM_GLOO_COMMUNICATOR_H_
