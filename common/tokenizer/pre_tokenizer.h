// tokenizer.json "pre_tokenizer": null, Split (String pattern, any behaviour, invert=false),
// Sequence of those.
#ifndef G4SERVE_COMMON_TOKENIZER_PRE_TOKENIZER_H_
#define G4SERVE_COMMON_TOKENIZER_PRE_TOKENIZER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace g4::tokenizer_internal {

class PreTokenizer {
 public:
  static absl::StatusOr<PreTokenizer> FromJson(const nlohmann::json& j);

  // Splits `text` into pieces (views into `text`), appending them to `out`; empty pieces are
  // dropped as HF does.
  void Split(absl::string_view text, std::vector<absl::string_view>* out) const;

 private:
  enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
  struct Step {
    std::string pattern;
    Behavior behavior;
  };
  static void ApplyStep(const Step& step, absl::string_view piece,
                        std::vector<absl::string_view>* out);
  std::vector<Step> steps_;
};

}  // namespace g4::tokenizer_internal

#endif  // G4SERVE_COMMON_TOKENIZER_PRE_TOKENIZER_H_
