#include "worker/service/worker_service.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/checkpoint.h"
#include "common/generation_config.h"
#include "common/metrics/worker_metrics.h"
#include "common/status_macros.h"
#include "kernels/ops.h"
#include "worker/comm/communicator.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/engine/engine.h"
#include "worker/engine/model_runner.h"
#include "worker/engine/sequence.h"
#include "worker/model/gemma4_model.h"
#include "worker/sampling/proto_conversion.h"
#include "worker/sampling/sampling_params.h"
#include "worker/service/instrumented_communicator.h"
#include "worker/service/structured_output.h"
#include "proto/grpc_status.h"

namespace g4 {

namespace wv1 = ::g4serve::worker::v1;

namespace {

// Step durations into WorkerMetrics.
class MetricsStepObserver final : public StepObserver {
 public:
  explicit MetricsStepObserver(WorkerMetrics* metrics) : metrics_(metrics) {}
  void OnStep(const StepDescriptor&, absl::Duration forward) override {
    metrics_->ObserveStep(absl::ToDoubleSeconds(forward));
  }

 private:
  WorkerMetrics* metrics_;
};

}  // namespace

struct WorkerServiceImpl::Replica {
  // Declared first, destroyed last: the communicators, engine and follower report into them.
  std::unique_ptr<WorkerMetrics> metrics;  // null without a metrics registry
  std::unique_ptr<StepObserver> step_observer;
  std::string model_dir;
  std::string store_prefix;  // LoadRequest.store_prefix: which load of the replica this is
  int rank = 0;
  int world_size = 1;
  GenerationConfig generation_config;
  int64_t vocab_size = 0;
  // Rank 0: structured outputs (null without a tokenizer.json).
  std::unique_ptr<grammar::GrammarCompiler> grammar_compiler;
  // Declared before the engine and the follower's runner: they use them until destroyed.
  std::unique_ptr<Communicator> control;
  std::unique_ptr<Communicator> data;
  std::unique_ptr<Engine> engine;  // rank 0
  std::thread follower;            // ranks 1..N-1

  absl::Mutex mu;
  bool follower_done ABSL_GUARDED_BY(mu) = false;
  absl::Status follower_status ABSL_GUARDED_BY(mu);

  ~Replica() {
    engine.reset();
    if (follower.joinable()) follower.join();
  }

  // Why the replica can no longer serve; OK while it can.
  absl::Status Failure() {
    if (engine != nullptr && engine->Stats().failed) {
      return absl::UnavailableError(
          "engine failed: a step failed (a peer rank is gone or a collective timed out)");
    }
    if (follower.joinable()) {
      absl::MutexLock lock(&mu);
      if (follower_done) {
        if (!follower_status.ok()) {
          return absl::UnavailableError(
              absl::StrCat("follower stopped: ", follower_status.message()));
        }
        return absl::UnavailableError("follower stopped: the leader shut the replica down");
      }
    }
    return absl::OkStatus();
  }
};

absl::Status CheckModelRoot(const std::string& model_root, const std::string& model_dir) {
  if (model_root.empty()) return absl::OkStatus();
  const std::filesystem::path root = std::filesystem::path(model_root).lexically_normal();
  const std::filesystem::path dir = std::filesystem::path(model_dir).lexically_normal();
  // Component-wise prefix: "/models-evil" is not inside "/models".
  auto r = root.begin();
  auto d = dir.begin();
  for (; r != root.end() && d != dir.end(); ++r, ++d) {
    if (r->empty() && std::next(r) == root.end()) break;  // root's trailing "/" (empty name)
    if (*r != *d) break;
  }
  const bool inside = (r == root.end() || (r->empty() && std::next(r) == root.end())) &&
                      dir.is_absolute() == root.is_absolute();
  bool climbs = false;
  for (const auto& part : dir) climbs = climbs || part == "..";
  if (!inside || climbs) {
    return absl::PermissionDeniedError(
        absl::StrCat("model_dir: outside this worker's --model-root ", model_root));
  }
  return absl::OkStatus();
}

namespace {

void Log(bool enabled, const std::string& line) {
  if (enabled) std::fprintf(stderr, "g4-worker: %s\n", line.c_str());
}

// Engine outputs of one Generate call, handed from the engine thread to the RPC thread.
class OutputQueue {
 public:
  void Push(const EngineOutput& out) {
    absl::MutexLock lock(&mu_);
    items_.push_back(out);
    cv_.Signal();
  }

  // Moves every queued output into `out`, waiting up to `timeout` for the first. False on
  // timeout.
  bool PopAll(std::vector<EngineOutput>* out, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    absl::MutexLock lock(&mu_);
    while (items_.empty()) {
      if (cv_.WaitWithDeadline(&mu_, deadline) && items_.empty()) return false;
    }
    for (auto& item : items_) out->push_back(std::move(item));
    items_.clear();
    return true;
  }

 private:
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<EngineOutput> items_ ABSL_GUARDED_BY(mu_);
};

g4serve::v1::FinishReason ToFinishReason(EngineFinish f) {
  switch (f) {
    case EngineFinish::kStop:
      return g4serve::v1::FINISH_REASON_STOP;
    case EngineFinish::kLength:
      return g4serve::v1::FINISH_REASON_LENGTH;
    case EngineFinish::kAborted:
      return g4serve::v1::FINISH_REASON_ABORTED;
    default:
      return g4serve::v1::FINISH_REASON_UNSPECIFIED;
  }
}

// Bytes of the checkpoint's weight files divided among the ranks: the shard's size as stored.
int64_t EstimateShardBytes(const std::string& dir, int world_size) {
  std::error_code ec;
  int64_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".safetensors") {
      const auto size = entry.file_size(ec);
      if (!ec) total += static_cast<int64_t>(size);
    }
  }
  return total / std::max(world_size, 1);
}

}  // namespace

// A follower whose loop does not end within `follower_wait` (its leader is unreachable) is
// detached and its replica deliberately leaked: the thread still uses it, and the process is on
// its way out.
void WorkerServiceImpl::TearDown(std::shared_ptr<Replica>& replica,
                                 absl::Duration follower_wait) {
  if (replica == nullptr) return;
  if (replica->engine != nullptr) replica->engine->Shutdown();
  if (replica->follower.joinable()) {
    Replica* r = replica.get();
    bool done;
    {
      absl::MutexLock lock(&r->mu);
      done = r->mu.AwaitWithTimeout(absl::Condition(&r->follower_done), follower_wait);
    }
    if (!done) {
      r->follower.detach();
      new std::shared_ptr<Replica>(std::move(replica));  // leaked, see above
      return;
    }
  }
  replica.reset();
}

WorkerServiceImpl::WorkerServiceImpl(WorkerServiceOptions options)
    : options_(std::move(options)) {}

WorkerServiceImpl::~WorkerServiceImpl() { Shutdown(); }

void WorkerServiceImpl::Shutdown(absl::Duration follower_wait) {
  std::shared_ptr<Replica> replica;
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    replica = std::move(replica_);
  }
  TearDown(replica, follower_wait);
}

bool WorkerServiceImpl::ResetToIdle() {
  std::shared_ptr<Replica> old;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_ || state_ == wv1::WORKER_STATE_LOADING) return false;
    state_ = wv1::WORKER_STATE_IDLE;
    error_.clear();
    old = std::move(replica_);
  }
  TearDown(old, absl::Seconds(5));  // as Load does with the replica of an earlier Load
  return true;
}

void WorkerServiceImpl::RefreshMetrics() {
  // Under the lock (a /proc read, microseconds): a copied reference could end up the replica's
  // last one and tear it down on the metrics server's thread.
  absl::MutexLock lock(&mu_);
  if (replica_ != nullptr && replica_->metrics != nullptr) replica_->metrics->RefreshMemory();
}

wv1::WorkerState WorkerServiceImpl::state() const {
  absl::MutexLock lock(&mu_);
  const_cast<WorkerServiceImpl*>(this)->RefreshStateLocked();
  return state_;
}

void WorkerServiceImpl::RefreshStateLocked() {
  if (state_ != wv1::WORKER_STATE_READY || replica_ == nullptr) return;
  const absl::Status failure = replica_->Failure();
  if (failure.ok()) return;
  state_ = wv1::WORKER_STATE_FAILED;
  error_ = std::string(failure.message());
  Log(options_.log, absl::StrCat("replica failed: ", error_));
}

absl::StatusOr<std::shared_ptr<WorkerServiceImpl::Replica>> WorkerServiceImpl::LoadReplica(
    const wv1::LoadRequest& request, int64_t* weight_bytes) {
  const int world = request.world_size() == 0 ? 1 : request.world_size();
  const int rank = request.rank();
  const int ep = request.expert_parallel_size() == 0 ? 1 : request.expert_parallel_size();
  if (request.model_dir().empty()) return absl::InvalidArgumentError("model_dir: empty");
  if (world < 1) {
    return absl::InvalidArgumentError(absl::StrCat("world_size must be >= 1, got ", world));
  }
  if (rank < 0 || rank >= world) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank must be in [0, ", world, "), got ", rank));
  }
  if (ep < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("expert_parallel_size must be >= 1, got ", ep));
  }
  if (world > 1 && request.store_prefix().empty()) {
    return absl::InvalidArgumentError("store_prefix: empty (required when world_size > 1)");
  }
  if (world > 1 && options_.store == nullptr) {
    return absl::FailedPreconditionError("this worker has no rendezvous store");
  }
  const absl::Duration timeout = request.collective_timeout_ms() > 0
                                     ? absl::Milliseconds(request.collective_timeout_ms())
                                     : options_.default_collective_timeout;

  auto replica = std::make_shared<Replica>();
  replica->model_dir = request.model_dir();
  replica->store_prefix = request.store_prefix();
  replica->rank = rank;
  replica->world_size = world;
  if (options_.metrics_registry != nullptr) {
    WorkerMetricsOptions mo;
    mo.prefix = options_.metrics_prefix;
    mo.model_name = options_.metrics_model_name;
    if (mo.model_name.empty()) {
      mo.model_name = std::filesystem::path(request.model_dir()).lexically_normal().string();
      while (mo.model_name.size() > 1 && mo.model_name.back() == '/') mo.model_name.pop_back();
      mo.model_name = std::filesystem::path(mo.model_name).filename().string();
      if (mo.model_name.empty()) mo.model_name = request.model_dir();
    }
    mo.rank = rank;
    mo.replica = request.replica();
    absl::StatusOr<std::unique_ptr<WorkerMetrics>> m =
        WorkerMetrics::Create(*options_.metrics_registry, mo);
    if (m.ok()) {
      replica->metrics = std::move(*m);
      replica->step_observer = std::make_unique<MetricsStepObserver>(replica->metrics.get());
    } else {
      Log(options_.log, absl::StrCat("metrics disabled for this replica: ", m.status().ToString()));
    }
  }
  {
    absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(request.model_dir());
    if (!checkpoint.ok()) {
      return Annotate(checkpoint.status(), absl::StrCat("opening checkpoint ", request.model_dir()));
    }
    replica->generation_config = (*checkpoint)->generation_config();
    replica->vocab_size = (*checkpoint)->config().vocab_size;
  }
  *weight_bytes = EstimateShardBytes(request.model_dir(), world);

  if (world > 1) {
    for (auto [comm, name] : {std::pair{&replica->control, "control"},
                              std::pair{&replica->data, "data"}}) {
      GlooOptions o;
      o.rank = rank;
      o.size = world;
      o.store = options_.store;
      o.prefix = absl::StrCat(request.store_prefix(), "/", name);
      o.hostname = options_.gloo_hostname;
      o.interface = options_.gloo_interface;
      o.timeout = timeout;
      absl::StatusOr<std::unique_ptr<Communicator>> c = CreateGlooCommunicator(o);
      if (!c.ok()) {
        return Annotate(c.status(), absl::StrCat("joining the replica's ", name,
                                                 " communicator (rank ", rank, " of ", world, ")"));
      }
      *comm = replica->metrics != nullptr
                  ? std::make_unique<InstrumentedCommunicator>(std::move(*c),
                                                               replica->metrics.get(), name)
                  : std::move(*c);
    }
  }

  absl::StatusOr<std::unique_ptr<Gemma4Model>> model =
      Gemma4Model::LoadShard(request.model_dir(), ShardConfig{rank, world, ep},
                             replica->data.get(),
                             CreateCpuOps(CpuOpsOptions{request.engine().batch_invariant()}));
  if (!model.ok()) {
    return Annotate(model.status(),
                    absl::StrCat("loading shard ", rank, " of ", world, " (ep ", ep, ") from ",
                                 request.model_dir()));
  }
  auto runner = std::make_unique<ModelRunner>(std::move(*model));

  if (rank == 0) {
    G4_ASSIGN_OR_RETURN(replica->grammar_compiler,
                        LoadGrammarCompiler(request.model_dir(), replica->vocab_size));
    const wv1::EngineOptions& e = request.engine();
    EngineOptions eo;
    if (e.max_num_seqs() > 0) eo.scheduler.max_num_seqs = e.max_num_seqs();
    if (e.max_num_batched_tokens() > 0) {
      eo.scheduler.max_num_batched_tokens = e.max_num_batched_tokens();
    }
    if (e.max_model_len() > 0) eo.max_model_len = e.max_model_len();
    if (e.max_queue() > 0) eo.max_queue = e.max_queue();
    if (e.block_size() < 0 || e.num_global_pages() < 0 || e.num_sliding_pages() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "engine: block_size, num_global_pages and num_sliding_pages must be >= 0, got ",
          e.block_size(), ", ", e.num_global_pages(), ", ", e.num_sliding_pages()));
    }
    if (e.block_size() > 0) eo.block_size = e.block_size();
    if (e.num_global_pages() > 0) eo.num_global_pages = e.num_global_pages();
    if (e.num_sliding_pages() > 0) eo.num_sliding_pages = e.num_sliding_pages();
    if (e.has_enable_prefix_caching()) eo.enable_prefix_caching = e.enable_prefix_caching();
    eo.step_observer = replica->step_observer.get();
    replica->engine = std::make_unique<Engine>(std::move(runner), replica->control.get(), eo);
    replica->engine->Start();
  } else {
    Replica* r = replica.get();
    const bool log = options_.log;
    r->follower = std::thread([r, log, runner = std::move(runner)]() mutable {
      absl::Status status =
          Follower(std::move(runner), r->control.get(), r->step_observer.get()).Run();
      if (!status.ok()) Log(log, absl::StrCat("follower loop failed: ", status.ToString()));
      absl::MutexLock lock(&r->mu);
      r->follower_status = std::move(status);
      r->follower_done = true;
    });
  }
  return replica;
}

grpc::Status WorkerServiceImpl::Load(grpc::ServerContext* context, const wv1::LoadRequest* request,
                                     wv1::LoadResponse* response) {
  // Before any state change: a Load from outside --model-root leaves the worker as it was.
  if (absl::Status s = CheckModelRoot(options_.model_root, request->model_dir()); !s.ok()) {
    return ToGrpcStatus(s);
  }
  std::shared_ptr<Replica> old;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "worker is shutting down");
    if (draining_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "worker is draining");
    RefreshStateLocked();
    if (state_ == wv1::WORKER_STATE_LOADING) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "a Load is already in progress");
    }
    if (state_ == wv1::WORKER_STATE_READY) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("already loaded ", replica_->model_dir, " as rank ",
                                       replica_->rank, " of ", replica_->world_size));
    }
    state_ = wv1::WORKER_STATE_LOADING;
    error_.clear();
    old = std::move(replica_);
  }
  TearDown(old, absl::Seconds(5));  // the failed replica of an earlier Load

  Log(options_.log, absl::StrCat("loading ", request->model_dir(), " as rank ", request->rank(),
                                 " of ", std::max(request->world_size(), 1)));
  const absl::Time start = absl::Now();
  int64_t weight_bytes = 0;
  absl::StatusOr<std::shared_ptr<Replica>> replica = LoadReplica(*request, &weight_bytes);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);

  std::shared_ptr<Replica> discard;
  grpc::Status result;
  {
    absl::MutexLock lock(&mu_);
    if (!replica.ok()) {
      state_ = wv1::WORKER_STATE_FAILED;
      error_ = std::string(replica.status().message());
      Log(options_.log, absl::StrCat("load failed: ", replica.status().ToString()));
      return ToGrpcStatus(replica.status());
    }
    if (shutdown_) {
      discard = std::move(*replica);
      state_ = wv1::WORKER_STATE_FAILED;
      error_ = "worker shut down during Load";
      result = grpc::Status(grpc::StatusCode::UNAVAILABLE, error_);
    } else {
      replica_ = std::move(*replica);
      state_ = wv1::WORKER_STATE_READY;
      response->set_weight_bytes(weight_bytes);
      response->set_load_seconds(seconds);
      if (replica_->metrics != nullptr) {
        replica_->metrics->SetWeightsLoaded(weight_bytes, seconds);
        replica_->metrics->RefreshMemory();
      }
      Log(options_.log, absl::StrCat("loaded ", request->model_dir(), " as rank ",
                                     replica_->rank, " of ", replica_->world_size, " in ",
                                     absl::SixDigits(seconds), " s"));
    }
  }
  TearDown(discard, absl::Seconds(5));
  return result;
}

grpc::Status WorkerServiceImpl::Health(grpc::ServerContext* context,
                                       const wv1::HealthRequest* request,
                                       wv1::HealthResponse* response) {
  std::shared_ptr<Replica> replica;
  {
    absl::MutexLock lock(&mu_);
    RefreshStateLocked();
    response->set_state(state_);
    response->set_error(error_);
    response->set_draining(draining_);
    if (replica_ != nullptr) response->set_store_prefix(replica_->store_prefix);
    if (state_ == wv1::WORKER_STATE_READY) replica = replica_;
  }
  if (replica != nullptr && replica->engine != nullptr) {
    const EngineStats stats = replica->engine->Stats();
    response->set_running(stats.running);
    response->set_waiting(stats.waiting);
    response->set_kv_usage_global(stats.kv_global.usage());
    response->set_kv_usage_sliding(stats.kv_sliding.usage());
    response->set_prefix_cache_queried_tokens(stats.prefix_queried_tokens);
    response->set_prefix_cache_hit_tokens(stats.prefix_hit_tokens);
    response->set_preemptions(static_cast<int64_t>(stats.preemptions));
    response->set_kv_global_pages_total(stats.kv_global.total);
    response->set_kv_global_pages_available(stats.kv_global.available());
    response->set_kv_global_pages_peak(stats.kv_global.peak_used);
    response->set_kv_sliding_pages_total(stats.kv_sliding.total);
    response->set_kv_sliding_pages_available(stats.kv_sliding.available());
    response->set_kv_sliding_pages_peak(stats.kv_sliding.peak_used);
    response->set_kv_block_size(stats.kv_block_size);
  }
  return grpc::Status::OK;
}

absl::StatusOr<std::shared_ptr<WorkerServiceImpl::Replica>> WorkerServiceImpl::Leader(
    const char* rpc) {
  absl::MutexLock lock(&mu_);
  RefreshStateLocked();
  if (state_ != wv1::WORKER_STATE_READY) {
    return absl::FailedPreconditionError(
        absl::StrCat(rpc, ": worker is not ready (", wv1::WorkerState_Name(state_),
                     error_.empty() ? "" : ": ", error_, ")"));
  }
  if (replica_->engine == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(rpc, " is served by the replica leader (rank 0); this worker is rank ",
                     replica_->rank));
  }
  return replica_;
}

grpc::Status WorkerServiceImpl::Generate(
    grpc::ServerContext* context, const wv1::WorkerGenerateRequest* request,
    grpc::ServerWriter<wv1::WorkerGenerateResponse>* writer) {
  absl::StatusOr<std::shared_ptr<Replica>> leader = Leader("Generate");
  if (!leader.ok()) return ToGrpcStatus(leader.status());
  if (draining()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "Generate: worker is draining (shutting down); use another replica");
  }
  Replica& replica = **leader;
  if (request->request_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "request_id: empty");
  }
  absl::StatusOr<SamplingRequest> sampling =
      ToSamplingRequest(request->sampling(), request->stopping());
  if (!sampling.ok()) return ToGrpcStatus(sampling.status());
  absl::StatusOr<SamplingParams> params =
      ResolveSamplingParams(*sampling, replica.generation_config, replica.vocab_size);
  if (!params.ok()) return ToGrpcStatus(params.status());

  const std::string& id = request->request_id();
  auto queue = std::make_shared<OutputQueue>();
  EngineRequest er;
  er.id = id;
  er.prompt.assign(request->prompt_token_ids().begin(), request->prompt_token_ids().end());
  er.params = *std::move(params);
  er.priority = request->priority();
  if (request->has_structured_output()) {
    absl::StatusOr<std::shared_ptr<grammar::GrammarMatcher>> matcher =
        NewGrammarMatcher(replica.grammar_compiler.get(), request->structured_output(), er.params,
                          replica.generation_config);
    if (!matcher.ok()) return ToGrpcStatus(matcher.status());
    er.grammar = *std::move(matcher);
  }
  er.resume_output.assign(request->resume_output_token_ids().begin(),
                          request->resume_output_token_ids().end());
  // The queue outlives this handler if the engine reports after we returned (an abort).
  er.on_output = [queue](const EngineOutput& out) { queue->Push(out); };
  if (absl::Status s = replica.engine->Submit(std::move(er)); !s.ok()) return ToGrpcStatus(s);

  std::vector<EngineOutput> batch;
  while (true) {
    // Before waiting and between writes: the client may be gone or out of time.
    if (std::chrono::system_clock::now() >= context->deadline()) {
      replica.engine->Abort(id);
      cancelled_streams_.fetch_add(1);
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                          absl::StrCat("request ", id, ": deadline exceeded (aborted)"));
    }
    if (context->IsCancelled()) {
      replica.engine->Abort(id);
      cancelled_streams_.fetch_add(1);
      return grpc::Status(grpc::StatusCode::CANCELLED,
                          absl::StrCat("request ", id, ": cancelled by the client (aborted)"));
    }
    batch.clear();
    if (!queue->PopAll(&batch, options_.poll_interval)) continue;

    wv1::WorkerGenerateResponse response;
    bool finished = false;
    for (const EngineOutput& out : batch) {
      if (out.queue_seconds.has_value()) response.set_queue_seconds(*out.queue_seconds);
      for (const SampleResult& token : out.tokens) ToProto(token, response.add_tokens());
      if (out.finish == EngineFinish::kNone) continue;
      if (out.finish == EngineFinish::kError) {
        if (response.tokens_size() > 0) writer->Write(response);
        return ToGrpcStatus(out.error.ok() ? absl::UnavailableError("replica failed")
                                           : out.error);
      }
      response.set_finish_reason(ToFinishReason(out.finish));
      if (out.finish == EngineFinish::kStop && out.matched_stop_token >= 0) {
        response.set_matched_stop_token(out.matched_stop_token);
      }
      response.mutable_usage()->set_prompt_tokens(out.prompt_tokens);
      response.mutable_usage()->set_completion_tokens(out.completion_tokens);
      response.mutable_usage()->set_cached_prompt_tokens(out.cached_prompt_tokens);
      finished = true;
      break;
    }
    if (response.tokens_size() == 0 && !finished) continue;
    if (!writer->Write(response)) {
      if (!finished) replica.engine->Abort(id);
      cancelled_streams_.fetch_add(1);
      return grpc::Status(grpc::StatusCode::CANCELLED,
                          absl::StrCat("request ", id, ": stream closed by the client"));
    }
    if (finished) return grpc::Status::OK;
  }
}

grpc::Status WorkerServiceImpl::Unload(grpc::ServerContext* context,
                                       const wv1::UnloadRequest* request,
                                       wv1::UnloadResponse* response) {
  std::shared_ptr<Replica> old;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "worker is shutting down");
    if (state_ == wv1::WORKER_STATE_LOADING) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "Unload: a Load is in progress");
    }
    if (state_ == wv1::WORKER_STATE_IDLE && replica_ == nullptr) return grpc::Status::OK;
    Log(options_.log, absl::StrCat("unloading (", wv1::WorkerState_Name(state_), "): ",
                                   request->reason().empty() ? "coordinator request"
                                                             : request->reason()));
    state_ = wv1::WORKER_STATE_IDLE;
    error_.clear();
    old = std::move(replica_);
  }
  TearDown(old, absl::Seconds(5));  // as Load does with the replica of an earlier Load
  return grpc::Status::OK;
}

bool WorkerServiceImpl::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

void WorkerServiceImpl::CancelDrain() {
  absl::MutexLock lock(&mu_);
  drain_cancelled_ = true;
}

bool WorkerServiceImpl::Drain(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  if (!draining_) {
    draining_ = true;
    Log(options_.log, absl::StrCat("draining (", wv1::WorkerState_Name(state_),
                                   "): no new requests; waiting for the coordinator to release "
                                   "this worker, at most ",
                                   absl::FormatDuration(deadline - absl::Now())));
  }
  // Nothing to drain once nothing is loaded: never loaded, failed, or released by Unload.
  auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    RefreshStateLocked();
    return drain_cancelled_ || shutdown_ || state_ == wv1::WORKER_STATE_IDLE ||
           state_ == wv1::WORKER_STATE_FAILED;
  };
  // Polled: a replica failure (FAILED) is noticed by RefreshStateLocked, not signalled.
  while (!settled()) {
    if (absl::Now() >= deadline) return false;
    mu_.AwaitWithDeadline(absl::Condition(&drain_cancelled_),
                          std::min(deadline, absl::Now() + absl::Milliseconds(100)));
  }
  return !drain_cancelled_;
}

grpc::Status WorkerServiceImpl::Abort(grpc::ServerContext* context,
                                      const wv1::WorkerAbortRequest* request,
                                      wv1::WorkerAbortResponse* response) {
  absl::StatusOr<std::shared_ptr<Replica>> leader = Leader("Abort");
  if (!leader.ok()) return ToGrpcStatus(leader.status());
  response->set_found((*leader)->engine->Abort(request->request_id()));
  return grpc::Status::OK;
}

}  // namespace g4
