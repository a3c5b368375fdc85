// The public g4serve.v1.Inference service (sync gRPC API).
//
// Generate: validate (model name, prompt, sampling/stopping via ToSamplingRequest +
// ResolveSamplingParams, prompt length against the maximum context) → tokenize (text: Encode
// without special tokens; token_ids: as given; chat_json: chat template, then Encode) → route to
// the least-loaded READY replica's leader (Worker.Generate, the client's deadline) → relay each
// streamed worker message as one GenerateResponse: tokens, incrementally detokenized text (special
// tokens kept), stop strings applied (on a match the worker call is cancelled and the final
// response has finish_reason STOP, matched_stop and the text cut before the stop). Client
// cancellation or deadline cancels the worker call (the leader aborts the sequence). A worker
// stream that fails with UNAVAILABLE before any message is retried once on another replica.
// Details and decisions: docs/coordinator.md.
#ifndef G4SERVE_COORDINATOR_API_INFERENCE_SERVICE_H_
#define G4SERVE_COORDINATOR_API_INFERENCE_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/generation_config.h"
#include "coordinator/api/text_codec.h"
#include "coordinator/fleet/fleet_manager.h"
#include "coordinator/router/router.h"
#include "g4serve/v1/inference.grpc.pb.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"
#include "grpcpp/server_context.h"

namespace g4 {

struct InferenceOptions {
  std::string model_id;         // the served model name
  int64_t vocab_size = 0;       // token ids must be in [0, vocab_size)
  GenerationConfig generation_config;
  absl::Duration cancel_poll_interval = absl::Milliseconds(20);
};

class InferenceServiceImpl final : public g4serve::v1::Inference::Service {
 public:
  // `codec` may be null (no tokenizer: token-id prompts only). All pointers must outlive the
  // service.
  InferenceServiceImpl(InferenceOptions options, const TextCodec* codec,
                       const FleetManager* fleet, Router* router);
  ~InferenceServiceImpl() override;  // Shutdown()

  // Cancels every worker call in flight and stops the cancellation watcher. Idempotent.
  void Shutdown();

  grpc::Status Generate(grpc::ServerContext* context,
                        const g4serve::v1::GenerateRequest* request,
                        grpc::ServerWriter<g4serve::v1::GenerateResponse>* writer) override;
  grpc::Status Tokenize(grpc::ServerContext* context,
                        const g4serve::v1::TokenizeRequest* request,
                        g4serve::v1::TokenizeResponse* response) override;
  grpc::Status ListModels(grpc::ServerContext* context,
                          const g4serve::v1::ListModelsRequest* request,
                          g4serve::v1::ListModelsResponse* response) override;
  grpc::Status Abort(grpc::ServerContext* context, const g4serve::v1::AbortRequest* request,
                     g4serve::v1::AbortResponse* response) override;

  // Requests currently in flight (for tests).
  int InFlightRequests() const;

 private:
  struct Prepared {
    std::vector<int32_t> prompt;
    std::vector<std::string> stop;
  };
  struct InFlight {
    grpc::ServerContext* server = nullptr;
    grpc::ClientContext* worker = nullptr;  // the current worker call, null between attempts
    bool aborted = false;                   // Abort() was called
  };

  absl::Status CheckModel(const std::string& model) const;
  absl::StatusOr<Prepared> Prepare(const g4serve::v1::GenerateRequest& request) const;
  absl::Status Run(grpc::ServerContext* context, const std::string& request_id,
                   const g4serve::v1::GenerateRequest& request, const Prepared& prepared,
                   grpc::ServerWriter<g4serve::v1::GenerateResponse>* writer);
  // Sets (or clears, with null) the worker call of `request_id`; false when it was aborted.
  bool SetWorkerCall(const std::string& request_id, grpc::ClientContext* call);
  bool Aborted(const std::string& request_id) const;
  std::string NewRequestId();
  void WatchCancellations();

  const InferenceOptions options_;
  const TextCodec* const codec_;
  const FleetManager* const fleet_;
  Router* const router_;
  const std::string id_prefix_;
  std::atomic<uint64_t> next_id_{0};

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, InFlight> in_flight_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watcher_;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_API_INFERENCE_SERVICE_H_
