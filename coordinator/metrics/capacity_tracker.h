// Capacity of the fleet for the coordinator's capacity metrics (common/metrics/capacity_metrics.h,
// docs/metrics.md "Capacity"): from each READY replica's leader health (pages per pool, block
// size) and the replica list (states, errors, each plan's max context), how many more sequences
// of the maximum context and of a typical length fit now, per replica. (Each replica's state and
// why it is not READY: replica_state, from coordinator/metrics/fleet_metrics.h.)
//
// A sequence of T tokens needs ceil(T/B) global pages and min(ceil(T/B), ceil((W-1)/B) + 1)
// sliding pages (the decode bound of docs/kv_cache.md); what fits is the smaller of the two pools'
// available pages divided by those (a pool with no pages — a model without that layer kind —
// does not limit). Available pages count cached prefix pages, which new sequences evict.
//
// Thread-safe.
#ifndef G4SERVE_COORDINATOR_METRICS_CAPACITY_TRACKER_H_
#define G4SERVE_COORDINATOR_METRICS_CAPACITY_TRACKER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics/capacity_metrics.h"
#include "coordinator/fleet/fleet_manager.h"

namespace g4 {

struct CapacityTrackerOptions {
  int64_t sliding_window = 0;  // the model's (0: none)
  // capacity_sequences{context="typical"} counts sequences of this many tokens (0: not exported).
  int64_t typical_tokens = 0;
};

// Sequences of `tokens` tokens that fit in the pages available now.
int64_t SequencesThatFit(const g4serve::worker::v1::HealthResponse& leader, int64_t sliding_window,
                         int64_t tokens);

class CapacityTracker {
 public:
  // `metrics` is not owned and must outlive the tracker.
  CapacityTracker(CapacityMetrics* metrics, CapacityTrackerOptions options);

  // A health round (FleetOptions::health_observer): the workers of the READY replicas.
  void ObserveHealth(const std::vector<WorkerHealth>& round);
  // The fleet's replicas (after a state change, and after every health round).
  void ObserveReplicas(const std::vector<ReplicaStatus>& replicas);

 private:
  void PublishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  CapacityMetrics* const metrics_;
  const CapacityTrackerOptions options_;
  absl::Mutex mu_;
  std::vector<ReplicaStatus> replicas_ ABSL_GUARDED_BY(mu_);
  // The last health answer of each READY replica's leader, by replica index.
  std::map<int, g4serve::worker::v1::HealthResponse> leaders_ ABSL_GUARDED_BY(mu_);
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_METRICS_CAPACITY_TRACKER_H_
