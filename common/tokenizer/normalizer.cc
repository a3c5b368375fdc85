#include "common/tokenizer/normalizer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "common/tokenizer/json_util.h"

namespace g4::tokenizer_internal {
namespace {

absl::Status AddSteps(const nlohmann::json& j, std::vector<std::string>* kinds,
                      std::vector<std::pair<std::string, std::string>>* args) {
  G4_ASSIGN_OR_RETURN(std::string type, ComponentType(j, "normalizer"));
  if (type == "Sequence") {
    auto it = j.find("normalizers");
    if (it == j.end() || !it->is_array()) {
      return absl::InvalidArgumentError("normalizer Sequence: missing array \"normalizers\"");
    }
    for (const auto& sub : *it) G4_RETURN_IF_ERROR(AddSteps(sub, kinds, args));
    return absl::OkStatus();
  }
  if (type == "Replace") {
    G4_ASSIGN_OR_RETURN(std::string pattern, GetStringPattern(j, "normalizer Replace"));
    G4_ASSIGN_OR_RETURN(std::string content, GetString(j, "content", "normalizer Replace"));
    if (pattern.empty()) return absl::InvalidArgumentError("normalizer Replace: empty pattern");
    kinds->push_back(type);
    args->emplace_back(std::move(pattern), std::move(content));
    return absl::OkStatus();
  }
  if (type == "Prepend") {
    G4_ASSIGN_OR_RETURN(std::string prepend, GetString(j, "prepend", "normalizer Prepend"));
    kinds->push_back(type);
    args->emplace_back("", std::move(prepend));
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unsupported normalizer type \"", type, "\" (supported: Replace, Prepend, Sequence)"));
}

}  // namespace

absl::StatusOr<Normalizer> Normalizer::FromJson(const nlohmann::json& j) {
  Normalizer n;
  if (j.is_null()) return n;
  std::vector<std::string> kinds;
  std::vector<std::pair<std::string, std::string>> args;
  G4_RETURN_IF_ERROR(AddSteps(j, &kinds, &args));
  for (size_t i = 0; i < kinds.size(); ++i) {
    Step s;
    s.kind = kinds[i] == "Replace" ? Step::kReplace : Step::kPrepend;
    s.pattern = std::move(args[i].first);
    s.content = std::move(args[i].second);
    n.steps_.push_back(std::move(s));
  }
  return n;
}

bool Normalizer::never_shrinks() const {
  for (const Step& s : steps_) {
    if (s.kind == Step::kReplace && s.content.size() < s.pattern.size()) return false;
  }
  return true;
}

std::string Normalizer::Apply(absl::string_view text) const {
  std::string cur(text);
  for (const Step& s : steps_) {
    if (s.kind == Step::kReplace) {
      cur = absl::StrReplaceAll(cur, {{s.pattern, s.content}});
    } else if (!cur.empty()) {  // HF Prepend leaves an empty string empty.
      cur = absl::StrCat(s.content, cur);
    }
  }
  return cur;
}

}  // namespace g4::tokenizer_internal
