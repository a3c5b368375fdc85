// The coordinator's serving metrics: vLLM V1's names, types and bucket boundaries (so vLLM's
// Grafana dashboards, the Gateway API Inference Extension's endpoint picker and KEDA/HPA recipes
// work unchanged), with a configurable prefix in place of "vllm:" and a `model_name` label on
// every series. Names, buckets and meanings: docs/metrics.md.
//
// Thread-safe: every method may be called from any thread (prometheus-cpp metrics are atomic or
// internally locked). Create registers the families in the registry; the object must outlive
// nothing but its own calls (the series stay in the registry after it is destroyed).
#ifndef G4SERVE_COMMON_METRICS_COORDINATOR_METRICS_H_
#define G4SERVE_COMMON_METRICS_COORDINATOR_METRICS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics/metrics_server.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace g4 {

// vLLM's bucket boundaries (vllm/v1/metrics/loggers.py).
// time_to_first_token_seconds.
const std::vector<double>& TtftBuckets();
// inter_token_latency_seconds and request_time_per_output_token_seconds.
const std::vector<double>& InterTokenLatencyBuckets();
// e2e_request_latency_seconds, request_queue_time_seconds, request_inference_time_seconds,
// request_prefill_time_seconds, request_decode_time_seconds.
const std::vector<double>& RequestLatencyBuckets();
// 1, 2, 5, 10, 20, 50, ... up to and including `max_value` (vLLM's build_1_2_5_buckets).
std::vector<double> Buckets125(int64_t max_value);

// Why a request finished successfully (request_success_total's finished_reason label; vLLM's
// values).
enum class FinishedReason { kStop, kLength, kAbort };
// "stop", "length", "abort".
const char* FinishedReasonName(FinishedReason reason);

// request_failure_total's reason label values, by status code; each series exists (at 0) from
// the start.
inline constexpr const char* kRequestFailureReasons[] = {
    "invalid_argument",   "not_found",   "already_exists",    "resource_exhausted",
    "failed_precondition", "unavailable", "deadline_exceeded", "internal",
    "other"};
// The reason for a failed request's status code (one of kRequestFailureReasons).
const char* RequestFailureReason(absl::StatusCode code);

struct CoordinatorMetricsOptions {
  // Prepended to every name: "<prefix>time_to_first_token_seconds". "vllm:" gives vLLM's exact
  // names. Validated by ValidateMetricsPrefix.
  std::string prefix = kDefaultMetricsPrefix;
  // The served model name, the `model_name` label on every series. Required.
  std::string model_name;
  // Upper end of the request_prompt_tokens / request_generation_tokens buckets (1-2-5 up to
  // it); 0: 1048576.
  int64_t max_model_len = 0;
};

class CoordinatorMetrics {
 public:
  // Registers the families in `registry` (which must outlive the returned object).
  // INVALID_ARGUMENT for a bad prefix or an empty model_name, or when a family of the same name
  // but another type is already registered.
  static absl::StatusOr<std::unique_ptr<CoordinatorMetrics>> Create(
      prometheus::Registry& registry, CoordinatorMetricsOptions options);

  CoordinatorMetrics(const CoordinatorMetrics&) = delete;
  CoordinatorMetrics& operator=(const CoordinatorMetrics&) = delete;

  const CoordinatorMetricsOptions& options() const { return options_; }

  // --- per-request latency histograms (seconds; negative values are clamped to 0) ---
  // Arrival at the front door (before tokenization) to the first output token.
  void ObserveTtft(double seconds);
  // Between two consecutive output tokens of one request (one observation per token after the
  // first).
  void ObserveInterTokenLatency(double seconds);
  // Per finished request: decode time / (generation tokens - 1).
  void ObserveTimePerOutputToken(double seconds);
  // Arrival to the last token (finished requests).
  void ObserveE2e(double seconds);
  // Queued to first scheduled.
  void ObserveQueueTime(double seconds);
  // First scheduled to first token.
  void ObservePrefillTime(double seconds);
  // First token to last token.
  void ObserveDecodeTime(double seconds);
  // First scheduled to last token (prefill + decode).
  void ObserveInferenceTime(double seconds);

  // --- per-request token histograms (finished requests) ---
  void ObserveRequestPromptTokens(int64_t tokens);
  void ObserveRequestGenerationTokens(int64_t tokens);

  // --- counters (negative increments are ignored) ---
  void AddPromptTokens(int64_t tokens);      // prompt tokens processed (prefilled)
  void AddGenerationTokens(int64_t tokens);  // tokens generated
  // Prefix cache lookups, in tokens: queried = prompt tokens looked up, hits = tokens found.
  void AddPrefixCacheQueries(int64_t tokens);
  void AddPrefixCacheHits(int64_t tokens);
  void AddPreemptions(int64_t n = 1);
  // One successfully finished request.
  void RequestFinished(FinishedReason reason);
  // One request that failed (request_failure_total{reason}). `reason` should be one of
  // kRequestFailureReasons (RequestFailureReason(code)); another value gets its own series.
  void RequestFailed(absl::string_view reason);

  // --- gauges ---
  void SetRunning(int64_t requests);  // in the engine's running batch, summed over replicas
  void SetWaiting(int64_t requests);  // queued, not yet scheduled
  // Overall KV cache usage in [0, 1] (kv_cache_usage_perc, what routers read). With several
  // pools report the fullest one (admission is bound by it).
  void SetKvUsage(double fraction);
  // Usage of one KV pool in [0, 1] (kv_cache_pool_usage_perc{pool}). `pool` must come from a
  // small fixed set (e.g. "full", "sliding").
  void SetKvPoolUsage(absl::string_view pool, double fraction);
  // Replicas READY (replicas_ready) and replicas in total (replicas: formed, or the configured
  // --num-replicas when larger; not "replicas_total", a suffix Prometheus reserves for
  // counters); g4serve's own. Negative values are clamped to 0.
  void SetReplicas(int64_t ready, int64_t total);
  // --- recovery and migration (g4serve's own, docs/metrics.md) ---
  // A request continued on another replica after its replica failed or left service
  // (request_migrations_total{reason}); `reason` from a small fixed set ("stream_failed",
  // "replica_unavailable").
  void RequestMigrated(absl::string_view reason);
  // A replica returned to READY (replica_recoveries_total{kind}): resumed with its communicators
  // intact, or formed again on every rank.
  void ReplicaRecovered(bool reformed);
  // replica_state{replica, state, reason} = 1, one series per replica (replaces the previous
  // set): its state and, when not READY, the reason code (FleetManager's ReplicaStatus).
  struct ReplicaStateLabels {
    int replica = 0;
    std::string state;   // LOADING, READY, UNAVAILABLE, DRAINING, FAILED
    std::string reason;  // empty while READY
  };
  void SetReplicaStates(const std::vector<ReplicaStateLabels>& replicas);
  // cache_config_info = 1 with these labels (e.g. block_size, cache_dtype,
  // enable_prefix_caching, tp_size); replaces the previous set. Invalid label names are dropped.
  void SetCacheConfigInfo(const std::map<std::string, std::string>& labels);

 private:
  CoordinatorMetrics(prometheus::Registry& registry, CoordinatorMetricsOptions options);
  void Register();  // may throw (caught by Create)
  prometheus::Labels L() const { return {{"model_name", options_.model_name}}; }

  prometheus::Registry& registry_;
  const CoordinatorMetricsOptions options_;

  prometheus::Histogram* ttft_ = nullptr;
  prometheus::Histogram* itl_ = nullptr;
  prometheus::Histogram* tpot_ = nullptr;
  prometheus::Histogram* e2e_ = nullptr;
  prometheus::Histogram* queue_ = nullptr;
  prometheus::Histogram* prefill_ = nullptr;
  prometheus::Histogram* decode_ = nullptr;
  prometheus::Histogram* inference_ = nullptr;
  prometheus::Histogram* request_prompt_tokens_ = nullptr;
  prometheus::Histogram* request_generation_tokens_ = nullptr;
  prometheus::Counter* prompt_tokens_ = nullptr;
  prometheus::Counter* generation_tokens_ = nullptr;
  prometheus::Counter* prefix_queries_ = nullptr;
  prometheus::Counter* prefix_hits_ = nullptr;
  prometheus::Counter* preemptions_ = nullptr;
  prometheus::Counter* success_[3] = {nullptr, nullptr, nullptr};
  prometheus::Gauge* running_ = nullptr;
  prometheus::Gauge* waiting_ = nullptr;
  prometheus::Gauge* kv_usage_ = nullptr;
  prometheus::Gauge* replicas_ready_ = nullptr;
  prometheus::Gauge* replicas_total_ = nullptr;
  prometheus::Family<prometheus::Counter>* failure_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* kv_pool_family_ = nullptr;
  prometheus::Family<prometheus::Gauge>* cache_config_family_ = nullptr;
  prometheus::Family<prometheus::Counter>* migration_family_ = nullptr;
  prometheus::Counter* recoveries_[2] = {nullptr, nullptr};  // resumed, reformed
  prometheus::Family<prometheus::Gauge>* replica_state_family_ = nullptr;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, prometheus::Counter*> failures_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, prometheus::Gauge*> kv_pools_ ABSL_GUARDED_BY(mu_);
  prometheus::Gauge* cache_config_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::flat_hash_map<std::string, prometheus::Counter*> migrations_ ABSL_GUARDED_BY(mu_);
  std::vector<prometheus::Gauge*> replica_states_ ABSL_GUARDED_BY(mu_);
};

}  // namespace g4

#endif  // G4SERVE_COMMON_METRICS_COORDINATOR_METRICS_H_
