#include "worker/engine/scheduler.h"

#include <algorithm>
#include <limits>

#include "common/check.h"

namespace g4 {
namespace {

int64_t Pending(const Sequence* s) {
  return static_cast<int64_t>(s->tokens.size()) - s->num_computed;
}

ScheduledChunk ChunkOf(Sequence* s, int64_t len) {
  len = std::min(len, Pending(s));
  return ScheduledChunk{s, s->num_computed, len,
                        s->num_computed + len == static_cast<int64_t>(s->tokens.size())};
}

// The largest n in [0, want] for which Allocate(id, n) would succeed (monotone in n).
int64_t Fit(const KvBlockManager& kv, uint64_t id, int64_t want) {
  if (kv.CanAllocate(id, want)) return want;
  int64_t lo = 0, hi = want;  // lo fits (or is 0), hi does not
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (kv.CanAllocate(id, mid) ? lo : hi) = mid;
  }
  return lo;
}

// What is left of a step's budgets.
struct Budget {
  int64_t tokens = 0;
  double cost = 0;
};

// Reserves chunks for one step: allocates their KV (with a block manager) and charges the
// budgets.
class StepBuilder {
 public:
  StepBuilder(const SchedulerOptions& options, std::vector<Sequence*>& running,
              std::vector<ScheduledChunk>& out, KvBlockManager* kv, KvScheduleEvents* events)
      : options_(options), running_(running), out_(out), kv_(kv), events_(events) {
    budget_.tokens = options.max_num_batched_tokens;
    budget_.cost = options.max_num_batched_tokens;
  }

  Budget& budget() { return budget_; }

  // Schedules up to `want` tokens of running_[i] (all `want` unless `partial`). With paged KV,
  // preempts the most recently admitted sequences as needed. Returns the tokens scheduled; 0 if
  // running_[i] itself was preempted or failed (then removed from running_).
  int64_t Schedule(size_t i, int64_t want, bool partial) {
    Sequence* s = running_[i];
    const int64_t n = kv_ == nullptr ? want : Reserve(i, want, partial);
    if (n > 0) Charge(s, n);
    return n;
  }

  void Charge(Sequence* s, int64_t n) {
    out_.push_back(ChunkOf(s, n));
    budget_.tokens -= out_.back().len;
    budget_.cost -= options_.cost.ChunkCost(out_.back().begin, out_.back().len);
  }

 private:
  int64_t Reserve(size_t i, int64_t want, bool partial) {
    Sequence* s = running_[i];
    while (true) {
      const int64_t n = Fit(*kv_, s->seq_id, want);
      if (n == want || (partial && n > 0)) {
        G4_CHECK(kv_->Allocate(s->seq_id, n).ok());
        return n;
      }
      Sequence* victim = running_.back();
      if (victim == s) {
        running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
        if (running_.empty()) {  // alone and still no room: it can never run
          (void)kv_->Free(s->seq_id);
          s->num_computed = 0;
          events_->failed.push_back(s);
        } else {
          Preempt(s);
        }
        return 0;
      }
      running_.pop_back();
      Preempt(victim);
    }
  }

  void Preempt(Sequence* v) {
    for (size_t j = 0; j < out_.size(); ++j) {  // scheduled earlier in this step: unschedule
      if (out_[j].seq == v) {
        budget_.tokens += out_[j].len;
        budget_.cost += options_.cost.ChunkCost(out_[j].begin, out_[j].len);
        out_.erase(out_.begin() + static_cast<std::ptrdiff_t>(j));
        break;
      }
    }
    (void)kv_->Free(v->seq_id);
    v->num_computed = 0;
    ++v->num_preemptions;
    events_->preempted.push_back(v);
  }

  const SchedulerOptions& options_;
  std::vector<Sequence*>& running_;
  std::vector<ScheduledChunk>& out_;
  KvBlockManager* kv_;
  KvScheduleEvents* events_;
  Budget budget_;
};

// The cost the step's prefill chunks may spend in all, given what the decodes already spent
// (`decode_cost`) and what is left of the cost budget (`left`). Infinite: tokens only.
double PrefillCostBudget(const SchedulerOptions& o, double decode_cost, double left, bool lone) {
  const double overhead = o.step_overhead_cost;
  if (decode_cost > 0) {
    if (overhead <= 0) return left;
    return std::min(left, (o.decode_step_slowdown - 1) * (overhead + decode_cost));
  }
  if (overhead > 0) return std::max(left, o.lone_prefill_overheads * overhead);
  // Alone (nothing else running or waiting) and nothing known of the overhead: no step's latency
  // is at stake, and small chunks would only add steps.
  return lone ? std::numeric_limits<double>::infinity() : left;
}

// Admits waiting requests, priority descending then arrival, each with a first chunk of what is
// left of the budgets; moves them from `waiting` to the end of `running`.
void Admit(const SchedulerOptions& options, StepBuilder& step, std::vector<Sequence*>& running,
           std::vector<Sequence*>& waiting, KvBlockManager* kv, KvScheduleEvents* events) {
  Budget& budget = step.budget();
  std::stable_sort(waiting.begin(), waiting.end(), [](const Sequence* a, const Sequence* b) {
    return a->request.priority != b->request.priority ? a->request.priority > b->request.priority
                                                      : a->arrival < b->arrival;
  });
  size_t admitted = 0;
  while (admitted < waiting.size() && budget.tokens > 0 && (budget.cost > 0 || running.empty()) &&
         static_cast<int>(running.size()) < options.max_num_seqs) {
    Sequence* s = waiting[admitted];
    // Into an idle engine a request is always admitted (tokens permitting), however much its
    // first token costs (e.g. after a long cached prefix with a small budget): it cannot wait
    // for budget that nothing else will free.
    const double cost_budget = running.empty() ? std::numeric_limits<double>::infinity()
                                               : budget.cost;
    int64_t len = options.cost.MaxLenWithin(s->num_computed, std::min(budget.tokens, Pending(s)),
                                            cost_budget);
    if (len == 0) break;
    if (kv != nullptr) {
      absl::StatusOr<int64_t> cached = kv->AddSequence(s->seq_id, s->tokens);
      if (!cached.ok()) break;
      s->num_computed = *cached;
      len = options.cost.MaxLenWithin(s->num_computed, std::min(budget.tokens, Pending(s)),
                                      cost_budget);
      if (len == 0) {  // FCFS: wait for budget
        (void)kv->Free(s->seq_id);
        s->num_computed = 0;
        break;
      }
      if (!kv->CanAllocate(s->seq_id, len)) {
        // Alone (nothing running, so no page will be freed by waiting): start with the chunk
        // that fits, as a running prefill would. A whole first chunk can need more sliding
        // pages than a pool sized for decoding holds (a 33-token prompt with block 16 and
        // --max-num-seqs 1); waiting for them would wait forever.
        const int64_t fits = running.empty() ? Fit(*kv, s->seq_id, len) : 0;
        if (fits == 0) {  // FCFS: wait for memory
          (void)kv->Free(s->seq_id);
          s->num_computed = 0;
          break;
        }
        len = fits;
      }
      G4_CHECK(kv->Allocate(s->seq_id, len).ok());
      events->prefix_queried_tokens += static_cast<int64_t>(s->tokens.size());
      events->prefix_hit_tokens += *cached;
      // Usage reports the first admission's hit (a recompute after preemption is not a hit the
      // client asked about).
      if (s->num_preemptions == 0) s->num_cached_prompt = std::min(*cached, s->num_prompt());
    }
    ++admitted;
    running.push_back(s);
    step.Charge(s, len);
  }
  waiting.erase(waiting.begin(), waiting.begin() + static_cast<std::ptrdiff_t>(admitted));
}

bool ScheduledThisStep(const std::vector<ScheduledChunk>& out, const Sequence* s) {
  for (const ScheduledChunk& c : out) {
    if (c.seq == s) return true;
  }
  return false;
}

}  // namespace

std::vector<ScheduledChunk> ScheduleStep(const SchedulerOptions& options,
                                         std::vector<Sequence*>& running,
                                         std::vector<Sequence*>& waiting, KvBlockManager* kv,
                                         KvScheduleEvents* events) {
  std::vector<ScheduledChunk> out;
  G4_CHECK(kv == nullptr || events != nullptr);
  StepBuilder step(options, running, out, kv, events);
  Budget& budget = step.budget();
  const bool lone = running.size() == 1 && waiting.empty();
  for (size_t i = 0; i < running.size();) {  // 1. decodes
    Sequence* s = running[i];
    if (Pending(s) > 1 || budget.tokens <= 0) {
      ++i;
      continue;
    }
    if (step.Schedule(i, 1, /*partial=*/false) == 0) continue;  // running[i] left
    ++i;
  }
  // 2. What the prefill chunks may cost in all.
  const double decode_cost = options.max_num_batched_tokens - budget.cost;
  budget.cost = PrefillCostBudget(options, decode_cost, budget.cost, lone);
  const double prefill_budget = budget.cost;
  auto is_prefill = [](const Sequence* s) { return Pending(s) > 1; };
  auto is_long = [&](const Sequence* s) { return Pending(s) > options.max_num_batched_tokens; };
  // A running prefill's floor: min_prefill_chunk tokens, as many as the prefill budget carries,
  // at least one.
  auto floor_of = [&](const Sequence* s) {
    const int64_t most = std::min<int64_t>(Pending(s), std::max(1, options.min_prefill_chunk));
    return std::max<int64_t>(1, options.cost.MaxLenWithin(s->num_computed, most, prefill_budget));
  };
  // The long prefills' floors, held back from the short prefills and admission.
  Budget held;
  for (const Sequence* s : running) {
    if (!is_prefill(s) || !is_long(s)) continue;
    const int64_t f = floor_of(s);
    held.tokens += f;
    held.cost += options.cost.ChunkCost(s->num_computed, f);
  }
  // Schedules the running prefills of one kind (short or long), oldest first.
  auto prefills = [&](bool long_ones) {
    for (size_t i = 0; i < running.size();) {
      Sequence* s = running[i];
      if (!is_prefill(s) || is_long(s) != long_ones || ScheduledThisStep(out, s)) {
        ++i;
        continue;
      }
      const int64_t floor = floor_of(s);
      if (long_ones) {  // its own floor is no longer held back from it
        held.tokens -= floor;
        held.cost -= options.cost.ChunkCost(s->num_computed, floor);
      }
      const int64_t most = std::min(budget.tokens - held.tokens, Pending(s));
      if (most <= 0) {
        ++i;
        continue;
      }
      int64_t want = options.cost.MaxLenWithin(s->num_computed, most, budget.cost - held.cost);
      want = std::max(want, std::min(most, floor));
      if (step.Schedule(i, want, /*partial=*/true) == 0) continue;  // running[i] left
      ++i;
    }
  };
  prefills(/*long_ones=*/false);  // 3.
  // 4. Admission (not while memory is short: a step that preempted admits nothing).
  if (kv == nullptr || events->preempted.empty()) {
    budget.tokens -= held.tokens;
    budget.cost -= held.cost;
    Admit(options, step, running, waiting, kv, events);
    budget.tokens += held.tokens;
    budget.cost += held.cost;
  }
  // 5. The long prefills. When the step carries latency-bound work (decodes, short prompts,
  // admissions), their chunks add at most (slowdown − 1) times that work's own step, so a short
  // prompt admitted now gets its first token after about one step of its own.
  double latency_cost = 0;
  for (const ScheduledChunk& c : out) latency_cost += options.cost.ChunkCost(c.begin, c.len);
  if (latency_cost > 0 && options.step_overhead_cost > 0) {
    budget.cost = std::min(budget.cost, (options.decode_step_slowdown - 1) *
                                            (options.step_overhead_cost + latency_cost));
  }
  prefills(/*long_ones=*/true);
  if (kv != nullptr) {
    for (auto it = events->preempted.rbegin(); it != events->preempted.rend(); ++it) {
      waiting.insert(waiting.begin(), *it);  // front of the queue, oldest admitted first
    }
  }
  return out;
}

}  // namespace g4
