// The in-memory rendezvous store behind Fleet.StoreSet / Fleet.StoreGet. A replica's ranks
// publish their Gloo addresses / the NCCL unique id here under the replica's store prefix and
// wait for each other's keys. Same semantics as worker/comm/key_value_store.h: Set overwrites and
// wakes waiters; Get waits up to a timeout and fails with DEADLINE_EXCEEDED naming the key.
//
// Thread-safe.
#ifndef G4SERVE_COORDINATOR_FLEET_KEY_VALUE_STORE_SERVER_H_
#define G4SERVE_COORDINATOR_FLEET_KEY_VALUE_STORE_SERVER_H_

#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace g4 {

class KeyValueStoreServer {
 public:
  void Set(absl::string_view key, absl::string_view value);

  // Waits until `key` exists or `timeout` passes (DEADLINE_EXCEEDED naming the key), `cancelled`
  // (polled every 50 ms; may be null) returns true (CANCELLED), or Shutdown() (UNAVAILABLE).
  // A timeout <= 0 does not wait.
  absl::StatusOr<std::string> Get(absl::string_view key, absl::Duration timeout,
                                  const std::function<bool()>& cancelled = nullptr);

  // Removes every key starting with `prefix` (a replica's keys once it has loaded).
  void ErasePrefix(absl::string_view prefix);

  // Wakes every waiter with UNAVAILABLE; later Gets fail at once when the key is missing.
  void Shutdown();

  size_t size() const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> map_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_FLEET_KEY_VALUE_STORE_SERVER_H_
