// Adapts a g4::KeyValueStore to gloo::rendezvous::Store so Gloo's connectFullMesh can bootstrap
// through the coordinator (or a test store). Gloo's Store API reports errors by throwing; this
// adapter throws GlooStoreError, which carries the store's absl::Status. Only gloo_communicator.cc
// (which catches everything) should hand this adapter to Gloo.
#ifndef G4SERVE_WORKER_COMM_GLOO_STORE_ADAPTER_H_
#define G4SERVE_WORKER_COMM_GLOO_STORE_ADAPTER_H_

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gloo/common/error.h"
#include "gloo/rendezvous/store.h"
#include "worker/comm/key_value_store.h"

namespace g4 {

// Thrown by GlooStoreAdapter when the underlying store fails or a wait times out.
class GlooStoreError : public gloo::IoException {
 public:
  explicit GlooStoreError(absl::Status status)
      : gloo::IoException(std::string(status.message())), status_(std::move(status)) {}
  const absl::Status& status() const { return status_; }

 private:
  absl::Status status_;
};

class GlooStoreAdapter final : public gloo::rendezvous::Store {
 public:
  // Keys are stored as "<prefix>/<key>". `default_timeout` bounds waits that Gloo issues without
  // a timeout (and get()). `store` must outlive the adapter.
  GlooStoreAdapter(KeyValueStore* store, std::string prefix, absl::Duration default_timeout);

  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys,
            const std::chrono::milliseconds& timeout) override;

 private:
  std::string FullKey(const std::string& key) const;
  void WaitAll(const std::vector<std::string>& keys, absl::Duration timeout);

  KeyValueStore* store_;
  std::string prefix_;
  absl::Duration default_timeout_;
};

}  // namespace g4

#endif  // G4SERVE_WORKER_COMM_GLOO_STORE_ADAPTER_H_
