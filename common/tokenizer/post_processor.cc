#include "common/tokenizer/post_processor.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tokenizer/json_util.h"

namespace g4::tokenizer_internal {

absl::StatusOr<PostProcessor> PostProcessor::FromJson(const nlohmann::json& j) {
  PostProcessor p;
  if (j.is_null()) return p;
  G4_ASSIGN_OR_RETURN(std::string type, ComponentType(j, "post_processor"));
  if (type != "TemplateProcessing") {
    return absl::InvalidArgumentError(absl::StrCat("unsupported post_processor type \"", type,
                                                   "\" (supported: TemplateProcessing)"));
  }
  auto single = j.find("single");
  auto specials = j.find("special_tokens");
  if (single == j.end() || !single->is_array()) {
    return absl::InvalidArgumentError("post_processor: missing array \"single\"");
  }
  if (specials == j.end() || !specials->is_object()) {
    return absl::InvalidArgumentError("post_processor: missing object \"special_tokens\"");
  }
  p.identity_ = false;
  bool seen_sequence = false;
  for (const auto& item : *single) {
    if (!item.is_object() || item.size() != 1) {
      return absl::InvalidArgumentError("post_processor: bad template piece");
    }
    if (auto seq = item.find("Sequence"); seq != item.end()) {
      if (seen_sequence) {
        return absl::InvalidArgumentError("post_processor: single template has two sequences");
      }
      seen_sequence = true;
      continue;
    }
    auto sp = item.find("SpecialToken");
    if (sp == item.end() || !sp->is_object()) {
      return absl::InvalidArgumentError("post_processor: template piece must be Sequence or "
                                        "SpecialToken");
    }
    G4_ASSIGN_OR_RETURN(std::string name, GetString(*sp, "id", "post_processor SpecialToken"));
    auto def = specials->find(name);
    if (def == specials->end() || !def->is_object() || !def->contains("ids") ||
        !(*def)["ids"].is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat("post_processor: special token \"", name, "\" has no ids"));
    }
    for (const auto& id : (*def)["ids"]) {
      if (!id.is_number_unsigned()) {
        return absl::InvalidArgumentError(
            absl::StrCat("post_processor: special token \"", name, "\" has a bad id"));
      }
      (seen_sequence ? p.suffix_ : p.prefix_).push_back(id.get<int32_t>());
    }
  }
  if (!seen_sequence) {
    return absl::InvalidArgumentError("post_processor: single template has no Sequence");
  }
  return p;
}

std::vector<int32_t> PostProcessor::Apply(std::vector<int32_t> ids) const {
  if (identity_) return ids;
  std::vector<int32_t> out;
  out.reserve(prefix_.size() + ids.size() + suffix_.size());
  out.insert(out.end(), prefix_.begin(), prefix_.end());
  out.insert(out.end(), ids.begin(), ids.end());
  out.insert(out.end(), suffix_.begin(), suffix_.end());
  return out;
}

}  // namespace g4::tokenizer_internal
