#include "common/chat_output/gemma_tool_args.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace g4 {
namespace {

using Json = nlohmann::json;

constexpr absl::string_view kStringDelim = "<|\"|>";

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Characters that end a bare key or a scalar token.
bool IsStructural(char c) {
  return c == ':' || c == ',' || c == '{' || c == '}' || c == '[' || c == ']' || c == '"' ||
         c == '<' || IsSpace(c);
}

class ArgParser {
 public:
  explicit ArgParser(absl::string_view text) : s_(text) {}

  absl::StatusOr<Json> ParseTopLevel() {
    SkipSpace();
    if (!Peek('{')) return Error("arguments must start with '{'");
    G4_ASSIGN_OR_RETURN(Json value, ParseValue(0));
    SkipSpace();
    if (pos_ != s_.size()) return Error("unexpected text after the arguments object");
    return value;
  }

 private:
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed tool arguments: ", what, " at offset ", pos_));
  }
  bool AtEnd() const { return pos_ >= s_.size(); }
  bool Peek(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  bool LooksAt(absl::string_view p) const { return absl::StartsWith(s_.substr(pos_), p); }
  void SkipSpace() {
    while (pos_ < s_.size() && IsSpace(s_[pos_])) ++pos_;
  }

  absl::StatusOr<Json> ParseValue(int depth) {
    SkipSpace();
    if (AtEnd()) return Error("unexpected end of input");
    if (LooksAt(kStringDelim)) {
      G4_ASSIGN_OR_RETURN(std::string s, ParseDelimitedString());
      return Json(std::move(s));
    }
    const char c = s_[pos_];
    if (c == '"') {
      G4_ASSIGN_OR_RETURN(std::string s, ParseJsonString());
      return Json(std::move(s));
    }
    if (c == '{' || c == '[') {
      if (depth >= kMaxToolArgumentDepth) return Error("nesting too deep");
      return c == '{' ? ParseObject(depth + 1) : ParseArray(depth + 1);
    }
    return ParseScalar();
  }

  // `<|"|>...<|"|>`: everything up to the next delimiter, verbatim.
  absl::StatusOr<std::string> ParseDelimitedString() {
    pos_ += kStringDelim.size();
    const size_t end = s_.find(kStringDelim, pos_);
    if (end == absl::string_view::npos) return Error("unterminated <|\"|> string");
    std::string out(s_.substr(pos_, end - pos_));
    pos_ = end + kStringDelim.size();
    return out;
  }

  // A standard JSON string literal ("..." with escapes), decoded by nlohmann.
  absl::StatusOr<std::string> ParseJsonString() {
    const size_t start = pos_++;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '\\') {
        pos_ += 2;
        continue;
      }
      ++pos_;
      if (c == '"') {
        const absl::string_view lit = s_.substr(start, pos_ - start);
        Json j = Json::parse(lit.begin(), lit.end(), nullptr,
                             /*allow_exceptions=*/false);
        if (j.is_discarded() || !j.is_string()) return Error("invalid JSON string literal");
        return j.get<std::string>();
      }
    }
    pos_ = s_.size();
    return Error("unterminated JSON string");
  }

  absl::StatusOr<std::string> ParseKey() {
    SkipSpace();
    if (LooksAt(kStringDelim)) return ParseDelimitedString();
    if (Peek('"')) return ParseJsonString();
    const size_t start = pos_;
    while (pos_ < s_.size() && !IsStructural(s_[pos_])) ++pos_;
    if (pos_ == start) return Error("expected a key");
    return std::string(s_.substr(start, pos_ - start));
  }

  absl::StatusOr<Json> ParseObject(int depth) {
    ++pos_;  // '{'
    Json obj = Json::object();
    SkipSpace();
    if (Peek('}')) {
      ++pos_;
      return obj;
    }
    while (true) {
      G4_ASSIGN_OR_RETURN(std::string key, ParseKey());
      SkipSpace();
      if (!Peek(':')) return Error("expected ':' after key");
      ++pos_;
      G4_ASSIGN_OR_RETURN(Json value, ParseValue(depth));
      obj[key] = std::move(value);
      SkipSpace();
      if (Peek(',')) {
        ++pos_;
        SkipSpace();
        if (Peek('}')) {  // tolerated trailing comma
          ++pos_;
          return obj;
        }
        continue;
      }
      if (Peek('}')) {
        ++pos_;
        return obj;
      }
      return Error("expected ',' or '}' in object");
    }
  }

  absl::StatusOr<Json> ParseArray(int depth) {
    ++pos_;  // '['
    Json arr = Json::array();
    SkipSpace();
    if (Peek(']')) {
      ++pos_;
      return arr;
    }
    while (true) {
      G4_ASSIGN_OR_RETURN(Json value, ParseValue(depth));
      arr.push_back(std::move(value));
      SkipSpace();
      if (Peek(',')) {
        ++pos_;
        SkipSpace();
        if (Peek(']')) {  // tolerated trailing comma
          ++pos_;
          return arr;
        }
        continue;
      }
      if (Peek(']')) {
        ++pos_;
        return arr;
      }
      return Error("expected ',' or ']' in array");
    }
  }

  // Numbers (JSON grammar), true/false/null and their Python spellings.
  absl::StatusOr<Json> ParseScalar() {
    const size_t start = pos_;
    while (pos_ < s_.size() && !IsStructural(s_[pos_])) ++pos_;
    const absl::string_view tok = s_.substr(start, pos_ - start);
    if (tok.empty()) return Error("expected a value");
    if (tok == "true" || tok == "True") return Json(true);
    if (tok == "false" || tok == "False") return Json(false);
    if (tok == "null" || tok == "None") return Json(nullptr);
    const char c = tok[0];
    if (c == '-' || (c >= '0' && c <= '9')) {
      Json j = Json::parse(tok.begin(), tok.end(), nullptr,
                           /*allow_exceptions=*/false);
      if (!j.is_discarded() && j.is_number()) return j;
    }
    pos_ = start;
    return Error(absl::StrCat("invalid value '", tok.substr(0, 32), "'"));
  }

  absl::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<nlohmann::json> ParseGemmaToolArguments(absl::string_view text) {
  return ArgParser(text).ParseTopLevel();
}

std::string ToolArgumentsToJsonString(const nlohmann::json& arguments) {
  return arguments.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

}  // namespace g4
