#include "worker/engine/scheduler.h"

#include <algorithm>

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

class PagedScheduler {
 public:
  PagedScheduler(std::vector<Sequence*>& running, std::vector<ScheduledChunk>& out,
                 KvBlockManager& kv, KvScheduleEvents& events, int64_t& budget)
      : running_(running), out_(out), kv_(kv), events_(events), budget_(budget) {}

  // Allocates up to `want` tokens for running_[i] (all `want` unless `partial`), preempting the
  // most recently admitted sequences as needed. Returns the tokens allocated; 0 if running_[i]
  // itself was preempted or failed (then removed from running_).
  int64_t Reserve(size_t i, int64_t want, bool partial) {
    Sequence* s = running_[i];
    while (true) {
      const int64_t n = Fit(kv_, s->seq_id, want);
      if (n == want || (partial && n > 0)) {
        G4_CHECK(kv_.Allocate(s->seq_id, n).ok());
        return n;
      }
      Sequence* victim = running_.back();
      if (victim == s) {
        running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
        if (running_.empty()) {  // alone and still no room: it can never run
          (void)kv_.Free(s->seq_id);
          s->num_computed = 0;
          events_.failed.push_back(s);
        } else {
          Preempt(s);
        }
        return 0;
      }
      running_.pop_back();
      Preempt(victim);
    }
  }

 private:
  void Preempt(Sequence* v) {
    for (size_t j = 0; j < out_.size(); ++j) {  // scheduled earlier in this step: unschedule
      if (out_[j].seq == v) {
        budget_ += out_[j].len;
        out_.erase(out_.begin() + static_cast<std::ptrdiff_t>(j));
        break;
      }
    }
    (void)kv_.Free(v->seq_id);
    v->num_computed = 0;
    ++v->num_preemptions;
    events_.preempted.push_back(v);
  }

  std::vector<Sequence*>& running_;
  std::vector<ScheduledChunk>& out_;
  KvBlockManager& kv_;
  KvScheduleEvents& events_;
  int64_t& budget_;
};

}  // namespace

std::vector<ScheduledChunk> ScheduleStep(const SchedulerOptions& options,
                                         std::vector<Sequence*>& running,
                                         std::vector<Sequence*>& waiting, KvBlockManager* kv,
                                         KvScheduleEvents* events) {
  std::vector<ScheduledChunk> out;
  int64_t budget = options.max_num_batched_tokens;
  if (kv == nullptr) {
    for (Sequence* s : running) {  // decodes first
      if (Pending(s) > 1 || budget == 0) continue;
      out.push_back(ChunkOf(s, 1));
      budget -= 1;
    }
    for (Sequence* s : running) {  // then unfinished prefills, oldest first
      if (Pending(s) <= 1 || budget == 0) continue;
      out.push_back(ChunkOf(s, budget));
      budget -= out.back().len;
    }
  } else {
    G4_CHECK(events != nullptr);
    PagedScheduler paged(running, out, *kv, *events, budget);
    for (size_t i = 0; i < running.size();) {  // decodes first
      Sequence* s = running[i];
      if (Pending(s) > 1 || budget == 0) {
        ++i;
        continue;
      }
      if (paged.Reserve(i, 1, /*partial=*/false) == 0) continue;  // running[i] left
      out.push_back(ChunkOf(s, 1));
      budget -= 1;
      ++i;
    }
    for (size_t i = 0; i < running.size();) {  // then prefills / recomputes, oldest first
      Sequence* s = running[i];
      if (Pending(s) <= 1 || budget == 0) {
        ++i;
        continue;
      }
      const int64_t n = paged.Reserve(i, std::min(budget, Pending(s)), /*partial=*/true);
      if (n == 0) continue;
      out.push_back(ChunkOf(s, n));
      budget -= n;
      ++i;
    }
    for (auto it = events->preempted.rbegin(); it != events->preempted.rend(); ++it) {
      waiting.insert(waiting.begin(), *it);  // front of the queue, oldest admitted first
    }
    if (!events->preempted.empty()) return out;  // no admission while memory is short
  }
  // Admission: priority descending, then arrival.
  std::stable_sort(waiting.begin(), waiting.end(), [](const Sequence* a, const Sequence* b) {
    return a->request.priority != b->request.priority ? a->request.priority > b->request.priority
                                                      : a->arrival < b->arrival;
  });
  size_t admitted = 0;
  while (admitted < waiting.size() && budget > 0 &&
         static_cast<int>(running.size()) < options.max_num_seqs) {
    Sequence* s = waiting[admitted];
    int64_t len = std::min(budget, Pending(s));
    if (kv != nullptr) {
      absl::StatusOr<int64_t> cached = kv->AddSequence(s->seq_id, s->tokens);
      if (!cached.ok()) break;
      s->num_computed = *cached;
      len = std::min(budget, Pending(s));
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
    out.push_back(ChunkOf(s, len));
    budget -= out.back().len;
  }
  waiting.erase(waiting.begin(), waiting.begin() + static_cast<std::ptrdiff_t>(admitted));
  return out;
}

}  // namespace g4
