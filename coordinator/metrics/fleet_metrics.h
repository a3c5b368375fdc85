// Turns the fleet's health rounds (FleetOptions::health_observer) into the coordinator's engine
// metrics: running / waiting requests, KV cache usage, and the prefix-cache and preemption
// counters. Aggregation rules: docs/metrics.md ("Coordinator wiring").
//
// Workers report cumulative counters (since their engine started); each round adds, per worker,
// the increase since that worker's previous answer. A counter that went down (the worker's engine
// restarted) counts its new value as the increase.
//
// Thread-safe.
#ifndef G4SERVE_COORDINATOR_METRICS_FLEET_METRICS_H_
#define G4SERVE_COORDINATOR_METRICS_FLEET_METRICS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics/coordinator_metrics.h"
#include "coordinator/fleet/fleet_manager.h"

namespace g4 {

// kv_cache_pool_usage_perc's pool labels: the engine's global (full-attention) pool and its
// sliding-window pool.
inline constexpr char kFullPoolLabel[] = "full";
inline constexpr char kSlidingPoolLabel[] = "sliding";

class FleetMetrics {
 public:
  // `metrics` is not owned and must outlive this object.
  explicit FleetMetrics(CoordinatorMetrics* metrics) : metrics_(metrics) {}

  // One health round: the answers of every worker of the READY replicas (empty: none READY).
  void Observe(const std::vector<WorkerHealth>& round);

 private:
  struct Counters {
    int64_t queried = 0;
    int64_t hits = 0;
    int64_t preemptions = 0;
  };

  CoordinatorMetrics* const metrics_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Counters> last_ ABSL_GUARDED_BY(mu_);  // by worker id
};

// replica_state's labels for every replica (CoordinatorMetrics::SetReplicaStates).
std::vector<CoordinatorMetrics::ReplicaStateLabels> ReplicaStateLabelsOf(
    const std::vector<ReplicaStatus>& replicas);

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_METRICS_FLEET_METRICS_H_
