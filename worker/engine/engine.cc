#include "worker/engine/engine.h"

#include <algorithm>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "worker/kv_cache/kv_geometry.h"
#include "worker/sampling/token_bitmask.h"

namespace g4 {
namespace {

// The block manager sized from the options (0 pages: max_num_seqs sequences of
// min(max_model_len, kDefaultTokensPerSeq) tokens) and the longest sequence that fits it alone.
struct PagedKvSetup {
  std::unique_ptr<KvBlockManager> manager;
  int64_t max_model_len = 0;
  // Set when the pools, not the context, bound max_model_len: what they are, for the error a
  // prompt that can never fit gets.
  std::string pool_limit;
};

absl::StatusOr<PagedKvSetup> SetUpPagedKv(const ModelConfig& c, const EngineOptions& options,
                                          int64_t max_model_len) {
  G4_ASSIGN_OR_RETURN(KvGeometry geo,
                      KvGeometryFromConfig(c, options.block_size, /*dtype_bytes=*/4));
  const int64_t ctx = std::min(max_model_len, EngineOptions::kDefaultTokensPerSeq);
  const int64_t seqs = std::max(1, options.scheduler.max_num_seqs);
  KvBlockManagerOptions o;
  o.block_size = options.block_size;
  if (geo.global.num_layers > 0) {
    o.num_global_pages = options.num_global_pages > 0 ? options.num_global_pages
                                                      : seqs * geo.GlobalPagesFor(ctx);
  }
  if (geo.sliding.num_layers > 0) {
    o.num_sliding_pages = options.num_sliding_pages > 0 ? options.num_sliding_pages
                                                        : seqs * geo.SlidingPagesFor(ctx);
    o.sliding_window = c.sliding_window;
  }
  o.enable_prefix_caching = options.enable_prefix_caching;
  PagedKvSetup setup;
  G4_ASSIGN_OR_RETURN(setup.manager, KvBlockManager::Create(o));
  auto fits = [&](int64_t n) {
    return (o.num_global_pages == 0 || geo.GlobalPagesFor(n) <= o.num_global_pages) &&
           (o.num_sliding_pages == 0 || geo.SlidingPagesFor(n) <= o.num_sliding_pages);
  };
  if (!fits(2)) {
    return absl::InvalidArgumentError(absl::StrCat("kv cache: pools too small for one sequence (",
                                                   geo.DebugString(), ")"));
  }
  int64_t lo = 2, hi = max_model_len;  // largest length whose KV fits the pools alone
  if (!fits(hi)) {
    while (hi - lo > 1) {
      const int64_t mid = lo + (hi - lo) / 2;
      (fits(mid) ? lo : hi) = mid;
    }
    hi = lo;
  }
  setup.max_model_len = hi;
  if (hi < max_model_len) {
    const bool global_sized = options.num_global_pages == 0;
    setup.pool_limit = absl::StrCat(
        "the KV cache holds at most ", hi, " tokens per sequence: global pool of ",
        o.num_global_pages, " pages of ", o.block_size, " tokens",
        global_sized ? absl::StrCat(", sized for --max-num-seqs ", seqs, " sequences of ", ctx,
                                    " tokens; set --num-global-pages for more")
                     : " (--num-global-pages)",
        "; docs/kv_cache.md");
  }
  return setup;
}

// The options with the scheduler's cost model filled in from the config (step_cost_model.h).
EngineOptions WithCostModel(EngineOptions options, const ModelConfig& config) {
  if (!options.scheduler.cost.enabled() && options.attention_cost_scale > 0) {
    options.scheduler.cost = StepCostModel::FromConfig(config, options.attention_cost_scale);
  }
  return options;
}

// Token bitmasks of the constrained sequences that sample this step, computed on a helper thread
// while the forward runs (the matchers are not touched by anything else until it is joined).
class MaskJob {
 public:
  // `matchers[i]` is null for chunks that need no mask.
  MaskJob(std::vector<std::shared_ptr<grammar::GrammarMatcher>> matchers, int64_t vocab)
      : matchers_(std::move(matchers)), masks_(matchers_.size()) {
    bool any = false;
    for (const auto& m : matchers_) any |= m != nullptr;
    if (!any) return;
    done_ = std::async(std::launch::async, [this, vocab] {
      for (size_t i = 0; i < matchers_.size(); ++i) {
        if (matchers_[i] == nullptr) continue;
        masks_[i].resize(BitmaskWords(vocab));
        matchers_[i]->FillNextTokenBitmask(absl::MakeSpan(masks_[i]));
      }
    });
  }
  ~MaskJob() { Wait(); }

  void Wait() {
    if (done_.valid()) done_.get();
  }
  // Empty when chunk i has no mask. Call after Wait().
  const std::vector<uint32_t>& mask(size_t i) const { return masks_[i]; }

 private:
  std::vector<std::shared_ptr<grammar::GrammarMatcher>> matchers_;
  std::vector<std::vector<uint32_t>> masks_;
  std::future<void> done_;
};

}  // namespace

Engine::Engine(std::unique_ptr<ModelRunner> runner, Communicator* control, EngineOptions options)
    : runner_(std::move(runner)),
      control_(control),
      options_(WithCostModel(options, runner_->model().config())),
      max_model_len_(options.max_model_len > 0
                         ? std::min(options.max_model_len,
                                    runner_->model().config().max_position_embeddings)
                         : runner_->model().config().max_position_embeddings) {
  if (!options_.paged_kv) return;
  absl::StatusOr<PagedKvSetup> setup = SetUpPagedKv(config(), options_, max_model_len_);
  absl::MutexLock lock(&mu_);
  if (!setup.ok()) {
    failure_ = setup.status();
    return;
  }
  max_model_len_ = setup->max_model_len;
  kv_pool_limit_ = setup->pool_limit;
  const KvBlockManagerOptions& o = setup->manager->options();
  kv_layout_ = StepKvLayout{o.block_size, o.num_global_pages, o.num_sliding_pages};
  kv_ = std::move(setup->manager);
}

Engine::~Engine() { Shutdown(); }

void Engine::Start() { thread_ = std::thread([this] { Loop(); }); }

void Engine::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status Engine::Submit(EngineRequest request) {
  const ModelConfig& c = config();
  if (request.prompt.empty()) return absl::InvalidArgumentError("prompt: no tokens");
  // A prompt that cannot be scheduled even alone on an empty replica is refused now, never left
  // waiting: it needs its tokens plus one generated token in the KV cache (docs/kv_cache.md,
  // "Admission"). Any first chunk fits once the replica is otherwise empty (scheduler.h).
  if (static_cast<int64_t>(request.prompt.size()) >= max_model_len_) {
    if (!kv_pool_limit_.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt: ", request.prompt.size(), " tokens and one generated token do not fit: ",
          kv_pool_limit_));
    }
    return absl::InvalidArgumentError(absl::StrCat("prompt: ", request.prompt.size(),
                                                   " tokens leave no room in the context of ",
                                                   max_model_len_, " tokens"));
  }
  for (int32_t id : request.prompt) {
    if (id < 0 || id >= c.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt: token id ", id, " outside [0, ", c.vocab_size, ")"));
    }
  }
  auto sampling = std::make_unique<SequenceSamplingState>(request.params, request.prompt);
  if (!request.resume_output.empty()) {
    const size_t total = request.prompt.size() + request.resume_output.size();
    if (static_cast<int64_t>(total) >= max_model_len_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "resume_output_token_ids: prompt + ", request.resume_output.size(),
          " generated tokens leave no room in the context of ", max_model_len_, " tokens",
          kv_pool_limit_.empty() ? "" : absl::StrCat(" (", kv_pool_limit_, ")")));
    }
    for (size_t i = 0; i < request.resume_output.size(); ++i) {
      const int32_t id = request.resume_output[i];
      if (id < 0 || id >= c.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "resume_output_token_ids[", i, "]: token id ", id, " outside [0, ", c.vocab_size, ")"));
      }
      // Replays the sampler's bookkeeping: output counts (penalties), the step index of the
      // seeded draw, min_tokens / max_tokens.
      if (sampling->AppendOutputToken(id) != FinishReason::kNone) {
        return absl::InvalidArgumentError(absl::StrCat(
            "resume_output_token_ids[", i, "]: the request already finished there (",
            sampling->finish_reason() == FinishReason::kStopToken ? "stop token" : "max_tokens",
            ")"));
      }
      // A structured output continues where the earlier attempt left it.
      if (request.grammar != nullptr && !request.grammar->AcceptToken(id)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "resume_output_token_ids[", i, "]: token id ", id,
            " is not allowed by the request's structured output there"));
      }
    }
  }
  absl::MutexLock lock(&mu_);
  if (!failure_.ok()) return absl::UnavailableError(absl::StrCat("engine failed: ", failure_.message()));
  if (stop_) return absl::UnavailableError("engine is shutting down");
  if (sequences_.contains(request.id)) {
    return absl::InvalidArgumentError(absl::StrCat("request_id \"", request.id, "\" is already running"));
  }
  if (static_cast<int>(waiting_.size()) >= options_.max_queue) {
    return absl::ResourceExhaustedError(
        absl::StrCat("queue full: ", waiting_.size(), " requests waiting"));
  }
  auto s = std::make_unique<Sequence>();
  s->seq_id = next_seq_id_++;
  s->arrival = s->seq_id;
  s->arrival_time = absl::Now();
  s->tokens = request.prompt;
  s->tokens.insert(s->tokens.end(), request.resume_output.begin(), request.resume_output.end());
  s->sampling = std::move(sampling);
  s->request = std::move(request);
  waiting_.push_back(s.get());
  std::string id = s->request.id;
  sequences_.emplace(std::move(id), std::move(s));
  return absl::OkStatus();
}

bool Engine::Abort(const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  auto it = sequences_.find(request_id);
  if (it == sequences_.end()) return false;
  EngineOutput out;
  out.finish = EngineFinish::kAborted;
  Finish(it->second.get(), std::move(out));
  return true;
}

EngineStats Engine::Stats() const {
  absl::MutexLock lock(&mu_);
  EngineStats stats;
  stats.running = static_cast<int>(running_.size());
  stats.waiting = static_cast<int>(waiting_.size());
  stats.steps = steps_;
  stats.failed = !failure_.ok();
  if (kv_ != nullptr) {
    stats.kv_global = kv_->Usage(KvPool::kGlobal);
    stats.kv_sliding = kv_->Usage(KvPool::kSliding);
    stats.kv_block_size = kv_layout_.block_size;
  }
  stats.prefix_queried_tokens = prefix_queried_tokens_;
  stats.prefix_hit_tokens = prefix_hit_tokens_;
  stats.preemptions = preemptions_;
  return stats;
}

// Reports the end of `s` and forgets it. Its caches are dropped on every rank next step.
void Engine::Finish(Sequence* s, EngineOutput out) {
  out.prompt_tokens = static_cast<int32_t>(s->num_prompt());
  out.completion_tokens = static_cast<int32_t>(s->tokens.size() - s->num_prompt());
  out.cached_prompt_tokens = static_cast<int32_t>(s->num_cached_prompt);
  Report(s, out);
  running_.erase(std::remove(running_.begin(), running_.end(), s), running_.end());
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), s), waiting_.end());
  const bool holds_pages = kv_ != nullptr && kv_->Contains(s->seq_id);
  if (holds_pages) (void)kv_->Free(s->seq_id);  // at once: the pages serve the next step
  if (s->num_computed > 0 || holds_pages) freed_.push_back(s->seq_id);
  sequences_.erase(s->request.id);
}

void Engine::Report(Sequence* s, EngineOutput& out) {
  if (!s->reported) {
    s->reported = true;
    // Never scheduled (aborted or failed while queued): it waited until now.
    const absl::Time scheduled = s->first_scheduled.value_or(absl::Now());
    out.queue_seconds = std::max(0.0, absl::ToDoubleSeconds(scheduled - s->arrival_time));
  }
  if (s->request.on_output) s->request.on_output(out);
}

void Engine::FailAll(const absl::Status& error) {
  failure_ = error;
  std::vector<Sequence*> all;
  for (auto& [id, s] : sequences_) all.push_back(s.get());
  for (Sequence* s : all) {
    EngineOutput out;
    out.finish = EngineFinish::kError;
    out.error = absl::UnavailableError(absl::StrCat("replica failed: ", error.message()));
    Finish(s, std::move(out));
  }
}

absl::Status Engine::Broadcast(StepDescriptor& step) {
  if (control_ == nullptr) return absl::OkStatus();
  std::string bytes = step.Serialize();
  return control_->BroadcastBytes(&bytes, /*root=*/0);
}

void Engine::Loop() {
  while (Step()) {
  }
}

bool Engine::Step() {
  StepDescriptor step;
  std::vector<ScheduledChunk> chunks;
  std::vector<std::string> chunk_ids;  // request ids, to find the sequences again after the forward
  std::vector<std::shared_ptr<grammar::GrammarMatcher>> matchers;  // per chunk; null: no mask
  {
    absl::MutexLock lock(&mu_);
    auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_ || !running_.empty() || !waiting_.empty() || !freed_.empty();
    };
    mu_.AwaitWithTimeout(absl::Condition(&has_work), options_.heartbeat);
    step.step = steps_++;
    if (stop_) {
      step.kind = StepDescriptor::Kind::kShutdown;
    } else if (!failure_.ok()) {
      return false;
    } else {
      step.freed = std::move(freed_);
      freed_.clear();
      KvScheduleEvents events;
      SchedulerOptions scheduler = options_.scheduler;
      scheduler.step_overhead_cost = step_time_.OverheadCost();
      chunks = ScheduleStep(scheduler, running_, waiting_, kv_.get(),
                            kv_ != nullptr ? &events : nullptr);
      for (const Sequence* p : events.preempted) step.freed.push_back(p->seq_id);
      preemptions_ += events.preempted.size();
      prefix_queried_tokens_ += events.prefix_queried_tokens;
      prefix_hit_tokens_ += events.prefix_hit_tokens;
      for (Sequence* f : events.failed) {
        step.freed.push_back(f->seq_id);
        EngineOutput out;
        out.finish = EngineFinish::kError;
        out.error = absl::ResourceExhaustedError("kv cache: no room for the sequence alone");
        Finish(f, std::move(out));
      }
      step.kv = kv_layout_;
      step.kind = chunks.empty() && step.freed.empty() ? StepDescriptor::Kind::kHeartbeat
                                                       : StepDescriptor::Kind::kRun;
      const absl::Time now = absl::Now();
      for (const ScheduledChunk& c : chunks) {
        if (!c.seq->first_scheduled.has_value()) c.seq->first_scheduled = now;
        chunk_ids.push_back(c.seq->request.id);
        matchers.push_back(c.samples ? c.seq->request.grammar : nullptr);
        step.chunks.push_back(StepChunk{
            c.seq->seq_id, c.begin,
            std::vector<int32_t>(c.seq->tokens.begin() + c.begin,
                                 c.seq->tokens.begin() + c.begin + c.len),
            kv_ != nullptr ? kv_->TakeDelta(c.seq->seq_id) : BlockTableDelta()});
      }
    }
  }

  // Constrained sequences' token masks, computed while the forward runs.
  MaskJob masks(std::move(matchers), config().vocab_size);

  // The forward runs without the lock, so Submit/Abort stay responsive. An Abort meanwhile
  // destroys its sequence: after the forward every chunk's sequence is looked up again by id.
  absl::Status status = Broadcast(step);
  if (step.kind == StepDescriptor::Kind::kShutdown) {
    absl::MutexLock lock(&mu_);
    FailAll(status.ok() ? absl::CancelledError("engine shut down") : status);
    return false;
  }
  const absl::Time forward_start = absl::Now();
  absl::StatusOr<std::vector<float>> logits =
      status.ok() ? runner_->Execute(step) : absl::StatusOr<std::vector<float>>(status);
  if (logits.ok() && !chunks.empty()) {  // calibrates the scheduler's cost budget
    double cost = 0;
    for (const ScheduledChunk& c : chunks) cost += options_.scheduler.cost.ChunkCost(c.begin, c.len);
    step_time_.Observe(cost, absl::ToDoubleSeconds(absl::Now() - forward_start));
  }
  if (options_.step_observer != nullptr && logits.ok() && !step.chunks.empty()) {
    options_.step_observer->OnStep(step, absl::Now() - forward_start);
  }

  masks.Wait();
  absl::MutexLock lock(&mu_);
  if (!logits.ok()) {
    FailAll(logits.status());
    return false;
  }
  const int64_t vocab = config().vocab_size;
  std::vector<float> masked;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const ScheduledChunk& c = chunks[i];
    const auto it = sequences_.find(chunk_ids[i]);
    if (it == sequences_.end() || it->second->seq_id != step.chunks[i].seq_id) {
      // Aborted during the forward: its cache rows exist on every rank now; drop them.
      freed_.push_back(step.chunks[i].seq_id);
      continue;
    }
    Sequence* s = it->second.get();
    s->num_computed += c.len;
    if (kv_ != nullptr) {  // its full blocks now hold K/V on every rank: offer them for reuse
      (void)kv_->CommitFullBlocks(s->seq_id, absl::MakeConstSpan(s->tokens.data(),
                                                                 s->num_computed));
    }
    if (!c.samples) continue;
    absl::Span<const float> row = absl::MakeConstSpan(logits->data() + i * vocab, vocab);
    grammar::GrammarMatcher* constraint = s->request.grammar.get();
    absl::Status mask_status;
    if (constraint != nullptr) {
      // The mask step: disallowed tokens get -inf before the sampler (docs/structured_outputs.md).
      masked.assign(row.begin(), row.end());
      mask_status = ApplyTokenBitmask(masks.mask(i), absl::MakeSpan(masked));
      row = absl::MakeConstSpan(masked);
    }
    absl::StatusOr<SampleResult> r = mask_status.ok() ? Sample(row, *s->sampling)
                                                      : absl::StatusOr<SampleResult>(mask_status);
    if (r.ok() && constraint != nullptr && !constraint->AcceptToken(r->token)) {
      r = absl::InternalError(
          absl::StrCat("structured output: the constraint rejected sampled token ", r->token));
    }
    EngineOutput out;
    if (!r.ok()) {
      out.finish = EngineFinish::kError;
      out.error = r.status();
      Finish(s, std::move(out));
      continue;
    }
    s->tokens.push_back(r->token);
    out.tokens.push_back(*r);
    if (r->finish_reason == FinishReason::kStopToken ||
        (constraint != nullptr && constraint->IsTerminated())) {
      out.finish = EngineFinish::kStop;
      out.matched_stop_token = r->token;
    } else if (r->finish_reason == FinishReason::kLength ||
               static_cast<int64_t>(s->tokens.size()) >= max_model_len_) {
      out.finish = EngineFinish::kLength;
    }
    if (out.finish != EngineFinish::kNone) {
      Finish(s, std::move(out));
    } else {
      out.prompt_tokens = static_cast<int32_t>(s->num_prompt());
      out.completion_tokens = static_cast<int32_t>(s->tokens.size() - s->num_prompt());
      Report(s, out);
    }
  }
  return true;
}

absl::Status Follower::Run() {
  while (true) {
    std::string bytes;
    G4_RETURN_IF_ERROR(control_->BroadcastBytes(&bytes, /*root=*/0));
    G4_ASSIGN_OR_RETURN(StepDescriptor step, StepDescriptor::Parse(bytes));
    if (step.kind == StepDescriptor::Kind::kShutdown) return absl::OkStatus();
    const absl::Time forward_start = absl::Now();
    G4_RETURN_IF_ERROR(runner_->Execute(step).status());
    if (observer_ != nullptr && !step.chunks.empty()) {
      observer_->OnStep(step, absl::Now() - forward_start);
    }
  }
}

}  // namespace g4
