#include "common/json_depth.h"

namespace g4 {

int JsonTextDepth(absl::string_view text, int stop_above) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > deepest) {
          deepest = depth;
          if (deepest > stop_above) return deepest;
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return deepest;
}

absl::Status JsonTooDeepError(absl::string_view what, int max_depth) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": JSON nested deeper than ", max_depth, " levels"));
}

absl::Status CheckJsonTextDepth(absl::string_view text, absl::string_view what, int max_depth) {
  if (JsonTextDepth(text, max_depth) > max_depth) return JsonTooDeepError(what, max_depth);
  return absl::OkStatus();
}

}  // namespace g4
