#include "worker/engine/scheduler.h"

#include <algorithm>

namespace g4 {
namespace {

ScheduledChunk ChunkOf(Sequence* s, int64_t budget) {
  const int64_t total = static_cast<int64_t>(s->tokens.size());
  const int64_t len = std::min(budget, total - s->num_computed);
  return ScheduledChunk{s, s->num_computed, len, s->num_computed + len == total};
}

}  // namespace

std::vector<ScheduledChunk> ScheduleStep(const SchedulerOptions& options,
                                         std::vector<Sequence*>& running,
                                         std::vector<Sequence*>& waiting) {
  std::vector<ScheduledChunk> out;
  int64_t budget = options.max_num_batched_tokens;
  for (Sequence* s : running) {  // decodes first
    if (s->prefilling() || budget == 0) continue;
    out.push_back(ChunkOf(s, 1));
    budget -= 1;
  }
  for (Sequence* s : running) {  // then unfinished prefills, oldest first
    if (!s->prefilling() || budget == 0) continue;
    out.push_back(ChunkOf(s, budget));
    budget -= out.back().len;
  }
  // Admission: priority descending, then arrival.
  std::stable_sort(waiting.begin(), waiting.end(), [](const Sequence* a, const Sequence* b) {
    return a->request.priority != b->request.priority ? a->request.priority > b->request.priority
                                                      : a->arrival < b->arrival;
  });
  size_t admitted = 0;
  while (admitted < waiting.size() && budget > 0 &&
         static_cast<int>(running.size()) < options.max_num_seqs) {
    Sequence* s = waiting[admitted++];
    running.push_back(s);
    out.push_back(ChunkOf(s, budget));
    budget -= out.back().len;
  }
  waiting.erase(waiting.begin(), waiting.begin() + admitted);
  return out;
}

}  // namespace g4
