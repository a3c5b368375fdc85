#include "common/tokenizer/decoder.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "common/tokenizer/json_util.h"
#include "common/tokenizer/utf8.h"

namespace g4::tokenizer_internal {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// HF Strip: removes up to `start` leading and `stop` trailing occurrences of the char `content`.
std::string Strip(const std::string& token, const std::string& content, int start, int stop) {
  size_t b = 0, e = token.size();
  for (int i = 0; i < start && b < e && token.compare(b, content.size(), content) == 0; ++i) {
    b += content.size();
  }
  for (int i = 0; i < stop && e >= b + content.size() &&
                  token.compare(e - content.size(), content.size(), content) == 0;
       ++i) {
    e -= content.size();
  }
  return token.substr(b, e - b);
}

}  // namespace

std::optional<uint8_t> ByteFallbackValue(absl::string_view token) {
  if (token.size() != 6 || token[0] != '<' || token[1] != '0' || token[2] != 'x' ||
      token[5] != '>') {
    return std::nullopt;
  }
  const int hi = HexDigit(token[3]), lo = HexDigit(token[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(hi * 16 + lo);
}

absl::Status Decoder::AddSteps(const nlohmann::json& j, std::vector<Step>* steps) {
  G4_ASSIGN_OR_RETURN(std::string type, ComponentType(j, "decoder"));
  Step s;
  if (type == "Sequence") {
    auto it = j.find("decoders");
    if (it == j.end() || !it->is_array()) {
      return absl::InvalidArgumentError("decoder Sequence: missing array \"decoders\"");
    }
    for (const auto& sub : *it) G4_RETURN_IF_ERROR(AddSteps(sub, steps));
    return absl::OkStatus();
  } else if (type == "Replace") {
    s.kind = Step::kReplace;
    G4_ASSIGN_OR_RETURN(s.pattern, GetStringPattern(j, "decoder Replace"));
    G4_ASSIGN_OR_RETURN(s.content, GetString(j, "content", "decoder Replace"));
    if (s.pattern.empty()) return absl::InvalidArgumentError("decoder Replace: empty pattern");
  } else if (type == "ByteFallback") {
    s.kind = Step::kByteFallback;
  } else if (type == "Fuse") {
    s.kind = Step::kFuse;
  } else if (type == "Strip") {
    s.kind = Step::kStrip;
    G4_ASSIGN_OR_RETURN(s.content, GetString(j, "content", "decoder Strip"));
    auto start = j.find("start"), stop = j.find("stop");
    if (start == j.end() || !start->is_number_unsigned() || stop == j.end() ||
        !stop->is_number_unsigned()) {
      return absl::InvalidArgumentError("decoder Strip: \"start\"/\"stop\" must be unsigned ints");
    }
    s.start = start->get<int>();
    s.stop = stop->get<int>();
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported decoder type \"", type,
                     "\" (supported: Replace, ByteFallback, Fuse, Strip, Sequence)"));
  }
  steps->push_back(std::move(s));
  return absl::OkStatus();
}

absl::StatusOr<Decoder> Decoder::FromJson(const nlohmann::json& j) {
  Decoder d;
  if (j.is_null()) return d;
  G4_RETURN_IF_ERROR(AddSteps(j, &d.steps_));
  bool fused = false;
  for (const Step& s : d.steps_) {
    if (fused && s.kind != Step::kFuse) d.streamable_ = false;
    if (s.kind == Step::kFuse) fused = true;
    if (s.kind == Step::kByteFallback) d.has_byte_fallback_ = true;
  }
  return d;
}

std::string Decoder::Decode(std::vector<std::string> tokens) const {
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Step::kReplace:
        for (std::string& t : tokens) {
          if (t.find(s.pattern) != std::string::npos) {
            t = absl::StrReplaceAll(t, {{s.pattern, s.content}});
          }
        }
        break;
      case Step::kStrip:
        for (std::string& t : tokens) t = Strip(t, s.content, s.start, s.stop);
        break;
      case Step::kFuse: {
        std::string all = absl::StrJoin(tokens, "");
        tokens.clear();
        tokens.push_back(std::move(all));
        break;
      }
      case Step::kByteFallback: {
        std::vector<std::string> out;
        out.reserve(tokens.size());
        std::string bytes;
        auto flush = [&] {
          if (bytes.empty()) return;
          if (IsValidUtf8(bytes)) {
            out.push_back(bytes);
          } else {
            // HF: one U+FFFD per byte of an invalid group.
            for (size_t i = 0; i < bytes.size(); ++i) out.emplace_back(kReplacementChar);
          }
          bytes.clear();
        };
        for (std::string& t : tokens) {
          if (auto b = ByteFallbackValue(t)) {
            bytes.push_back(static_cast<char>(*b));
          } else {
            flush();
            out.push_back(std::move(t));
          }
        }
        flush();
        tokens.swap(out);
        break;
      }
    }
  }
  return absl::StrJoin(tokens, "");
}

}  // namespace g4::tokenizer_internal
