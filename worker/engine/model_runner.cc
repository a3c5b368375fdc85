#include "worker/engine/model_runner.h"

#include "absl/strings/str_cat.h"

namespace g4 {

absl::StatusOr<std::vector<float>> ModelRunner::Execute(const StepDescriptor& step) {
  for (uint64_t id : step.freed) caches_.erase(id);
  if (step.kind != StepDescriptor::Kind::kRun || step.chunks.empty()) return std::vector<float>();
  std::vector<SequenceChunk> chunks;
  chunks.reserve(step.chunks.size());
  std::vector<uint64_t> created;
  for (const StepChunk& c : step.chunks) {
    auto it = caches_.find(c.seq_id);
    if (it == caches_.end()) {
      if (c.start != 0) {
        return absl::InternalError(
            absl::StrCat("step ", step.step, ": unknown sequence ", c.seq_id, " at ", c.start));
      }
      it = caches_.emplace(c.seq_id, model_->NewSequence()).first;
      created.push_back(c.seq_id);
    } else if (it->second->length() != c.start) {
      return absl::InternalError(absl::StrCat("step ", step.step, ": sequence ", c.seq_id,
                                              " has ", it->second->length(),
                                              " cached tokens, chunk starts at ", c.start));
    }
    chunks.push_back({it->second.get(), c.tokens});
  }
  absl::StatusOr<std::vector<float>> logits = model_->Forward(chunks, LogitsFor::kLastToken);
  if (!logits.ok()) {
    for (uint64_t id : created) caches_.erase(id);
  }
  return logits;
}

}  // namespace g4
