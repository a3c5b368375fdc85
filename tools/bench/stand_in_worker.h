// A stand-in worker: speaks the real internal protocol (it registers with Fleet.Register and
// serves g4serve.worker.v1.Worker: Load, Health, Generate, Abort, Unload) but has no model. Its
// Generate streams one token per message every `itl`, as a replica leader decoding at that pace
// would, so a coordinator in front of stand-ins is measured alone: its CPU per streamed token
// and the latency it adds (tools/bench/coordinator_bench.cc, docs/performance.md).
//
// Generate: max_tokens from the request (default `default_max_tokens`), token ids cycling
// through [first_token_id, vocab_size) so that the coordinator detokenizes real tokens; a
// request with resume_output_token_ids continues after them (as a real engine does), the last
// message has finish LENGTH and usage. Cancellation and deadlines end the stream.
//
// Thread-safe.
#ifndef G4SERVE_TOOLS_BENCH_STAND_IN_WORKER_H_
#define G4SERVE_TOOLS_BENCH_STAND_IN_WORKER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"
#include "grpcpp/server.h"
#include "proto/internal_tls.h"

namespace g4 {

struct StandInWorkerOptions {
  std::string coordinator;         // host:port of the Fleet service; empty: do not register
  std::string host = "127.0.0.1";  // bind and advertise
  int port = 0;                    // 0: any free port
  absl::Duration itl = absl::Milliseconds(20);  // between two tokens of one stream
  int default_max_tokens = 16;     // when the request sets no max_tokens
  int32_t vocab_size = 512;        // token ids stay below this
  int32_t first_token_id = 10;     // and at or above this (skips special tokens)
  // Mutual TLS on the internal plane (the worker's side, requiring the coordinator's identity),
  // shared by the stand-ins of one process; null: plaintext.
  std::shared_ptr<const InternalTls> tls;
};

class StandInWorker final : public g4serve::worker::v1::Worker::Service {
 public:
  // Starts serving and, with a coordinator, registers (retrying UNAVAILABLE for up to 20 s).
  static absl::StatusOr<std::unique_ptr<StandInWorker>> Start(StandInWorkerOptions options);
  ~StandInWorker() override;  // Stop()

  void Stop();
  std::string address() const;
  const std::string& worker_id() const { return worker_id_; }
  int64_t tokens_streamed() const { return tokens_streamed_.load(); }

  // The token a stream sends at output position `i`.
  int32_t TokenAt(int64_t i) const;

  grpc::Status Load(grpc::ServerContext* context, const g4serve::worker::v1::LoadRequest* request,
                    g4serve::worker::v1::LoadResponse* response) override;
  grpc::Status Health(grpc::ServerContext* context,
                      const g4serve::worker::v1::HealthRequest* request,
                      g4serve::worker::v1::HealthResponse* response) override;
  grpc::Status Generate(grpc::ServerContext* context,
                        const g4serve::worker::v1::WorkerGenerateRequest* request,
                        grpc::ServerWriter<g4serve::worker::v1::WorkerGenerateResponse>* writer)
      override;
  grpc::Status Abort(grpc::ServerContext* context,
                     const g4serve::worker::v1::WorkerAbortRequest* request,
                     g4serve::worker::v1::WorkerAbortResponse* response) override;
  grpc::Status Unload(grpc::ServerContext* context,
                      const g4serve::worker::v1::UnloadRequest* request,
                      g4serve::worker::v1::UnloadResponse* response) override;

 private:
  explicit StandInWorker(StandInWorkerOptions options) : options_(std::move(options)) {}

  const StandInWorkerOptions options_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string worker_id_;
  std::atomic<int64_t> tokens_streamed_{0};
  std::atomic<int> running_{0};
  std::atomic<bool> stopping_{false};
  absl::Mutex mu_;
  std::string store_prefix_ ABSL_GUARDED_BY(mu_);  // of the last Load; empty: IDLE
};

}  // namespace g4

#endif  // G4SERVE_TOOLS_BENCH_STAND_IN_WORKER_H_
