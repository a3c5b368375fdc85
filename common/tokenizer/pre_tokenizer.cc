#include "common/tokenizer/pre_tokenizer.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tokenizer/json_util.h"

namespace g4::tokenizer_internal {

absl::StatusOr<PreTokenizer> PreTokenizer::FromJson(const nlohmann::json& j) {
  PreTokenizer p;
  if (j.is_null()) return p;
  G4_ASSIGN_OR_RETURN(std::string type, ComponentType(j, "pre_tokenizer"));
  if (type == "Sequence") {
    auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) {
      return absl::InvalidArgumentError("pre_tokenizer Sequence: missing array \"pretokenizers\"");
    }
    for (const auto& sub : *it) {
      G4_ASSIGN_OR_RETURN(PreTokenizer s, FromJson(sub));
      for (auto& step : s.steps_) p.steps_.push_back(std::move(step));
    }
    return p;
  }
  if (type != "Split") {
    return absl::InvalidArgumentError(absl::StrCat("unsupported pre_tokenizer type \"", type,
                                                   "\" (supported: Split, Sequence)"));
  }
  Step step;
  G4_ASSIGN_OR_RETURN(step.pattern, GetStringPattern(j, "pre_tokenizer Split"));
  if (step.pattern.empty()) return absl::InvalidArgumentError("pre_tokenizer Split: empty pattern");
  G4_ASSIGN_OR_RETURN(bool invert, GetBool(j, "invert", false, "pre_tokenizer Split"));
  if (invert) return absl::UnimplementedError("pre_tokenizer Split: invert=true is not supported");
  G4_ASSIGN_OR_RETURN(std::string behavior, GetString(j, "behavior", "pre_tokenizer Split"));
  if (behavior == "Removed") {
    step.behavior = Behavior::kRemoved;
  } else if (behavior == "Isolated") {
    step.behavior = Behavior::kIsolated;
  } else if (behavior == "MergedWithPrevious") {
    step.behavior = Behavior::kMergedWithPrevious;
  } else if (behavior == "MergedWithNext") {
    step.behavior = Behavior::kMergedWithNext;
  } else if (behavior == "Contiguous") {
    step.behavior = Behavior::kContiguous;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("pre_tokenizer Split: unknown behavior \"", behavior, "\""));
  }
  p.steps_.push_back(std::move(step));
  return p;
}

void PreTokenizer::ApplyStep(const Step& step, absl::string_view piece,
                             std::vector<absl::string_view>* out) {
  // (start, end, is_match) segments covering `piece`, like HF's split().
  struct Seg {
    size_t b, e;
    bool match;
  };
  std::vector<Seg> segs;
  size_t prev = 0;
  for (size_t pos = piece.find(step.pattern); pos != absl::string_view::npos;
       pos = piece.find(step.pattern, pos + step.pattern.size())) {
    if (pos > prev) segs.push_back({prev, pos, false});
    segs.push_back({pos, pos + step.pattern.size(), true});
    prev = pos + step.pattern.size();
  }
  if (prev < piece.size()) segs.push_back({prev, piece.size(), false});

  std::vector<Seg> merged;
  switch (step.behavior) {
    case Behavior::kRemoved:
      for (const Seg& s : segs)
        if (!s.match) merged.push_back(s);
      break;
    case Behavior::kIsolated:
      merged = segs;
      break;
    case Behavior::kContiguous:
      for (const Seg& s : segs) {
        if (!merged.empty() && merged.back().match == s.match) {
          merged.back().e = s.e;
        } else {
          merged.push_back(s);
        }
      }
      break;
    case Behavior::kMergedWithPrevious: {
      bool prev_match = false;
      for (const Seg& s : segs) {
        if (s.match && !merged.empty() && !prev_match) {
          merged.back().e = s.e;
        } else {
          merged.push_back(s);
        }
        prev_match = s.match;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool prev_match = false;
      for (const Seg& s : segs) {
        if (prev_match && !s.match && !merged.empty()) {
          merged.back().e = s.e;
        } else {
          merged.push_back(s);
        }
        prev_match = s.match;
      }
      break;
    }
  }
  for (const Seg& s : merged) {
    if (s.e > s.b) out->push_back(piece.substr(s.b, s.e - s.b));
  }
}

void PreTokenizer::Split(absl::string_view text, std::vector<absl::string_view>* out) const {
  if (text.empty()) return;
  if (steps_.empty()) {
    out->push_back(text);
    return;
  }
  std::vector<absl::string_view> cur{text}, next;
  for (const Step& step : steps_) {
    next.clear();
    for (absl::string_view piece : cur) ApplyStep(step, piece, &next);
    cur.swap(next);
  }
  out->insert(out->end(), cur.begin(), cur.end());
}

}  // namespace g4::tokenizer_internal
