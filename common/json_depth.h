// The nesting bound for JSON that comes from outside (request bodies, gRPC chat_json, JSON
// strings inside them, tool-call arguments the model writes). nlohmann::json parses without
// recursion, but copying, dumping, comparing and converting a parsed value (to Jinja values,
// for instance) recurse once per level: a 100,000-deep array overflows the stack. Every such
// entry point checks the text with CheckJsonTextDepth (a cheap non-recursive scan) before it
// parses, or calls ParseJsonBounded, which does both. docs/limits.md.
#ifndef G4SERVE_COMMON_JSON_DEPTH_H_
#define G4SERVE_COMMON_JSON_DEPTH_H_

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace g4 {

// Arrays and objects may nest this deep (`[[1]]` is 2 deep); one more level is refused.
inline constexpr int kMaxJsonDepth = 64;

// The deepest array/object nesting of `text` read as JSON (brackets inside strings do not
// count), scanning no further than the first point where it exceeds `stop_above`. For valid
// JSON it is the exact depth; for invalid JSON an upper bound on what a parser would build
// before failing.
int JsonTextDepth(absl::string_view text, int stop_above = kMaxJsonDepth);

// INVALID_ARGUMENT "<what>: JSON nested deeper than 64 levels" when `text` nests deeper than
// `max_depth`.
absl::Status CheckJsonTextDepth(absl::string_view text, absl::string_view what,
                                int max_depth = kMaxJsonDepth);

// The error CheckJsonTextDepth returns (for checks of already-parsed values).
absl::Status JsonTooDeepError(absl::string_view what, int max_depth = kMaxJsonDepth);

// Depth of a parsed nlohmann::json / ordered_json value, walked without recursion.
template <typename Json>
int JsonValueDepth(const Json& value) {
  int deepest = 0;
  std::vector<std::pair<const Json*, int>> stack = {{&value, 1}};
  while (!stack.empty()) {
    auto [v, depth] = stack.back();
    stack.pop_back();
    if (!v->is_structured()) continue;
    deepest = std::max(deepest, depth);
    for (const Json& child : *v) stack.emplace_back(&child, depth + 1);
  }
  return deepest;
}

// Parses `text` after the depth check. INVALID_ARGUMENT naming `what` when it nests too deep or
// is not valid JSON.
template <typename Json>
absl::StatusOr<Json> ParseJsonBounded(absl::string_view text, absl::string_view what,
                                      int max_depth = kMaxJsonDepth) {
  if (absl::Status s = CheckJsonTextDepth(text, what, max_depth); !s.ok()) return s;
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(what, ": malformed JSON"));
  return json;
}

}  // namespace g4

#endif  // G4SERVE_COMMON_JSON_DEPTH_H_
