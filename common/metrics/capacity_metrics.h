// The coordinator's capacity metrics (g4serve's own; docs/metrics.md, "Capacity"): KV pages per
// pool per replica, how many more sequences of the maximum context (and of a typical length) fit
// now, and the parallel plan as an info metric. (Replica states: CoordinatorMetrics'
// replica_state.) The coordinator computes the values (coordinator/metrics/capacity_tracker.h);
// this class only owns the series.
//
// Every setter replaces the whole set of series of its families: series of replicas not passed
// any more are removed, so a scrape never sees stale replicas. Thread-safe.
#ifndef G4SERVE_COMMON_METRICS_CAPACITY_METRICS_H_
#define G4SERVE_COMMON_METRICS_CAPACITY_METRICS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics/metrics_server.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace g4 {

struct CapacityMetricsOptions {
  std::string prefix = kDefaultMetricsPrefix;  // ValidateMetricsPrefix
  std::string model_name;                      // the model_name label; required
};

// One pool of one replica.
struct KvPoolPages {
  std::string pool;     // "full" (global) or "sliding"
  int64_t total = 0;
  int64_t available = 0;  // free + cached: what new sequences can get
  int64_t peak = 0;       // most used at once since the engine started
};

// One replica's capacity.
struct ReplicaCapacity {
  int replica = 0;
  std::vector<KvPoolPages> pools;  // READY replicas only; empty otherwise
  // More sequences that fit now, by context name ("max", "typical"); 0 when not READY.
  std::map<std::string, int64_t> sequences;
};

class CapacityMetrics {
 public:
  // INVALID_ARGUMENT for a bad prefix, an empty model name, or a family already registered with
  // another type.
  static absl::StatusOr<std::unique_ptr<CapacityMetrics>> Create(prometheus::Registry& registry,
                                                                 CapacityMetricsOptions options);

  // kv_cache_pages / kv_cache_available_pages / kv_cache_peak_pages {pool, replica} and
  // capacity_sequences {replica, context}.
  void SetReplicaCapacity(const std::vector<ReplicaCapacity>& replicas);
  // capacity_context_tokens {context}: the length each context name stands for.
  void SetCapacityContexts(const std::map<std::string, int64_t>& tokens);
  // plan_info {labels} = 1 (e.g. tensor_parallel_size, expert_parallel_size, replicas).
  void SetPlanInfo(const std::map<std::string, std::string>& labels);

 private:
  // The series of one gauge family, keyed by their labels.
  struct GaugeSet {
    prometheus::Family<prometheus::Gauge>* family = nullptr;
    std::map<prometheus::Labels, prometheus::Gauge*> series;
  };

  CapacityMetrics(prometheus::Registry& registry, CapacityMetricsOptions options)
      : registry_(registry), options_(std::move(options)) {}
  void Register();  // may throw (caught by Create)
  // Makes `set` hold exactly `samples` (labels without model_name → value).
  void Replace(GaugeSet& set, const std::map<prometheus::Labels, double>& samples)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  prometheus::Registry& registry_;
  const CapacityMetricsOptions options_;
  absl::Mutex mu_;
  GaugeSet pages_ ABSL_GUARDED_BY(mu_);
  GaugeSet available_ ABSL_GUARDED_BY(mu_);
  GaugeSet peak_ ABSL_GUARDED_BY(mu_);
  GaugeSet sequences_ ABSL_GUARDED_BY(mu_);
  GaugeSet contexts_ ABSL_GUARDED_BY(mu_);
  GaugeSet plan_ ABSL_GUARDED_BY(mu_);
};

}  // namespace g4

#endif  // G4SERVE_COMMON_METRICS_CAPACITY_METRICS_H_
