#include "common/generation_config.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace g4 {

absl::StatusOr<GenerationConfig> ParseGenerationConfig(absl::string_view json_text,
                                                       absl::string_view source) {
  using Json = nlohmann::json;
  Json root = Json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": invalid JSON object"));
  }
  auto error = [&](absl::string_view key, const Json& v) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": `", key, "` has invalid value ", v.dump()));
  };
  GenerationConfig g;
  if (root.contains("eos_token_id") && !root["eos_token_id"].is_null()) {
    const Json& v = root["eos_token_id"];
    g.eos_token_ids.clear();
    if (v.is_number_integer()) {
      g.eos_token_ids.push_back(v.get<int>());
    } else if (v.is_array()) {
      for (const Json& e : v) {
        if (!e.is_number_integer()) return error("eos_token_id", v);
        g.eos_token_ids.push_back(e.get<int>());
      }
    } else {
      return error("eos_token_id", v);
    }
  }
  for (const char* key : {"bos_token_id", "pad_token_id", "top_k"}) {
    if (!root.contains(key) || root[key].is_null()) continue;
    if (!root[key].is_number_integer()) return error(key, root[key]);
    const int v = root[key].get<int>();
    if (std::string(key) == "bos_token_id") g.bos_token_id = v;
    if (std::string(key) == "pad_token_id") g.pad_token_id = v;
    if (std::string(key) == "top_k") g.top_k = v;
  }
  if (root.contains("do_sample") && !root["do_sample"].is_null()) {
    if (!root["do_sample"].is_boolean()) return error("do_sample", root["do_sample"]);
    g.do_sample = root["do_sample"].get<bool>();
  }
  for (const char* key : {"temperature", "top_p"}) {
    if (!root.contains(key) || root[key].is_null()) continue;
    if (!root[key].is_number()) return error(key, root[key]);
    (std::string(key) == "temperature" ? g.temperature : g.top_p) = root[key].get<double>();
  }
  return g;
}

}  // namespace g4
