// Small helpers for reading tokenizer.json fields without exceptions.
#ifndef G4SERVE_COMMON_TOKENIZER_JSON_UTIL_H_
#define G4SERVE_COMMON_TOKENIZER_JSON_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace g4::tokenizer_internal {

// The `type` string of a component object.
inline absl::StatusOr<std::string> ComponentType(const nlohmann::json& j, absl::string_view what) {
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(what, ": expected an object"));
  auto it = j.find("type");
  if (it == j.end() || !it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": missing string field \"type\""));
  }
  return it->get<std::string>();
}

inline absl::StatusOr<std::string> GetString(const nlohmann::json& j, const char* key,
                                             absl::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": missing string field \"", key, "\""));
  }
  return it->get<std::string>();
}

// Optional bool: `dflt` when absent or null.
inline absl::StatusOr<bool> GetBool(const nlohmann::json& j, const char* key, bool dflt,
                                    absl::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_boolean()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": field \"", key, "\" must be a bool"));
  }
  return it->get<bool>();
}

// A `pattern` object of the HF format: {"String": "..."} is supported, {"Regex": ...} is not.
inline absl::StatusOr<std::string> GetStringPattern(const nlohmann::json& j, absl::string_view what) {
  auto it = j.find("pattern");
  if (it == j.end() || !it->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": missing object field \"pattern\""));
  }
  auto s = it->find("String");
  if (s != it->end() && s->is_string()) return s->get<std::string>();
  if (it->contains("Regex")) {
    return absl::UnimplementedError(absl::StrCat(what, ": Regex patterns are not supported"));
  }
  return absl::InvalidArgumentError(absl::StrCat(what, ": pattern must be {\"String\": ...}"));
}

}  // namespace g4::tokenizer_internal

#endif  // G4SERVE_COMMON_TOKENIZER_JSON_UTIL_H_
