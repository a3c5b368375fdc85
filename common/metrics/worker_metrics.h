// A worker rank's metrics: step duration, collective duration by op, weights loaded, resident
// memory; every series labelled model_name, rank, replica. Names: docs/metrics.md.
//
// One WorkerMetrics per loaded replica: its series are added to the registry on Create and
// removed when it is destroyed (a re-Load with other labels leaves no stale series).
//
// Thread-safe.
#ifndef G4SERVE_COMMON_METRICS_WORKER_METRICS_H_
#define G4SERVE_COMMON_METRICS_WORKER_METRICS_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics/metrics_server.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace g4 {

// step_duration_seconds: 0.5 ms to 10 s.
const std::vector<double>& WorkerStepBuckets();
// collective_duration_seconds: 10 µs to 10 s.
const std::vector<double>& CollectiveBuckets();

enum class CollectiveOp { kAllReduce, kAllGather, kBroadcast, kBarrier, kAllToAll };
inline constexpr int kNumCollectiveOps = 5;
// "all_reduce", "all_gather", "broadcast", "barrier", "all_to_all".
const char* CollectiveOpName(CollectiveOp op);

struct WorkerMetricsOptions {
  std::string prefix = kDefaultMetricsPrefix;  // ValidateMetricsPrefix
  std::string model_name;                      // required
  int rank = 0;
  int replica = 0;
};

// Resident set size of this process from /proc/self/statm; -1 when unreadable.
int64_t ProcessResidentBytes();

class WorkerMetrics {
 public:
  // INVALID_ARGUMENT for a bad prefix, an empty model name, or a family of the same name but
  // another type already in `registry` (which must outlive the returned object).
  static absl::StatusOr<std::unique_ptr<WorkerMetrics>> Create(prometheus::Registry& registry,
                                                               WorkerMetricsOptions options);
  ~WorkerMetrics();  // removes this object's series from the registry

  WorkerMetrics(const WorkerMetrics&) = delete;
  WorkerMetrics& operator=(const WorkerMetrics&) = delete;

  const WorkerMetricsOptions& options() const { return options_; }

  // One forward step on this rank.
  void ObserveStep(double seconds);
  // One collective on the communicator `group` ("data": the model's tensor/expert-parallel
  // collectives, "control": step descriptors). `group` must come from a small fixed set.
  void ObserveCollective(absl::string_view group, CollectiveOp op, double seconds);
  // The loaded shard: its weight bytes and how long Load took.
  void SetWeightsLoaded(int64_t bytes, double seconds);
  // Sets resident memory from ProcessResidentBytes() (unchanged when unreadable).
  void RefreshMemory();
  void SetResidentMemory(int64_t bytes);

 private:
  WorkerMetrics(prometheus::Registry& registry, WorkerMetricsOptions options);
  void Register();  // may throw (caught by Create)
  prometheus::Labels BaseLabels() const;

  const WorkerMetricsOptions options_;
  prometheus::Registry& registry_;
  prometheus::Family<prometheus::Histogram>* step_family_ = nullptr;
  prometheus::Family<prometheus::Histogram>* collective_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* weights_bytes_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* weights_seconds_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* memory_family_ = nullptr;
  prometheus::Histogram* step_ = nullptr;
  prometheus::Gauge* weights_bytes_ = nullptr;
  prometheus::Gauge* weights_seconds_ = nullptr;
  prometheus::Gauge* memory_ = nullptr;

  struct Group {
    std::string name;
    std::array<prometheus::Histogram*, kNumCollectiveOps> ops{};
  };
  absl::Mutex mu_;
  std::vector<Group> groups_ ABSL_GUARDED_BY(mu_);
};

}  // namespace g4

#endif  // G4SERVE_COMMON_METRICS_WORKER_METRICS_H_
