// The in-memory rendezvous store behind Fleet.StoreSet / Fleet.StoreGet. A replica's ranks
// publish their Gloo addresses / the NCCL unique id here under the replica's store prefix and
// wait for each other's keys. Same semantics as worker/comm/key_value_store.h: Set overwrites and
// wakes waiters; Get waits up to a timeout and fails with DEADLINE_EXCEEDED naming the key.
//
// Hardened (docs/security.md "Rendezvous store"): only keys under a prefix that is open (a load
// in progress: the FleetManager opens the load's unguessable prefix before it sends Load and
// erases it when the load ends) can be set or read; values, the store's total size, waits and the
// number of concurrent waiters are bounded (StoreLimits).
//
// Thread-safe.
#ifndef G4SERVE_COORDINATOR_FLEET_KEY_VALUE_STORE_SERVER_H_
#define G4SERVE_COORDINATOR_FLEET_KEY_VALUE_STORE_SERVER_H_

#include <cstddef>
#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace g4 {

struct StoreLimits {
  // A rank's Gloo address or the NCCL unique id is well under 1 KiB.
  size_t max_value_bytes = 1 << 20;   // larger values: INVALID_ARGUMENT
  size_t max_key_bytes = 1024;        // longer keys: INVALID_ARGUMENT
  size_t max_total_bytes = 64 << 20;  // keys + values of every open load: RESOURCE_EXHAUSTED
  absl::Duration max_wait = absl::Minutes(10);  // a Get waits at most this long
  int max_waiters = 512;  // Gets blocked at once (each holds a server thread): RESOURCE_EXHAUSTED
};

class KeyValueStoreServer {
 public:
  explicit KeyValueStoreServer(StoreLimits limits = {}) : limits_(limits) {}

  // Lets keys under `prefix` (non-empty) be set and read until ErasePrefix(prefix).
  void OpenPrefix(absl::string_view prefix);

  // INVALID_ARGUMENT for an empty or oversized key or value; FAILED_PRECONDITION when the key is
  // under no open prefix; RESOURCE_EXHAUSTED when the store would exceed max_total_bytes.
  absl::Status Set(absl::string_view key, absl::string_view value);

  // Waits until `key` exists or min(`timeout`, max_wait) passes (DEADLINE_EXCEEDED naming the
  // key), `cancelled` (polled every 50 ms; may be null) returns true (CANCELLED), its prefix is
  // erased (FAILED_PRECONDITION) or Shutdown() (UNAVAILABLE). A timeout <= 0 does not wait.
  // FAILED_PRECONDITION at once for a key under no open prefix; RESOURCE_EXHAUSTED when
  // max_waiters Gets are already waiting.
  absl::StatusOr<std::string> Get(absl::string_view key, absl::Duration timeout,
                                  const std::function<bool()>& cancelled = nullptr);

  // Removes every key starting with `prefix` (a replica's keys once its load has ended) and
  // closes `prefix`.
  void ErasePrefix(absl::string_view prefix);

  // Wakes every waiter with UNAVAILABLE; later Gets fail at once when the key is missing.
  void Shutdown();

  size_t size() const;
  size_t total_bytes() const;
  const StoreLimits& limits() const { return limits_; }

 private:
  bool OpenLocked(absl::string_view key) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const StoreLimits limits_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> map_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> open_prefixes_ ABSL_GUARDED_BY(mu_);
  size_t total_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int waiters_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_FLEET_KEY_VALUE_STORE_SERVER_H_
