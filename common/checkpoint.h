// A Hugging Face checkpoint directory: config.json (multimodal wrapper with `text_config`, or
// text-only), generation_config.json (optional), and the weights as model.safetensors or
// model.safetensors.index.json + shards.
//
// Tensor names are resolved from the decoder's canonical names ("embed_tokens.weight",
// "layers.3.self_attn.q_proj.weight", "layers.0.layer_scalar", ...) by trying the prefixes
// "model.language_model." (released multimodal checkpoints) and "model." (text-only export).
// Vision/audio tensors are never looked at. See docs/checkpoints.md.
#ifndef G4SERVE_COMMON_CHECKPOINT_H_
#define G4SERVE_COMMON_CHECKPOINT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/generation_config.h"
#include "common/model_config.h"
#include "common/safetensors.h"

namespace g4 {

// A tensor located inside one shard.
struct TensorRef {
  const SafetensorsFile* file = nullptr;
  const TensorInfo* info = nullptr;
};

class Checkpoint {
 public:
  // Opens `dir`: parses and validates config.json and generation_config.json, opens every shard
  // the index names (or model.safetensors) and validates their headers. Errors name the file.
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  const GenerationConfig& generation_config() const { return generation_config_; }

  // True if the canonical decoder tensor `name` exists (under any accepted prefix).
  bool Has(absl::string_view name) const;

  // Finds canonical tensor `name`; NotFound names the tensor and the prefixes tried.
  absl::StatusOr<TensorRef> Find(absl::string_view name) const;

  // Reads `slice` of tensor `name` as fp32 into `out` after checking that the full tensor has
  // exactly `expected_shape` (error: "tensor T in FILE: expected shape [..], found [..]").
  absl::Status Read(absl::string_view name, absl::Span<const int64_t> expected_shape,
                    const TensorSlice& slice, absl::Span<float> out) const;

  // Convenience: reads the whole tensor.
  absl::StatusOr<std::vector<float>> ReadAll(absl::string_view name,
                                             absl::Span<const int64_t> expected_shape) const;

  // Sum of bytes_read() over all shards.
  uint64_t bytes_read() const;

 private:
  Checkpoint() = default;

  std::string dir_;
  ModelConfig config_;
  GenerationConfig generation_config_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  // full stored name -> (file, tensor)
  std::vector<std::pair<std::string, TensorRef>> names_;  // sorted by name
};

}  // namespace g4

#endif  // G4SERVE_COMMON_CHECKPOINT_H_
