// A worker process's gRPC server: the Worker service (worker_service.h), the standard health
// service and server reflection, bound to host:port (port 0 picks one), plus registration with
// the coordinator (Fleet.Register, then Fleet.Heartbeat to re-register with a restarted
// coordinator) and the rendezvous store over the coordinator's Fleet service.
#ifndef G4SERVE_WORKER_SERVICE_WORKER_SERVER_H_
#define G4SERVE_WORKER_SERVICE_WORKER_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/metrics/metrics_server.h"
#include "proto/internal_tls.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"
#include "worker/service/grpc_key_value_store.h"
#include "worker/service/worker_service.h"

namespace g4 {

struct WorkerServerOptions {
  std::string coordinator;         // host:port of the coordinator's Fleet service (required)
  std::string host = "127.0.0.1";  // address to bind, advertise, and use for Gloo
  int port = 0;                    // 0: any free port (see WorkerServer::port())
  std::string gloo_interface;      // optional network interface for Gloo
  absl::Duration register_timeout = absl::Seconds(60);
  // After StartHeartbeat: how often Fleet.Heartbeat checks that the coordinator still knows this
  // worker (docs/worker.md). Zero: no heartbeat.
  absl::Duration heartbeat_interval = absl::Seconds(2);
  int max_receive_message_bytes = 64 << 20;
  bool log = true;
  // Prometheus /metrics (docs/metrics.md): -1 disabled, 0 any free port (metrics_port()).
  int metrics_port = -1;
  std::string metrics_host;  // empty: `host`
  std::string metrics_prefix = kDefaultMetricsPrefix;
  // The model_name label; empty: the loaded checkpoint directory's base name.
  std::string metrics_model_name;
  // Load takes only model directories inside it (WorkerServiceOptions::model_root); empty: any.
  std::string model_root;
  // Sent in RegisterRequest (docs/coordinator.md): workers of one replica_group form one
  // replica, ordered by replica_rank. Empty group / rank < 0: not sent. In Kubernetes these come
  // from the LeaderWorkerSet env (LWS_GROUP_INDEX, LWS_WORKER_INDEX).
  std::string replica_group;
  int replica_rank = -1;
  // Mutual TLS on the internal plane (proto/internal_tls.h, docs/security.md): the Worker
  // service takes calls only from, and the Fleet channel dials only, a certificate of the CA
  // that names peer_name. Disabled (no files): plaintext.
  InternalTlsOptions internal_tls = InternalTlsRequiring(kDefaultCoordinatorIdentity);
};

// This machine as the coordinator sees it: kind "cpu", the model name from /proc/cpuinfo, total
// memory from /proc/meminfo.
g4serve::worker::v1::DeviceInfo LocalCpuDeviceInfo();

// "host:port", with brackets around IPv6 literals.
std::string JoinHostPort(const std::string& host, int port);

class WorkerServer {
 public:
  // Binds and starts serving. Errors: INVALID_ARGUMENT for missing options or unusable TLS files
  // (CheckInternalTlsOptions), UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<WorkerServer>> Start(WorkerServerOptions options);
  ~WorkerServer();  // Shutdown()

  int port() const { return port_; }
  // host:port as advertised to the coordinator.
  std::string address() const { return JoinHostPort(options_.host, port_); }
  WorkerServiceImpl& service() { return *service_; }
  // The metrics endpoint; null when metrics_port is -1.
  MetricsServer* metrics() { return metrics_.get(); }
  // The bound metrics port; -1 when disabled.
  int metrics_port() const { return metrics_ != nullptr ? metrics_->port() : -1; }

  // Fleet.Register(address, LocalCpuDeviceInfo(), replica_group, replica_rank), retried with exponential backoff (100 ms to
  // 2 s) until the coordinator answers or register_timeout passes (then the last error, as
  // DEADLINE_EXCEEDED), or Shutdown() is called (CANCELLED). Returns the assigned worker id.
  // A coordinator that answers with an error other than UNAVAILABLE/DEADLINE_EXCEEDED is not
  // retried.
  absl::StatusOr<std::string> Register();

  // Starts the heartbeat thread (no-op when heartbeat_interval is zero): every
  // heartbeat_interval, Fleet.Heartbeat(worker_id, address). NOT_FOUND (a restarted coordinator
  // that does not know this worker): the replica is torn down (WorkerServiceImpl::ResetToIdle)
  // and the worker registers again (Register(); on failure it tries again next round), keeping
  // the new id. Other errors (coordinator down): tried again next round. Call at most once;
  // Shutdown() stops the thread.
  void StartHeartbeat(std::string worker_id);
  // The id of the last successful registration (StartHeartbeat's, then re-registrations).
  std::string worker_id() const;

  // Graceful drain (SIGTERM): the worker keeps serving its streams but takes no new requests,
  // and Health tells the coordinator it is draining; the coordinator marks the replica DRAINING
  // and releases it (Unload) once its streams are done. Returns true when released (or nothing
  // was loaded), false after `timeout` or CancelDrain(). Call Shutdown() afterwards: streams
  // still open then end with UNAVAILABLE, which the coordinator migrates. docs/worker.md.
  bool Drain(absl::Duration timeout);
  void CancelDrain() { service_->CancelDrain(); }

  // Stops the engine / follower, then the server (in-flight calls get `grace`). Idempotent and
  // safe from any thread except a gRPC handler.
  void Shutdown(absl::Duration grace = absl::Seconds(2));
  // Blocks until the server has shut down.
  void Wait();

 private:
  explicit WorkerServer(WorkerServerOptions options) : options_(std::move(options)) {}

  void HeartbeatLoop();
  // Sleeps `d` or until Shutdown(); returns false on Shutdown.
  bool SleepUnlessShuttingDown(absl::Duration d);
  // Tracks the Fleet call in flight (Shutdown() cancels it); false when already shutting down.
  bool BeginCall(grpc::ClientContext* ctx);
  void EndCall(grpc::ClientContext* ctx);

  const WorkerServerOptions options_;
  std::unique_ptr<InternalTls> tls_;
  std::shared_ptr<grpc::Channel> coordinator_;
  std::unique_ptr<GrpcKeyValueStore> store_;
  std::unique_ptr<WorkerServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  // Declared after service_: destroyed first (its scrape callback uses the service).
  std::unique_ptr<MetricsServer> metrics_;
  int port_ = 0;
  std::atomic<bool> shutting_down_{false};
  mutable absl::Mutex heartbeat_mu_;
  bool stop_ ABSL_GUARDED_BY(heartbeat_mu_) = false;
  std::string worker_id_ ABSL_GUARDED_BY(heartbeat_mu_);
  std::vector<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(heartbeat_mu_);  // to cancel
  std::thread heartbeat_thread_ ABSL_GUARDED_BY(heartbeat_mu_);
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace g4

#endif  // G4SERVE_WORKER_SERVICE_WORKER_SERVER_H_
