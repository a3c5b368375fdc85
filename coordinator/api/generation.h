// The transport-neutral generation path shared by the gRPC Inference service and the
// OpenAI-compatible HTTP server: validation (model name, prompt, sampling/stopping via
// ToSamplingRequest + ResolveSamplingParams, stop-string count, prompt length against the maximum
// context) → tokenization (text: Encode without special tokens; token_ids: as given; chat_json:
// chat template, then Encode) → routing to the least-loaded READY replica's leader
// (Worker.Generate) → relay of each streamed worker message as one g4serve.v1.GenerateResponse:
// tokens, incrementally detokenized text (special tokens kept), stop strings applied (on a match
// the worker call is cancelled and the final response has finish_reason STOP, matched_stop and the
// text cut before the stop). A sink that reports the client gone (write returns false, or
// cancelled() turns true) cancels the worker call (the leader aborts the sequence); so do Abort()
// and the deadline. A request whose replica fails or leaves service is continued on another
// replica (migration.h): the client sees one uninterrupted stream. Details and decisions:
// docs/coordinator.md, docs/api.md.
//
// Request ids belong to a caller (a namespace: "http" for the HTTP API, the gRPC peer's host or
// its "g4-namespace" metadata for gRPC; the API-key work will key it by the authenticated key):
// a client-supplied id only collides with the same caller's ids, and Abort reaches only the
// caller's own requests. Ids the service assigns are unguessable (common/random_id.h), and the
// worker always sees a fresh unguessable id of its own.
#ifndef G4SERVE_COORDINATOR_API_GENERATION_H_
#define G4SERVE_COORDINATOR_API_GENERATION_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/generation_config.h"
#include "common/metrics/coordinator_metrics.h"
#include "coordinator/api/request_limits.h"
#include "coordinator/api/migration.h"
#include "coordinator/api/text_codec.h"
#include "coordinator/api/tokenization_pool.h"
#include "coordinator/fleet/fleet_manager.h"
#include "coordinator/router/router.h"
#include "g4serve/v1/inference.pb.h"
#include "grpcpp/client_context.h"

namespace g4 {

struct InferenceOptions {
  std::string model_id;         // the served model name
  int64_t vocab_size = 0;       // token ids must be in [0, vocab_size)
  GenerationConfig generation_config;
  absl::Duration cancel_poll_interval = absl::Milliseconds(20);
  // Serving metrics (docs/metrics.md), recorded for every request that reaches Generate with a
  // prepared prompt (both APIs). Not owned; must outlive the service. Null: none.
  CoordinatorMetrics* metrics = nullptr;
  // Text and chat prompts are tokenized on this pool (tokenization_pool.h), off the serving
  // threads. Not owned; must outlive the service. Null: on the calling thread.
  TokenizationPool* tokenization_pool = nullptr;
  // How many times one request may move to another replica (migration.h).
  int migration_limit = kDefaultMigrationLimit;
  // How long a stream waits for its replica to return when no other replica is READY
  // (ReplicasToEvacuate); the coordinator passes --collective-timeout.
  absl::Duration stall_limit = absl::Seconds(30);
  // A stream is moved off a replica out of service only once it has delivered nothing for this
  // long: a replica that misses health checks (an overloaded host) but still streams keeps its
  // streams. The coordinator passes --health-timeout.
  absl::Duration progress_grace = absl::Seconds(2);
};

// Where one request's responses go. Callbacks run on the thread that called Generate, except
// `cancelled`, which is also polled from the service's watcher thread (it must be thread-safe).
struct GenerationSink {
  // Receives each response in order; returns false when the client is gone (cancels the request).
  std::function<bool(const g4serve::v1::GenerateResponse&)> write;
  // True once the client went away or cancelled. Optional.
  std::function<bool()> cancelled;
  // Deadline of the whole request (the worker call gets it). Optional.
  std::optional<absl::Time> deadline;
  // When the request arrived at the front door (before parsing and tokenization): the start of
  // its time_to_first_token / e2e latency. Optional; default: when Generate was called.
  std::optional<absl::Time> arrival;
};

class GenerationService {
 public:
  struct Prepared {
    std::vector<int32_t> prompt;
    std::vector<std::string> stop;
  };

  // `codec` may be null (no tokenizer: token-id prompts only). All pointers must outlive the
  // service.
  GenerationService(InferenceOptions options, const TextCodec* codec, const FleetManager* fleet,
                    Router* router);
  ~GenerationService();  // Shutdown()

  // Cancels every worker call in flight and stops the cancellation watcher. Idempotent.
  void Shutdown();

  // NOT_FOUND unless `model` is empty or the served model (INVALID_ARGUMENT when longer than
  // kMaxModelNameBytes).
  absl::Status CheckModel(const std::string& model) const;
  // Validates and tokenizes; INVALID_ARGUMENT names the field. Bounds every repeated field and
  // string (request_limits.h) before looking at its contents, and refuses a text prompt that
  // cannot fit in the maximum context by its size alone, before tokenizing it; tokenization
  // stops as soon as the context is exceeded.
  absl::StatusOr<Prepared> Prepare(const g4serve::v1::GenerateRequest& request) const;
  // Runs a prepared request of `caller` to the end, writing its responses to `sink`. The
  // request id is request.request_id() or, when empty, a new unguessable one (stored in
  // *assigned_id when not null); ALREADY_EXISTS when the caller has that id in flight. OK when
  // a final response (with finish_reason) was written; otherwise the error (CANCELLED when the
  // client went away).
  absl::Status Generate(const std::string& caller, const g4serve::v1::GenerateRequest& request,
                        const Prepared& prepared, const GenerationSink& sink,
                        std::string* assigned_id = nullptr);
  // Prepare + Generate.
  absl::Status Generate(const std::string& caller, const g4serve::v1::GenerateRequest& request,
                        const GenerationSink& sink);

  // Aborts `caller`'s request in flight (it ends with finish_reason ABORTED); false when the
  // caller has no such request.
  bool Abort(const std::string& caller, const std::string& request_id);

  // Requests currently in flight.
  int InFlightRequests() const;

  // Graceful drain (SIGTERM): new requests get UNAVAILABLE from now on; requests in flight go
  // on. Idempotent.
  void BeginDrain();
  bool draining() const;
  // Waits until no request is in flight or `deadline`; true when none is.
  bool WaitForNoRequests(absl::Time deadline) const;

  const InferenceOptions& options() const { return options_; }
  const TextCodec* codec() const { return codec_; }
  const FleetManager* fleet() const { return fleet_; }

 private:
  struct InFlight {
    const GenerationSink* sink = nullptr;
    grpc::ClientContext* worker = nullptr;  // the current worker call, null between attempts
    bool aborted = false;                   // Abort() was called
    int replica = -1;                       // the replica of the current worker call
    bool evacuated = false;  // the call was cancelled because its replica left service
    // When the current worker call started or last delivered a message (absl::ToUnixNanos):
    // written by Run without the lock, read by the watcher.
    std::shared_ptr<std::atomic<int64_t>> progress = std::make_shared<std::atomic<int64_t>>(0);
  };

  // What one request's metrics need, filled in by Run.
  struct Trace {
    absl::Time arrival;
    std::optional<absl::Time> first_token;  // first token relayed to the sink
    absl::Time last_token;
    int64_t generation_tokens = 0;          // tokens relayed
    bool queue_observed = false;
    g4serve::v1::FinishReason finish = g4serve::v1::FINISH_REASON_UNSPECIFIED;
  };

  // Tokenizes a text prompt within the maximum context (the byte bound first, here; the
  // encoding itself on the tokenization pool).
  absl::StatusOr<std::vector<int32_t>> EncodePrompt(absl::string_view text,
                                                    int64_t max_context) const;
  // Runs `work` on the tokenization pool, or here without one.
  absl::StatusOr<std::vector<int32_t>> Tokenize(const TokenizationPool::Work& work) const;
  // `key` is the in-flight key (caller + id); `request_id` what the client sees.
  absl::Status Run(const std::string& key, const std::string& request_id,
                   const g4serve::v1::GenerateRequest& request, const Prepared& prepared,
                   const GenerationSink& sink, Trace* trace);
  // A response with `tokens` tokens is about to be relayed: TTFT / inter-token latency, tokens.
  void OnTokensRelayed(Trace* trace, int tokens, int64_t prompt_tokens);
  // The request ended with `status` (Run's result): success / failure counters, latencies.
  void RecordEnd(const Trace& trace, const absl::Status& status, int64_t prompt_tokens);
  // Sets (or clears, with null) the worker call of in-flight `key` (caller + id) on `replica`;
  // false when it was aborted. With `progress`, the request's progress clock (see InFlight) is
  // stored there.
  bool SetWorkerCall(const std::string& key, grpc::ClientContext* call, int replica = -1,
                     std::shared_ptr<std::atomic<int64_t>>* progress = nullptr);
  bool Aborted(const std::string& key) const;
  // Whether the last worker call of in-flight `key` was cancelled to move it off its replica.
  bool Evacuated(const std::string& key) const;
  bool ShuttingDown() const;
  void WatchCancellations();

  const InferenceOptions options_;
  const TextCodec* const codec_;
  const FleetManager* const fleet_;
  Router* const router_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, InFlight> in_flight_ ABSL_GUARDED_BY(mu_);  // by InFlightKey
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watcher_;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_API_GENERATION_H_
