// The fleet: registered workers, the replicas formed from them, and their health.
//
// Workers register (Fleet.Register) in any order. While fewer than `num_replicas` replicas exist
// (num_replicas 0: no limit), replicas form from free workers:
//  * Workers that carry a replica_group (e.g. a LeaderWorkerSet group) wait for their group:
//    once `tensor_parallel_size` workers of one group are free, they form a replica on their
//    own, ranked by replica_rank (all of them carry one) or else in registration order. Ranks
//    that are duplicated, out of [0, tensor_parallel_size), or carried by only some of the
//    group's workers make that replica FAILED at once (nothing is loaded), with a message naming
//    the group and the ranks. A group that formed a replica starts over: workers registering
//    later with the same group name (a restarted group) form a new replica.
//  * Workers without a group form replicas from the first free ungrouped workers in
//    registration order. Grouped and ungrouped workers never share a replica.
// A formed replica gets its plan from MakePlan and a fresh store prefix, and Worker.Load is
// sent to every rank concurrently (each with `load_timeout`). The replica is READY when every rank loaded, FAILED with the first error
// otherwise. A health loop calls Worker.Health on every worker of every READY replica each
// `health_interval` (deadline `health_timeout`); a worker that does not answer, or answers with a
// state other than READY, makes its replica UNAVAILABLE. FAILED and UNAVAILABLE replicas are not
// reloaded in this version and their workers are not reused, but they no longer count against
// `num_replicas`: free workers (e.g. a restarted group registering again) form a replacement.
//
// Thread-safe.
#ifndef G4SERVE_COORDINATOR_FLEET_FLEET_MANAGER_H_
#define G4SERVE_COORDINATOR_FLEET_FLEET_MANAGER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/model_config.h"
#include "coordinator/fleet/key_value_store_server.h"
#include "coordinator/planner/planner.h"
#include "coordinator/router/router.h"
#include "g4serve/v1/plan.pb.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace g4 {

enum class ReplicaState { kLoading, kReady, kFailed, kUnavailable };
absl::string_view ReplicaStateName(ReplicaState state);  // "LOADING", "READY", ...

// One worker's answer to a health round (see FleetOptions::health_observer).
struct WorkerHealth {
  int replica = 0;
  int rank = 0;
  std::string worker_id;
  g4serve::worker::v1::HealthResponse response;
};

struct FleetOptions {
  std::string model_dir;   // sent to workers in LoadRequest.model_dir
  std::string model_name;  // PlanRequest.model_name
  ModelConfig model_config;
  int tensor_parallel_size = 1;  // ranks per replica
  int expert_parallel_size = 1;
  int num_replicas = 0;  // 0: as many as the registered workers allow
  g4serve::worker::v1::EngineOptions engine;
  absl::Duration collective_timeout = absl::Seconds(30);
  absl::Duration load_timeout = absl::Minutes(10);
  absl::Duration health_interval = absl::Seconds(1);
  absl::Duration health_timeout = absl::Seconds(2);
  // Device memory assumed for a worker that registers with memory_bytes 0 (CPU workers):
  // 0 = this host's physical memory.
  int64_t default_memory_bytes = 0;
  // Called with one line per replica state change and per registration (default: stderr).
  std::function<void(const std::string&)> log;
  // Called on the health thread after every health round with the answers of the workers of
  // replicas that are still READY after the round (every worker of such a replica answered
  // READY); an empty vector when no replica is READY. Must not call back into the manager
  // while blocking it for long. Optional (the coordinator's metrics, docs/metrics.md).
  std::function<void(const std::vector<WorkerHealth>&)> health_observer;
};

// The PlanRequest a replica of `options` is planned with, without its devices (kind, count and
// memory come from the registered workers): degrees, context, batch and sequence limits. The
// coordinator also plans with it at start, before any worker registers (startup_checks.h).
PlanRequest FleetPlanRequest(const FleetOptions& options);

struct WorkerInfo {
  std::string id;       // "w0", "w1", ... in registration order
  std::string address;  // host:port
  g4serve::worker::v1::DeviceInfo device;
  std::string replica_group;  // RegisterRequest.replica_group; empty: ungrouped
  int replica_rank = -1;      // RegisterRequest.replica_rank; -1: not given
};

struct ReplicaStatus {
  int index = 0;
  ReplicaState state = ReplicaState::kLoading;
  std::string error;                // FAILED / UNAVAILABLE: why
  std::vector<WorkerInfo> workers;  // by rank; rank 0 is the leader
  std::string store_prefix;
  int64_t max_context = 0;  // from the plan (0 before it is made)
};

class FleetManager final : public ReplicaSource {
 public:
  explicit FleetManager(FleetOptions options, KeyValueStoreServer* store);
  ~FleetManager() override;  // Shutdown()

  // Starts the health loop.
  void Start();
  // Stops the health loop, cancels Load calls in flight and joins every thread. Idempotent.
  void Shutdown();

  // Adds a worker; returns its id. Forms replicas when enough workers are free (the Loads run in
  // the background). INVALID_ARGUMENT without an address; UNAVAILABLE after Shutdown().
  absl::StatusOr<std::string> Register(const g4serve::worker::v1::RegisterRequest& request);

  // Fleet.Heartbeat: OK when a worker with this id AND this address is registered (free or in a
  // replica of any state), NOT_FOUND otherwise (e.g. this coordinator restarted since the worker
  // registered: it then registers again). docs/coordinator.md.
  absl::Status Heartbeat(absl::string_view worker_id, absl::string_view address) const;

  std::vector<ReplicaStatus> Replicas() const;
  // Workers registered and not (yet) in a replica (grouped or not).
  int FreeWorkers() const;
  // Replicas READY, and replicas total: max(formed, num_replicas) (formed counts FAILED and
  // UNAVAILABLE replicas too).
  int ReadyReplicas() const;
  int TotalReplicas() const;
  // The largest context a request may use: the plan's max_context of a formed replica, else
  // engine.max_model_len, else the config's max_position_embeddings.
  int64_t MaxContext() const;

  // Blocks until replica `index` exists and is in `state`, or `timeout`. For tests and tools.
  bool WaitForState(int index, ReplicaState state, absl::Duration timeout) const;

  // Called after every replica state change and after replicas form (outside the lock): ready
  // or total count changed, etc.
  void SetStateListener(std::function<void()> listener);

  // ReplicaSource.
  std::vector<ReplicaEndpoint> Endpoints() const override;

 private:
  struct Worker {
    WorkerInfo info;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<g4serve::worker::v1::Worker::Stub> stub;
  };
  struct Replica {
    ReplicaStatus status;
    std::vector<std::shared_ptr<Worker>> workers;
  };

  // Forms every replica the free workers allow; returns whether any was formed (the caller
  // notifies the state listener after releasing mu_).
  bool FormReplicasLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds a replica of `workers` (by rank): LOADING with a load thread, or FAILED with `error`.
  void AddReplicaLocked(std::vector<std::shared_ptr<Worker>> workers, const std::string& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasReplicaSlotLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LoadReplica(int index);
  absl::StatusOr<g4serve::v1::ParallelPlan> PlanFor(
      const std::vector<std::shared_ptr<Worker>>& workers) const;
  // Moves replica `index` to `state` unless it is already FAILED/UNAVAILABLE (or `only_from` is
  // set and the state differs); logs and notifies.
  void SetState(int index, ReplicaState state, const std::string& error,
                std::optional<ReplicaState> only_from = std::nullopt);
  void HealthLoop();
  void CheckHealthOnce();
  void Log(const std::string& line) const;

  const FleetOptions options_;
  KeyValueStoreServer* const store_;

  mutable absl::Mutex mu_;
  // Free ungrouped workers, in registration order.
  std::vector<std::shared_ptr<Worker>> free_ ABSL_GUARDED_BY(mu_);
  // Free grouped workers by replica_group, each in registration order (no empty vectors).
  std::map<std::string, std::vector<std::shared_ptr<Worker>>> free_groups_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Replica>> replicas_ ABSL_GUARDED_BY(mu_);
  int next_worker_id_ ABSL_GUARDED_BY(mu_) = 0;
  int load_generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> load_threads_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);  // to cancel
  std::function<void()> listener_ ABSL_GUARDED_BY(mu_);
  std::thread health_thread_;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_FLEET_FLEET_MANAGER_H_
