// The fleet: registered workers, the replicas formed from them, their health, and their
// recovery.
//
// Workers register (Fleet.Register) in any order. While fewer than `num_replicas` replicas exist
// (num_replicas 0: no limit), replicas form from free workers:
//  * Workers that carry a replica_group (e.g. a LeaderWorkerSet group) wait for their group:
//    once `tensor_parallel_size` workers of one group are free, they form a replica on their
//    own, ranked by replica_rank (all of them carry one) or else in registration order. Ranks
//    that are duplicated, out of [0, tensor_parallel_size), or carried by only some of the
//    group's workers make that replica FAILED for good (nothing is loaded), with a message
//    naming the group and the ranks. Free workers of a group that already has a replica (a
//    restarted group) do not form another one: they take the places of its lost ranks.
//  * Workers without a group form replicas from the first free ungrouped workers in
//    registration order. Grouped and ungrouped workers never share a replica.
// A formed replica gets its plan from MakePlan and a fresh store prefix, and Worker.Load is
// sent to every rank concurrently (each with `load_timeout`). The replica is READY when every
// rank loaded, FAILED with the errors otherwise.
//
// Health and recovery (docs/coordinator.md, "Recovery"): every `health_interval` the health
// loop calls Worker.Health (deadline `health_timeout`) on every worker of every replica that is
// not LOADING or FAILED for good, and moves the replica:
//  * READY -> UNAVAILABLE when a rank does not answer (reason "unreachable") or answers with
//    anything but READY on the replica's current load (FAILED: a collective failed; IDLE or
//    another store_prefix: the process restarted) — the latter also marks the replica for
//    re-forming. READY -> DRAINING when a rank drains (SIGTERM): no new requests; once the
//    leader has no running or waiting request, every rank is unloaded (the draining worker
//    then exits) and the replica waits, UNAVAILABLE, for a worker to take the drained rank's
//    place.
//  * UNAVAILABLE -> READY ("resumed") when every rank answers READY on the same load again
//    (its communicators are intact, e.g. after a stall).
//  * A replica marked for re-forming, or FAILED, whose ranks all answer is formed again once its
//    backoff has passed: Worker.Unload on every rank, then Load with a fresh store prefix
//    (LOADING -> READY, or FAILED with a longer backoff: `reform_backoff` doubling after the
//    second failure in a row, at most `reform_backoff_max`; the count restarts once it stayed
//    READY for `stable_after`).
//  * A rank that does not answer (or answers but is not serving the replica's load) may be
//    replaced by a free worker: one that registered from the same address or with the same
//    replica_group and replica_rank (a restarted process), or, for an ungrouped replica whose
//    rank does not answer, any free ungrouped worker. A worker that registers from the address
//    of a rank replaces it at once.
// Replicas keep their index through all of this; only replicas FAILED for good free their
// `num_replicas` slot.
//
// Thread-safe.
#ifndef G4SERVE_COORDINATOR_FLEET_FLEET_MANAGER_H_
#define G4SERVE_COORDINATOR_FLEET_FLEET_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
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
#include "proto/internal_tls.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace g4 {

enum class ReplicaState { kLoading, kReady, kFailed, kUnavailable, kDraining };
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
  // Re-forming backoff (see the header comment): the first retry after a failure is immediate,
  // the n-th waits reform_backoff * 2^(n-2), at most reform_backoff_max; a replica READY for
  // stable_after starts over.
  absl::Duration reform_backoff = absl::Seconds(1);
  absl::Duration reform_backoff_max = absl::Seconds(60);
  absl::Duration stable_after = absl::Seconds(30);
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
  // Credentials of the channels to the workers (mutual TLS, docs/security.md); null: plaintext.
  std::shared_ptr<const InternalTls> internal_tls;
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
  // Not READY: a short code (a small fixed set, also a metric label): "unreachable" (a rank
  // does not answer), "rank_failed" (a rank reports FAILED: a collective failed),
  // "rank_restarted" (a rank lost the replica's load: restarted, or replaced), "draining",
  // "drained", "reforming", "load_failed", "plan_failed", "bad_ranks"; empty while READY (and
  // while LOADING for the first time).
  std::string reason;
  std::string error;                // the details: which worker, what it said
  std::vector<WorkerInfo> workers;  // by rank; rank 0 is the leader
  std::string store_prefix;         // of the current (or last) load
  int64_t max_context = 0;  // from the plan (0 before it is made)
  bool permanent = false;   // FAILED for good (bad ranks, plan error): never formed again
  int failures = 0;         // failures in a row (see FleetOptions::reform_backoff)
  std::optional<absl::Time> retry_at;  // the next attempt to form it again waits until then
  int recoveries = 0;       // times it returned to READY after leaving it (resumed or re-formed)
  absl::Time since = absl::InfinitePast();  // when it entered its current state
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
  // Replicas READY, and replicas total: max(formed, num_replicas) (formed counts replicas in
  // every state).
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
  // Called (outside the lock, on the health or a load thread) when a replica returns to READY:
  // `reformed` false when it resumed with its communicators intact, true when it was formed
  // again. Optional (the coordinator's metrics).
  void SetRecoveryListener(std::function<void(int replica, bool reformed)> listener);

  // ReplicaSource.
  std::vector<ReplicaEndpoint> Endpoints() const override;

 private:
  struct Worker {
    WorkerInfo info;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<g4serve::worker::v1::Worker::Stub> stub;
  };
  // What a rank said in the last health round.
  enum class RankHealth { kUnknown, kServing, kUnreachable, kNotServing, kDraining };
  struct Replica {
    ReplicaStatus status;
    std::vector<std::shared_ptr<Worker>> workers;  // by rank
    std::vector<RankHealth> health;                // by rank
    bool busy = false;          // a load / re-form / release thread owns it
    bool needs_reform = false;  // its communicators are gone: Unload every rank, Load again
    absl::Time ready_since = absl::InfinitePast();
  };
  // One health probe's answer (CheckHealthOnce).
  struct Probe;
  // Notifications to send after releasing mu_.
  struct Notes {
    bool state_changed = false;
    std::vector<std::pair<int, bool>> recoveries;  // (replica, reformed)
  };

  // Forms every replica the free workers allow; returns whether any was formed.
  bool FormReplicasLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives lost ranks of replicas out of service to free workers (see the header comment);
  // returns whether any was replaced.
  bool FillVacanciesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts `worker` in `rank` of `r` (out of the free lists) and marks `r` for re-forming.
  void ReplaceRankLocked(Replica& r, int rank, std::shared_ptr<Worker> worker, Notes* notes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds a replica of `workers` (by rank): LOADING with a load thread, or FAILED for good with
  // `error`.
  void AddReplicaLocked(std::vector<std::shared_ptr<Worker>> workers, const std::string& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasReplicaSlotLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts `body` on a thread owned by the manager (joined at Shutdown; finished ones are
  // reaped as new ones start).
  void SpawnLocked(std::function<void()> body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forms replica `index` (busy, LOADING): with `unload_first`, Worker.Unload on every rank
  // first; then Load on every rank with a fresh store prefix.
  void LoadReplica(int index, bool unload_first);
  // Unloads every rank of a drained replica (busy, DRAINING), then leaves it UNAVAILABLE
  // waiting for the drained rank's replacement.
  void ReleaseDrainedReplica(int index);
  // Starts one call per rank with `start` (each with `deadline`, cancelled by Shutdown()) and
  // waits for all; the errors, one line per failing rank. nullopt after Shutdown().
  std::optional<std::vector<std::string>> CallEveryRank(
      const std::vector<std::shared_ptr<Worker>>& workers, absl::Duration deadline,
      const std::function<void(int rank, grpc::ClientContext* ctx,
                               std::function<void(grpc::Status)> done)>& start);
  // Worker.Unload on each of `workers` concurrently; the errors, one per failing rank.
  std::vector<std::string> UnloadAll(const std::vector<std::shared_ptr<Worker>>& workers,
                                     const std::string& reason);
  absl::StatusOr<g4serve::v1::ParallelPlan> PlanFor(
      const std::vector<std::shared_ptr<Worker>>& workers) const;
  // Moves `r` to `state` with `reason` / `error` and logs one line. No-op when nothing changes.
  void TransitionLocked(Replica& r, ReplicaState state, const std::string& reason,
                        const std::string& error, Notes* notes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts a failure of `r` toward its backoff and sets retry_at.
  void NoteFailureLocked(Replica& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration BackoffFor(int failures) const;
  // Decides what replica `r` does after a health round (`probes`: its ranks' answers).
  void EvaluateLocked(Replica& r, const std::vector<const Probe*>& probes, Notes* notes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Notify(const Notes& notes);
  void HealthLoop();
  void CheckHealthOnce();
  void Log(const std::string& line) const;
  int ReadyCountLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

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
  struct OwnedThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<OwnedThread> threads_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);  // to cancel
  std::function<void()> listener_ ABSL_GUARDED_BY(mu_);
  std::function<void(int, bool)> recovery_listener_ ABSL_GUARDED_BY(mu_);
  std::thread health_thread_;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_FLEET_FLEET_MANAGER_H_
