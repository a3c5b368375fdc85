// tokenizer.json "normalizer": null, Replace (String pattern), Prepend, Sequence of those.
#ifndef G4SERVE_COMMON_TOKENIZER_NORMALIZER_H_
#define G4SERVE_COMMON_TOKENIZER_NORMALIZER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace g4::tokenizer_internal {

class Normalizer {
 public:
  // `j` may be null (identity). Unknown types are rejected with InvalidArgument.
  static absl::StatusOr<Normalizer> FromJson(const nlohmann::json& j);

  bool is_identity() const { return steps_.empty(); }
  // True when Apply's output is never shorter than its input (every Replace's content is at
  // least as long as its pattern; Prepend only adds).
  bool never_shrinks() const;
  // Applies every step in order to `text`.
  std::string Apply(absl::string_view text) const;

 private:
  struct Step {
    enum Kind { kReplace, kPrepend } kind;
    std::string pattern;  // kReplace
    std::string content;  // replacement (kReplace) or prefix (kPrepend)
  };
  std::vector<Step> steps_;
};

}  // namespace g4::tokenizer_internal

#endif  // G4SERVE_COMMON_TOKENIZER_NORMALIZER_H_
