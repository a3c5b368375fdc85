#include "coordinator/metrics/capacity_tracker.h"

#include <algorithm>
#include <limits>

#include "coordinator/metrics/fleet_metrics.h"

namespace g4 {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

int64_t SequencesThatFit(const g4serve::worker::v1::HealthResponse& leader, int64_t sliding_window,
                         int64_t tokens) {
  const int64_t block = leader.kv_block_size();
  if (block <= 0 || tokens <= 0) return 0;
  int64_t fit = std::numeric_limits<int64_t>::max();
  bool limited = false;
  const int64_t blocks = CeilDiv(tokens, block);
  if (leader.kv_global_pages_total() > 0) {
    fit = std::min(fit, leader.kv_global_pages_available() / blocks);
    limited = true;
  }
  if (leader.kv_sliding_pages_total() > 0) {
    const int64_t sliding =
        sliding_window > 0 ? std::min(blocks, CeilDiv(sliding_window - 1, block) + 1) : blocks;
    fit = std::min(fit, leader.kv_sliding_pages_available() / sliding);
    limited = true;
  }
  return limited ? fit : 0;
}

CapacityTracker::CapacityTracker(CapacityMetrics* metrics, CapacityTrackerOptions options)
    : metrics_(metrics), options_(options) {}

void CapacityTracker::ObserveHealth(const std::vector<WorkerHealth>& round) {
  absl::MutexLock lock(&mu_);
  leaders_.clear();  // a replica missing from the round is not READY any more
  for (const WorkerHealth& w : round) {
    if (w.rank == 0) leaders_[w.replica] = w.response;
  }
  PublishLocked();
}

void CapacityTracker::ObserveReplicas(const std::vector<ReplicaStatus>& replicas) {
  absl::MutexLock lock(&mu_);
  replicas_ = replicas;
  PublishLocked();
}

void CapacityTracker::PublishLocked() {
  std::vector<ReplicaCapacity> capacity;
  int64_t max_context = 0;
  for (const ReplicaStatus& r : replicas_) {
    max_context = std::max(max_context, r.max_context);
    ReplicaCapacity c;
    c.replica = r.index;
    c.sequences["max"] = 0;
    if (options_.typical_tokens > 0) c.sequences["typical"] = 0;
    const auto leader = leaders_.find(r.index);
    if (r.state == ReplicaState::kReady && leader != leaders_.end()) {
      const auto& h = leader->second;
      if (h.kv_global_pages_total() > 0) {
        c.pools.push_back({kFullPoolLabel, h.kv_global_pages_total(),
                           h.kv_global_pages_available(), h.kv_global_pages_peak()});
      }
      if (h.kv_sliding_pages_total() > 0) {
        c.pools.push_back({kSlidingPoolLabel, h.kv_sliding_pages_total(),
                           h.kv_sliding_pages_available(), h.kv_sliding_pages_peak()});
      }
      c.sequences["max"] = SequencesThatFit(h, options_.sliding_window, r.max_context);
      if (options_.typical_tokens > 0) {
        c.sequences["typical"] =
            SequencesThatFit(h, options_.sliding_window, options_.typical_tokens);
      }
    }
    capacity.push_back(std::move(c));
  }
  std::map<std::string, int64_t> contexts;
  if (max_context > 0) contexts["max"] = max_context;
  if (options_.typical_tokens > 0) contexts["typical"] = options_.typical_tokens;
  metrics_->SetReplicaCapacity(capacity);
  metrics_->SetCapacityContexts(contexts);
}

}  // namespace g4
