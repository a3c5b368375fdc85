// tokenizer.json "post_processor": null or TemplateProcessing (the "single" template is used).
#ifndef G4SERVE_COMMON_TOKENIZER_POST_PROCESSOR_H_
#define G4SERVE_COMMON_TOKENIZER_POST_PROCESSOR_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace g4::tokenizer_internal {

class PostProcessor {
 public:
  static absl::StatusOr<PostProcessor> FromJson(const nlohmann::json& j);

  // Applies the single-sequence template to `ids`.
  std::vector<int32_t> Apply(std::vector<int32_t> ids) const;
  // Ids the template puts before the sequence (e.g. {2} for "<bos> $A").
  const std::vector<int32_t>& prefix() const { return prefix_; }
  // Ids the template puts after it.
  const std::vector<int32_t>& suffix() const { return suffix_; }

 private:
  bool identity_ = true;
  std::vector<int32_t> prefix_, suffix_;
};

}  // namespace g4::tokenizer_internal

#endif  // G4SERVE_COMMON_TOKENIZER_POST_PROCESSOR_H_
