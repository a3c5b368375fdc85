// Runs step descriptors on one rank: owns the rank's model shard and the KV caches of the
// replica's sequences, keyed by sequence id. Leader and followers run the same descriptors in the
// same order, so their caches stay in lockstep.
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

namespace g4 {

class ModelRunner {
 public:
  explicit ModelRunner(std::unique_ptr<Gemma4Model> model) : model_(std::move(model)) {}

  const Gemma4Model& model() const { return *model_; }

  // Frees the descriptor's sequences, then runs its chunks in one forward. Returns one row of
  // logits per chunk (its last token). A chunk of an unknown sequence id starts a new sequence
  // (its start must be 0); otherwise start must equal the sequence's cached length.
  absl::StatusOr<std::vector<float>> Execute(const StepDescriptor& step);

  size_t num_sequences() const { return caches_.size(); }

 private:
  std::unique_ptr<Gemma4Model> model_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<SequenceKvCache>> caches_;
};

}  // namespace g4

#endif  // G4SERVE_WORKER_ENGINE_MODEL_RUNNER_H_
