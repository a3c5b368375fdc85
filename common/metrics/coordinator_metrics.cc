#include "common/metrics/coordinator_metrics.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace g4 {

const std::vector<double>& TtftBuckets() {
  static const auto* b = new std::vector<double>{
      0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
      1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
  return *b;
}

const std::vector<double>& InterTokenLatencyBuckets() {
  static const auto* b = new std::vector<double>{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
                                                 0.3,  0.4,   0.5,  0.75,  1.0, 2.5,  5.0,
                                                 7.5,  10.0,  20.0, 40.0,  80.0};
  return *b;
}

const std::vector<double>& RequestLatencyBuckets() {
  static const auto* b = new std::vector<double>{
      0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
      30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
  return *b;
}

std::vector<double> Buckets125(int64_t max_value) {
  std::vector<double> out;
  for (int64_t exponent = 1; exponent > 0 && exponent <= max_value; exponent *= 10) {
    for (int64_t m : {1, 2, 5}) {
      if (m * exponent > max_value) return out;
      out.push_back(static_cast<double>(m * exponent));
    }
  }
  return out;
}

const char* FinishedReasonName(FinishedReason reason) {
  switch (reason) {
    case FinishedReason::kStop:
      return "stop";
    case FinishedReason::kLength:
      return "length";
    case FinishedReason::kAbort:
      return "abort";
  }
  return "unknown";
}

namespace {

double NonNegative(double v) { return v > 0 ? v : 0; }

}  // namespace

CoordinatorMetrics::CoordinatorMetrics(prometheus::Registry& registry,
                                       CoordinatorMetricsOptions options)
    : registry_(registry), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<CoordinatorMetrics>> CoordinatorMetrics::Create(
    prometheus::Registry& registry, CoordinatorMetricsOptions options) {
  if (absl::Status s = ValidateMetricsPrefix(options.prefix); !s.ok()) return s;
  if (options.model_name.empty()) {
    return absl::InvalidArgumentError("CoordinatorMetrics: model_name is empty");
  }
  std::unique_ptr<CoordinatorMetrics> m(new CoordinatorMetrics(registry, std::move(options)));
  try {
    m->Register();
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("CoordinatorMetrics: registering the metric families: ", e.what()));
  }
  return m;
}

void CoordinatorMetrics::Register() {
  const std::string& p = options_.prefix;
  const prometheus::Labels labels = L();
  auto histogram = [&](const char* name, const char* help, const std::vector<double>& buckets) {
    return &prometheus::BuildHistogram()
                .Name(absl::StrCat(p, name))
                .Help(help)
                .Register(registry_)
                .Add(labels, buckets);
  };
  auto counter = [&](const char* name, const char* help) {
    return &prometheus::BuildCounter().Name(absl::StrCat(p, name)).Help(help).Register(registry_);
  };
  auto gauge = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(absl::StrCat(p, name)).Help(help).Register(registry_);
  };

  ttft_ = histogram("time_to_first_token_seconds",
                    "Histogram of time to first token in seconds.", TtftBuckets());
  itl_ = histogram("inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
                   InterTokenLatencyBuckets());
  tpot_ = histogram("request_time_per_output_token_seconds",
                    "Histogram of time_per_output_token_seconds per request.",
                    InterTokenLatencyBuckets());
  e2e_ = histogram("e2e_request_latency_seconds",
                   "Histogram of e2e request latency in seconds.", RequestLatencyBuckets());
  queue_ = histogram("request_queue_time_seconds",
                     "Histogram of time spent in WAITING phase for request.",
                     RequestLatencyBuckets());
  prefill_ = histogram("request_prefill_time_seconds",
                       "Histogram of time spent in PREFILL phase for request.",
                       RequestLatencyBuckets());
  decode_ = histogram("request_decode_time_seconds",
                      "Histogram of time spent in DECODE phase for request.",
                      RequestLatencyBuckets());
  inference_ = histogram("request_inference_time_seconds",
                         "Histogram of time spent in RUNNING phase for request.",
                         RequestLatencyBuckets());
  const std::vector<double> token_buckets =
      Buckets125(options_.max_model_len > 0 ? options_.max_model_len : 1048576);
  request_prompt_tokens_ = histogram(
      "request_prompt_tokens", "Number of prefill tokens processed.", token_buckets);
  request_generation_tokens_ = histogram(
      "request_generation_tokens", "Number of generation tokens processed.", token_buckets);

  prompt_tokens_ = &counter("prompt_tokens_total", "Number of prefill tokens processed.")->Add(labels);
  generation_tokens_ =
      &counter("generation_tokens_total", "Number of generation tokens processed.")->Add(labels);
  prefix_queries_ = &counter("prefix_cache_queries_total",
                             "Prefix cache queries, in terms of number of queried tokens.")
                         ->Add(labels);
  prefix_hits_ = &counter("prefix_cache_hits_total",
                          "Prefix cache hits, in terms of number of cached tokens.")
                      ->Add(labels);
  preemptions_ =
      &counter("num_preemptions_total", "Cumulative number of preemption from the engine.")
           ->Add(labels);
  auto* success = counter("request_success_total", "Count of successfully processed requests.");
  for (FinishedReason r : {FinishedReason::kStop, FinishedReason::kLength, FinishedReason::kAbort}) {
    prometheus::Labels l = labels;
    l["finished_reason"] = FinishedReasonName(r);
    success_[static_cast<int>(r)] = &success->Add(l);
  }
  failure_family_ = counter("request_failure_total",
                            "Count of requests that failed, by reason.");
  {
    // Every reason exists from the start (at 0), so that rate() and alerts see the first failure.
    absl::MutexLock lock(&mu_);
    for (const char* reason : kRequestFailureReasons) {
      prometheus::Labels l = labels;
      l["reason"] = reason;
      failures_.emplace(reason, &failure_family_->Add(l));
    }
  }

  running_ = &gauge("num_requests_running", "Number of requests in model execution batches.")
                  ->Add(labels);
  waiting_ = &gauge("num_requests_waiting", "Number of requests waiting to be processed.")
                  ->Add(labels);
  kv_usage_ = &gauge("kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.")
                   ->Add(labels);
  replicas_ready_ =
      &gauge("replicas_ready", "Number of serving replicas that are READY.")->Add(labels);
  // Not "replicas_total": Prometheus reserves _total for counters (promtool check metrics).
  replicas_total_ = &gauge("replicas",
                           "Number of serving replicas: formed, or configured when more.")
                         ->Add(labels);
  kv_pool_family_ = gauge("kv_cache_pool_usage_perc",
                          "KV-cache usage of one pool. 1 means 100 percent usage.");
  cache_config_family_ = gauge("cache_config_info", "Information of the LLMEngine CacheConfig.");
  migration_family_ = counter(
      "request_migrations_total",
      "Requests continued on another replica after theirs failed, by reason (not in vLLM).");
  auto* recoveries = counter("replica_recoveries_total",
                             "Replicas that returned to READY by themselves, by kind: resumed "
                             "(communicators intact) or reformed (not in vLLM).");
  for (int reformed : {0, 1}) {
    prometheus::Labels l = labels;
    l["kind"] = reformed ? "reformed" : "resumed";
    recoveries_[reformed] = &recoveries->Add(l);
  }
  replica_state_family_ = gauge(
      "replica_state",
      "1 for each replica, labelled with its state and why it is not READY (not in vLLM).");
}

void CoordinatorMetrics::ObserveTtft(double s) { ttft_->Observe(NonNegative(s)); }
void CoordinatorMetrics::ObserveInterTokenLatency(double s) { itl_->Observe(NonNegative(s)); }
void CoordinatorMetrics::ObserveTimePerOutputToken(double s) { tpot_->Observe(NonNegative(s)); }
void CoordinatorMetrics::ObserveE2e(double s) { e2e_->Observe(NonNegative(s)); }
void CoordinatorMetrics::ObserveQueueTime(double s) { queue_->Observe(NonNegative(s)); }
void CoordinatorMetrics::ObservePrefillTime(double s) { prefill_->Observe(NonNegative(s)); }
void CoordinatorMetrics::ObserveDecodeTime(double s) { decode_->Observe(NonNegative(s)); }
void CoordinatorMetrics::ObserveInferenceTime(double s) { inference_->Observe(NonNegative(s)); }

void CoordinatorMetrics::ObserveRequestPromptTokens(int64_t tokens) {
  request_prompt_tokens_->Observe(static_cast<double>(std::max<int64_t>(tokens, 0)));
}
void CoordinatorMetrics::ObserveRequestGenerationTokens(int64_t tokens) {
  request_generation_tokens_->Observe(static_cast<double>(std::max<int64_t>(tokens, 0)));
}

void CoordinatorMetrics::AddPromptTokens(int64_t n) {
  if (n > 0) prompt_tokens_->Increment(static_cast<double>(n));
}
void CoordinatorMetrics::AddGenerationTokens(int64_t n) {
  if (n > 0) generation_tokens_->Increment(static_cast<double>(n));
}
void CoordinatorMetrics::AddPrefixCacheQueries(int64_t n) {
  if (n > 0) prefix_queries_->Increment(static_cast<double>(n));
}
void CoordinatorMetrics::AddPrefixCacheHits(int64_t n) {
  if (n > 0) prefix_hits_->Increment(static_cast<double>(n));
}
void CoordinatorMetrics::AddPreemptions(int64_t n) {
  if (n > 0) preemptions_->Increment(static_cast<double>(n));
}

const char* RequestFailureReason(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return "invalid_argument";
    case absl::StatusCode::kNotFound:
      return "not_found";
    case absl::StatusCode::kAlreadyExists:
      return "already_exists";
    case absl::StatusCode::kResourceExhausted:
      return "resource_exhausted";
    case absl::StatusCode::kFailedPrecondition:
      return "failed_precondition";
    case absl::StatusCode::kUnavailable:
      return "unavailable";
    case absl::StatusCode::kDeadlineExceeded:
      return "deadline_exceeded";
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
      return "internal";
    default:
      return "other";
  }
}

void CoordinatorMetrics::RequestFinished(FinishedReason reason) {
  success_[static_cast<int>(reason)]->Increment();
}

void CoordinatorMetrics::RequestFailed(absl::string_view reason) {
  absl::MutexLock lock(&mu_);
  auto it = failures_.find(reason);
  if (it == failures_.end()) {
    prometheus::Labels l = L();
    l["reason"] = std::string(reason);
    it = failures_.emplace(std::string(reason), &failure_family_->Add(l)).first;
  }
  it->second->Increment();
}

void CoordinatorMetrics::SetRunning(int64_t n) { running_->Set(static_cast<double>(n)); }
void CoordinatorMetrics::SetWaiting(int64_t n) { waiting_->Set(static_cast<double>(n)); }
void CoordinatorMetrics::SetKvUsage(double fraction) { kv_usage_->Set(fraction); }

void CoordinatorMetrics::SetReplicas(int64_t ready, int64_t total) {
  replicas_ready_->Set(static_cast<double>(std::max<int64_t>(ready, 0)));
  replicas_total_->Set(static_cast<double>(std::max<int64_t>(total, 0)));
}

void CoordinatorMetrics::SetKvPoolUsage(absl::string_view pool, double fraction) {
  absl::MutexLock lock(&mu_);
  auto it = kv_pools_.find(pool);
  if (it == kv_pools_.end()) {
    prometheus::Labels l = L();
    l["pool"] = std::string(pool);
    it = kv_pools_.emplace(std::string(pool), &kv_pool_family_->Add(l)).first;
  }
  it->second->Set(fraction);
}

void CoordinatorMetrics::RequestMigrated(absl::string_view reason) {
  absl::MutexLock lock(&mu_);
  auto it = migrations_.find(reason);
  if (it == migrations_.end()) {
    prometheus::Labels l = L();
    l["reason"] = std::string(reason);
    it = migrations_.emplace(std::string(reason), &migration_family_->Add(l)).first;
  }
  it->second->Increment();
}

void CoordinatorMetrics::ReplicaRecovered(bool reformed) { recoveries_[reformed ? 1 : 0]->Increment(); }

void CoordinatorMetrics::SetReplicaStates(const std::vector<ReplicaStateLabels>& replicas) {
  absl::MutexLock lock(&mu_);
  for (prometheus::Gauge* g : replica_states_) replica_state_family_->Remove(g);
  replica_states_.clear();
  for (const ReplicaStateLabels& r : replicas) {
    prometheus::Labels l = L();
    l["replica"] = absl::StrCat(r.replica);
    l["state"] = r.state;
    l["reason"] = r.reason;
    prometheus::Gauge* g = &replica_state_family_->Add(l);
    g->Set(1);
    replica_states_.push_back(g);
  }
}

void CoordinatorMetrics::SetCacheConfigInfo(const std::map<std::string, std::string>& labels) {
  prometheus::Labels l = L();
  for (const auto& [name, value] : labels) {
    if (IsMetricsLabelName(name) && name != "model_name") l[name] = value;
  }
  absl::MutexLock lock(&mu_);
  if (cache_config_ != nullptr) cache_config_family_->Remove(cache_config_);
  cache_config_ = &cache_config_family_->Add(l);
  cache_config_->Set(1);
}

}  // namespace g4
