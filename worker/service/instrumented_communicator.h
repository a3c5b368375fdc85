// A Communicator decorator that times every collective of the wrapped communicator into
// WorkerMetrics (worker_collective_duration_seconds{group, op}). docs/metrics.md.
//
// Same threading and failure semantics as the wrapped communicator: every call is forwarded
// unchanged and its status returned; failed calls are timed too.
#ifndef G4SERVE_WORKER_SERVICE_INSTRUMENTED_COMMUNICATOR_H_
#define G4SERVE_WORKER_SERVICE_INSTRUMENTED_COMMUNICATOR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/metrics/worker_metrics.h"
#include "worker/comm/communicator.h"

namespace g4 {

class InstrumentedCommunicator final : public Communicator {
 public:
  // `metrics` is not owned and must outlive this object. `group` names the communicator
  // ("data", "control").
  InstrumentedCommunicator(std::unique_ptr<Communicator> inner, WorkerMetrics* metrics,
                           std::string group)
      : inner_(std::move(inner)), metrics_(metrics), group_(std::move(group)) {}

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  const char* backend() const override { return inner_->backend(); }

  absl::Status AllReduceSum(float* data, int64_t count) override;
  absl::Status AllGather(const float* in, int64_t count_per_rank, float* out) override;
  absl::Status Broadcast(void* data, int64_t bytes, int root) override;
  absl::Status Barrier() override;
  absl::Status AllToAll(const float* in, int64_t count_per_rank, float* out) override;
  // One "broadcast" observation for the whole variable-size broadcast (length + bytes). On a
  // follower's control communicator this includes waiting for the leader's next step.
  absl::Status BroadcastBytes(std::string* payload, int root) override;

  Communicator& inner() { return *inner_; }

 private:
  std::unique_ptr<Communicator> inner_;
  WorkerMetrics* metrics_;
  const std::string group_;
};

}  // namespace g4

#endif  // G4SERVE_WORKER_SERVICE_INSTRUMENTED_COMMUNICATOR_H_
