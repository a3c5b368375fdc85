// tokenizer.json "decoder": null, Replace (String pattern), ByteFallback, Fuse, Strip, Sequence.
#ifndef G4SERVE_COMMON_TOKENIZER_DECODER_H_
#define G4SERVE_COMMON_TOKENIZER_DECODER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace g4::tokenizer_internal {

// If `token` is a byte-fallback token "<0xHH>", its byte value.
std::optional<uint8_t> ByteFallbackValue(absl::string_view token);

class Decoder {
 public:
  static absl::StatusOr<Decoder> FromJson(const nlohmann::json& j);

  // Runs the decoder chain over token strings and joins the result (HF `Decoder::decode`).
  std::string Decode(std::vector<std::string> tokens) const;

  // True when the chain only works token by token except for ByteFallback grouping of adjacent
  // byte tokens (no step after Fuse). IncrementalDetokenizer requires this.
  bool is_streamable() const { return streamable_; }
  bool has_byte_fallback() const { return has_byte_fallback_; }

 private:
  struct Step {
    enum Kind { kReplace, kByteFallback, kFuse, kStrip } kind;
    std::string pattern, content;  // kReplace; kStrip uses content
    int start = 0, stop = 0;       // kStrip
  };
  static absl::Status AddSteps(const nlohmann::json& j, std::vector<Step>* steps);
  std::vector<Step> steps_;
  bool streamable_ = true;
  bool has_byte_fallback_ = false;
};

}  // namespace g4::tokenizer_internal

#endif  // G4SERVE_COMMON_TOKENIZER_DECODER_H_
