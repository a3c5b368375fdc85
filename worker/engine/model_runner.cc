#include "worker/engine/model_runner.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace g4 {

const BlockTableMirror* ModelRunner::PagedTable(uint64_t seq_id) const {
  auto it = paged_.find(seq_id);
  return it == paged_.end() ? nullptr : &it->second->table();
}

absl::Status ModelRunner::EnsurePagedStorage(const StepKvLayout& kv) {
  if (storage_ != nullptr) {
    if (kv == layout_) return absl::OkStatus();
    return absl::InternalError("paged kv layout changed between steps");
  }
  PagedKvOptions options;
  options.block_size = kv.block_size;
  options.num_global_pages = kv.num_global_pages;
  options.num_sliding_pages = kv.num_sliding_pages;
  G4_ASSIGN_OR_RETURN(storage_, model_->NewPagedStorage(options));
  layout_ = kv;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> ModelRunner::Execute(const StepDescriptor& step) {
  for (uint64_t id : step.freed) {
    caches_.erase(id);
    paged_.erase(id);
  }
  if (step.kind != StepDescriptor::Kind::kRun || step.chunks.empty()) return std::vector<float>();
  const bool paged = step.kv.paged();
  if (paged) G4_RETURN_IF_ERROR(EnsurePagedStorage(step.kv));
  std::vector<SequenceChunk> chunks;
  chunks.reserve(step.chunks.size());
  std::vector<uint64_t> created;
  for (const StepChunk& c : step.chunks) {
    KvCacheView* view = nullptr;
    if (paged) {
      auto it = paged_.find(c.seq_id);
      if (it == paged_.end()) {
        it = paged_.emplace(c.seq_id, storage_->NewSequence(c.start)).first;
        created.push_back(c.seq_id);
      }
      it->second->table().Apply(c.table);
      view = it->second.get();
    } else {
      auto it = caches_.find(c.seq_id);
      if (it == caches_.end()) {
        if (c.start != 0) {
          return absl::InternalError(
              absl::StrCat("step ", step.step, ": unknown sequence ", c.seq_id, " at ", c.start));
        }
        it = caches_.emplace(c.seq_id, model_->NewSequence()).first;
        created.push_back(c.seq_id);
      }
      view = it->second.get();
    }
    if (view->length() != c.start) {
      return absl::InternalError(absl::StrCat("step ", step.step, ": sequence ", c.seq_id,
                                              " has ", view->length(),
                                              " cached tokens, chunk starts at ", c.start));
    }
    chunks.push_back({view, c.tokens});
  }
  absl::StatusOr<std::vector<float>> logits = model_->Forward(chunks, LogitsFor::kLastToken);
  if (!logits.ok()) {
    for (uint64_t id : created) {
      caches_.erase(id);
      paged_.erase(id);
    }
  }
  return logits;
}

}  // namespace g4
