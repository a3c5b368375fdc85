#include "coordinator/metrics/fleet_metrics.h"

#include <algorithm>

namespace g4 {
namespace {

// The increase of a cumulative counter; a decrease means it restarted from 0.
int64_t Increase(int64_t previous, int64_t current) {
  if (current < 0) return 0;
  return current >= previous ? current - previous : current;
}

}  // namespace

void FleetMetrics::Observe(const std::vector<WorkerHealth>& round) {
  absl::MutexLock lock(&mu_);
  int64_t running = 0, waiting = 0;
  double full_sum = 0, sliding_sum = 0;
  int leaders = 0;
  int64_t queried = 0, hits = 0, preemptions = 0;
  for (const WorkerHealth& w : round) {
    const auto& r = w.response;
    // Followers run no engine and report zeros; only leaders count.
    if (w.rank != 0) continue;
    running += r.running();
    waiting += r.waiting();
    full_sum += r.kv_usage_global();
    sliding_sum += r.kv_usage_sliding();
    ++leaders;
    Counters& last = last_[w.worker_id];
    queried += Increase(last.queried, r.prefix_cache_queried_tokens());
    hits += Increase(last.hits, r.prefix_cache_hit_tokens());
    preemptions += Increase(last.preemptions, r.preemptions());
    last = Counters{r.prefix_cache_queried_tokens(), r.prefix_cache_hit_tokens(), r.preemptions()};
  }
  metrics_->SetRunning(running);
  metrics_->SetWaiting(waiting);
  // Per pool: the mean over READY replicas (the fleet's fraction of pages in use when replicas
  // are alike); overall: the fuller pool, as for a single engine.
  const double full = leaders > 0 ? full_sum / leaders : 0.0;
  const double sliding = leaders > 0 ? sliding_sum / leaders : 0.0;
  metrics_->SetKvPoolUsage(kFullPoolLabel, full);
  metrics_->SetKvPoolUsage(kSlidingPoolLabel, sliding);
  metrics_->SetKvUsage(std::max(full, sliding));
  metrics_->AddPrefixCacheQueries(queried);
  metrics_->AddPrefixCacheHits(hits);
  metrics_->AddPreemptions(preemptions);
}

std::vector<CoordinatorMetrics::ReplicaStateLabels> ReplicaStateLabelsOf(
    const std::vector<ReplicaStatus>& replicas) {
  std::vector<CoordinatorMetrics::ReplicaStateLabels> out;
  for (const ReplicaStatus& r : replicas) {
    out.push_back({r.index, std::string(ReplicaStateName(r.state)), r.reason});
  }
  return out;
}

}  // namespace g4
