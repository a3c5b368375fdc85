// The rendezvous store that bootstraps communicators.
//
// A KeyValueStore is a write-once-per-key map shared by all ranks of a group. Rank bootstrap
// publishes its addresses (Gloo) or rank 0 publishes the NCCL unique id, and the others wait for
// them. In deployment the coordinator implements it over its gRPC control plane; tests and
// single-host runs use the in-memory (threads) or directory (processes) implementations here.
#ifndef G4SERVE_WORKER_COMM_KEY_VALUE_STORE_H_
#define G4SERVE_WORKER_COMM_KEY_VALUE_STORE_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace g4 {

class KeyValueStore {
 public:
  virtual ~KeyValueStore() = default;

  // Stores `value` under `key` and wakes waiters. Setting a key again overwrites it.
  virtual absl::Status Set(absl::string_view key, absl::string_view value) = 0;

  // Returns the value of `key`, waiting up to `timeout` for it to be set. DEADLINE_EXCEEDED (with
  // the key named) when it does not appear in time. Must be safe to call from several threads.
  virtual absl::StatusOr<std::string> Get(absl::string_view key, absl::Duration timeout) = 0;
};

// In-process store for ranks that are threads of one process.
class InMemoryKeyValueStore final : public KeyValueStore {
 public:
  absl::Status Set(absl::string_view key, absl::string_view value) override;
  absl::StatusOr<std::string> Get(absl::string_view key, absl::Duration timeout) override;

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> map_ ABSL_GUARDED_BY(mu_);
};

// Store on a directory shared by the ranks (processes on one host, or a shared filesystem). One
// file per key, written to a temporary name and renamed, so readers never see partial values;
// Get polls. The directory must exist; stale files from an earlier run are the caller's to wipe
// (use a fresh directory per group).
class DirectoryKeyValueStore final : public KeyValueStore {
 public:
  explicit DirectoryKeyValueStore(std::string directory);

  absl::Status Set(absl::string_view key, absl::string_view value) override;
  absl::StatusOr<std::string> Get(absl::string_view key, absl::Duration timeout) override;

 private:
  std::string PathFor(absl::string_view key) const;

  std::string directory_;
};

}  // namespace g4

#endif  // G4SERVE_WORKER_COMM_KEY_VALUE_STORE_H_
