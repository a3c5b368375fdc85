// Runs step descriptors on one rank: owns the rank's model shard and the KV caches of the
// replica's sequences, keyed by sequence id. Leader and followers run the same descriptors in the
// same order, so their caches stay in lockstep.
//
// KV: with a paged layout in the descriptor (StepDescriptor::kv) the runner sizes one
// PagedKvStorage from it on first use and keeps per sequence a PagedSequenceKv whose block table
// mirrors the leader's KvBlockManager through each chunk's BlockTableDelta. Without one it keeps
// a contiguous SequenceKvCache per sequence (the pre-paging path).
//
// Thread-compatible: driven by the rank's engine or follower thread.
#ifndef G4SERVE_WORKER_ENGINE_MODEL_RUNNER_H_
#define G4SERVE_WORKER_ENGINE_MODEL_RUNNER_H_

#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "worker/engine/step_descriptor.h"
#include "worker/model/gemma4_model.h"
#include "worker/model/paged_kv_cache.h"

namespace g4 {

class ModelRunner {
 public:
  explicit ModelRunner(std::unique_ptr<Gemma4Model> model) : model_(std::move(model)) {}

  const Gemma4Model& model() const { return *model_; }

  // Frees the descriptor's sequences, then runs its chunks in one forward. Returns one row of
  // logits per chunk (its last token). A chunk of an unknown sequence id starts a new sequence
  // (its start must be 0, or with paged KV the length of the cached prefix its table names);
  // otherwise start must equal the sequence's cached length.
  absl::StatusOr<std::vector<float>> Execute(const StepDescriptor& step);

  size_t num_sequences() const { return caches_.size() + paged_.size(); }
  // The paged storage, once a paged descriptor has arrived (null before).
  const PagedKvStorage* paged_storage() const { return storage_.get(); }
  // A paged sequence's mirrored block table (null if unknown), for tests.
  const BlockTableMirror* PagedTable(uint64_t seq_id) const;

 private:
  absl::Status EnsurePagedStorage(const StepKvLayout& kv);

  std::unique_ptr<Gemma4Model> model_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<SequenceKvCache>> caches_;
  StepKvLayout layout_;
  std::unique_ptr<PagedKvStorage> storage_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<PagedSequenceKv>> paged_;
};

}  // namespace g4

#endif  // G4SERVE_WORKER_ENGINE_MODEL_RUNNER_H_
