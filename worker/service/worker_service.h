// The Worker gRPC service (g4serve.worker.v1.Worker): loads this process's shard of a replica,
// runs the replica's engine on rank 0 (the leader) or a follower loop on the other ranks, and
// streams tokens back to the coordinator. Lifecycle and failure semantics: docs/worker.md.
//
// State machine: IDLE → LOADING → READY, or → FAILED (with the error). A worker that fails stays
// up and reports FAILED in Health; Load is accepted again in IDLE and FAILED (the old replica is
// torn down first). A READY worker becomes FAILED when its engine fails (a dead peer) or its
// follower loop ends. ResetToIdle() returns a READY or FAILED worker to IDLE (the worker server
// calls it when a restarted coordinator no longer knows the worker; the coordinator's Unload does
// the same before it forms the replica again). Drain() serves the streams in flight but no new
// ones until the coordinator releases the replica (SIGTERM).
//
// Thread-safe: gRPC calls the handlers on its own threads (sync API).
#ifndef G4SERVE_WORKER_SERVICE_WORKER_SERVICE_H_
#define G4SERVE_WORKER_SERVICE_WORKER_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics/metrics_server.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"
#include "worker/comm/key_value_store.h"

namespace g4 {

struct WorkerServiceOptions {
  // Rendezvous store for the replica's communicators (GrpcKeyValueStore over the coordinator in
  // deployment). Not owned; must outlive the service. Needed only for world_size > 1.
  KeyValueStore* store = nullptr;
  // Address this rank's Gloo endpoints listen on and advertise to the replica's other ranks
  // (the worker's --host; it must be reachable from the other machines).
  std::string gloo_hostname = "127.0.0.1";
  // When non-empty, Gloo listens on this interface instead (e.g. "eth0").
  std::string gloo_interface;
  // Collective timeout when LoadRequest.collective_timeout_ms is 0.
  absl::Duration default_collective_timeout = absl::Seconds(60);
  // How often a streaming Generate checks for cancellation and its deadline while waiting.
  absl::Duration poll_interval = absl::Milliseconds(50);
  // Log load / failure lines to stderr.
  bool log = true;
  // Worker metrics (docs/metrics.md): each loaded replica registers its series here (labels
  // model_name, rank, replica) and removes them when torn down. Null: no metrics.
  std::shared_ptr<prometheus::Registry> metrics_registry;
  std::string metrics_prefix = kDefaultMetricsPrefix;
  // The model_name label; empty: the base name of LoadRequest.model_dir.
  std::string metrics_model_name;
  // --model-root (docs/security.md): when set, Load takes only a model_dir inside it (after
  // lexical normalization, no ".."); anything else is PERMISSION_DENIED before the file system is
  // touched, so Load's errors cannot tell what exists elsewhere on the host. Empty: any path.
  std::string model_root;
};

// OK when `model_root` is empty or `model_dir` is `model_root` or inside it (both lexically
// normalized; a model_dir with ".." left after normalization is outside); PERMISSION_DENIED
// naming `model_root` otherwise.
absl::Status CheckModelRoot(const std::string& model_root, const std::string& model_dir);

class WorkerServiceImpl final : public g4serve::worker::v1::Worker::Service {
 public:
  explicit WorkerServiceImpl(WorkerServiceOptions options);
  ~WorkerServiceImpl() override;  // Shutdown()

  // Load: INVALID_ARGUMENT for a malformed request (rank outside [0, world_size), ...);
  // FAILED_PRECONDITION while LOADING or READY; UNAVAILABLE after Shutdown; otherwise the load's
  // own error (NOT_FOUND / INVALID_ARGUMENT for a bad checkpoint, DEADLINE_EXCEEDED when a peer
  // never joins the rendezvous, ...), prefixed with the stage; the state is then FAILED.
  grpc::Status Load(grpc::ServerContext* context, const g4serve::worker::v1::LoadRequest* request,
                    g4serve::worker::v1::LoadResponse* response) override;
  grpc::Status Health(grpc::ServerContext* context,
                      const g4serve::worker::v1::HealthRequest* request,
                      g4serve::worker::v1::HealthResponse* response) override;
  // Leaders only. FAILED_PRECONDITION when not READY or not rank 0; INVALID_ARGUMENT naming the
  // field for bad sampling parameters, an empty request_id, or a prompt the engine rejects;
  // RESOURCE_EXHAUSTED when the queue is full; UNAVAILABLE when the replica failed (also mid-
  // stream); CANCELLED when the client cancels (the request is aborted in the engine);
  // DEADLINE_EXCEEDED when the call's deadline passes (aborted too).
  grpc::Status Generate(grpc::ServerContext* context,
                        const g4serve::worker::v1::WorkerGenerateRequest* request,
                        grpc::ServerWriter<g4serve::worker::v1::WorkerGenerateResponse>* writer)
      override;
  // Leaders only (FAILED_PRECONDITION otherwise); found = whether the id was queued or running.
  grpc::Status Abort(grpc::ServerContext* context,
                     const g4serve::worker::v1::WorkerAbortRequest* request,
                     g4serve::worker::v1::WorkerAbortResponse* response) override;
  // Tears the replica down (as ResetToIdle) and returns to IDLE: the coordinator forms the
  // replica again, or releases a drained worker. FAILED_PRECONDITION while a Load is in
  // progress; UNAVAILABLE after Shutdown. IDLE: OK, nothing to do.
  grpc::Status Unload(grpc::ServerContext* context,
                      const g4serve::worker::v1::UnloadRequest* request,
                      g4serve::worker::v1::UnloadResponse* response) override;

  // Drain (SIGTERM, docs/worker.md): from now on Health says `draining` and Generate refuses new
  // requests with UNAVAILABLE; streams in flight go on. Returns true once there is nothing left
  // to drain — the coordinator released the replica (Unload), or nothing is loaded (IDLE,
  // FAILED) — and false when `deadline` passes first or CancelDrain() is called. The caller then
  // shuts down: streams still open end with UNAVAILABLE and the coordinator migrates them.
  bool Drain(absl::Time deadline);
  // Makes a Drain() in progress return at once (a second signal).
  void CancelDrain();
  bool draining() const;

  // Stops the engine (rank 0: the followers get the shutdown descriptor) or waits up to
  // `follower_wait` for the follower loop to end. Later Loads fail with UNAVAILABLE. Idempotent.
  void Shutdown(absl::Duration follower_wait = absl::Seconds(5));

  // Back to IDLE: tears the replica down exactly as a Load after FAILED would (the coordinator
  // that loaded it no longer knows this worker, docs/worker.md). Returns false (and changes
  // nothing) while a Load is in progress or after Shutdown.
  bool ResetToIdle();

  g4serve::worker::v1::WorkerState state() const;
  // Refreshes scrape-time metrics (resident memory) of the loaded replica; no-op without one.
  // Called by the metrics server before each scrape.
  void RefreshMetrics();
  // Generate streams that ended because the client cancelled or the deadline passed.
  int64_t cancelled_streams() const { return cancelled_streams_.load(); }

 private:
  struct Replica;

  // Stops a replica (engine shutdown, or waits for the follower loop) and releases it.
  static void TearDown(std::shared_ptr<Replica>& replica, absl::Duration follower_wait);
  // READY → FAILED when the replica died under us.
  void RefreshStateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::shared_ptr<Replica>> LoadReplica(
      const g4serve::worker::v1::LoadRequest& request, int64_t* weight_bytes);
  absl::StatusOr<std::shared_ptr<Replica>> Leader(const char* rpc);

  const WorkerServiceOptions options_;
  std::atomic<int64_t> cancelled_streams_{0};

  mutable absl::Mutex mu_;
  g4serve::worker::v1::WorkerState state_ ABSL_GUARDED_BY(mu_) =
      g4serve::worker::v1::WORKER_STATE_IDLE;
  std::string error_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool drain_cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<Replica> replica_ ABSL_GUARDED_BY(mu_);
};

}  // namespace g4

#endif  // G4SERVE_WORKER_SERVICE_WORKER_SERVICE_H_
