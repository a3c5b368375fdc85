// The public g4serve.v1.Inference service (sync gRPC API): a thin adapter over GenerationService
// (coordinator/api/generation.h), which holds validation, tokenization, routing, incremental
// detokenization, stop strings, cancellation and in-flight tracking, shared with the
// OpenAI-compatible HTTP server (coordinator/http). Client cancellation or the call's deadline
// cancels the worker call (the leader aborts the sequence). Details: docs/coordinator.md,
// docs/api.md.
#ifndef G4SERVE_COORDINATOR_API_INFERENCE_SERVICE_H_
#define G4SERVE_COORDINATOR_API_INFERENCE_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/generation_config.h"
#include "coordinator/api/generation.h"
#include "coordinator/api/text_codec.h"
#include "coordinator/auth/api_keys.h"
#include "coordinator/fleet/fleet_manager.h"
#include "coordinator/router/router.h"
#include "g4serve/v1/inference.grpc.pb.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"
#include "grpcpp/server_context.h"

namespace g4 {

// gRPC metadata naming the caller's namespace for request ids (docs/api.md "Request ids").
inline constexpr char kNamespaceMetadataKey[] = "g4-namespace";

// The caller of a gRPC request (GenerationService's namespace for request ids): "ns:<value>"
// of the g4-namespace metadata when present (INVALID_ARGUMENT when longer than
// kMaxNamespaceBytes), else "peer:<address without port>", so that every connection from one host
// is one caller. With API keys (`keys` enabled) the request must carry one in its authorization
// metadata ("Bearer <key>"; UNAUTHENTICATED otherwise) and the caller is the key's identity,
// followed by "/ns:<value>" when the g4-namespace metadata is present: a key's requests are
// separate from every other key's, whatever the namespace or the host.
absl::StatusOr<std::string> GrpcCaller(const grpc::ServerContext& context,
                                       const ApiKeys* keys = nullptr);

// UNAUTHENTICATED unless the request carries one of `keys` (or `keys` is null / not enabled).
absl::Status CheckGrpcApiKey(const grpc::ServerContext& context, const ApiKeys* keys);

class InferenceServiceImpl final : public g4serve::v1::Inference::Service {
 public:
  // `codec` may be null (no tokenizer: token-id prompts only). All pointers must outlive the
  // service.
  InferenceServiceImpl(InferenceOptions options, const TextCodec* codec,
                       const FleetManager* fleet, Router* router);
  ~InferenceServiceImpl() override = default;

  // Requires one of `keys` on every call (docs/security.md); null / no keys: open. Call before
  // serving; `keys` must outlive the service.
  void SetApiKeys(const ApiKeys* keys) { api_keys_ = keys; }

  // Cancels every worker call in flight and stops the cancellation watcher. Idempotent.
  void Shutdown() { generation_.Shutdown(); }

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
  int InFlightRequests() const { return generation_.InFlightRequests(); }

  // The shared generation path (the HTTP server uses it too).
  GenerationService* generation() { return &generation_; }

 private:
  GenerationService generation_;
  const ApiKeys* api_keys_ = nullptr;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_API_INFERENCE_SERVICE_H_
