#include "tools/prompt_input/prompt_input.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace g4 {

absl::StatusOr<std::string> ReadPromptText(const std::string& path) {
  if (path == "-") {
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return absl::DataLossError("reading standard input failed");
    return all;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open \"", path, "\""));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("reading \"", path, "\" failed"));
  return ss.str();
}

absl::StatusOr<std::vector<int32_t>> ParsePromptTokens(absl::string_view text,
                                                       absl::string_view what) {
  absl::string_view body = absl::StripAsciiWhitespace(text);
  if (!body.empty() && body.front() == '[') {
    if (body.back() != ']') {
      return absl::InvalidArgumentError(absl::StrCat(what, ": '[' without a closing ']'"));
    }
    body = body.substr(1, body.size() - 2);
  }
  std::vector<int32_t> ids;
  size_t index = 0;
  for (absl::string_view piece :
       absl::StrSplit(body, absl::ByAnyChar(", \t\r\n"), absl::SkipEmpty())) {
    int32_t id;
    if (!absl::SimpleAtoi(piece, &id) || id < 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": entry ", index, " \"",
                                                     piece.substr(0, 32),
                                                     "\" is not a token id (an integer >= 0)"));
    }
    ids.push_back(id);
    ++index;
  }
  if (ids.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": no token ids"));
  return ids;
}

absl::StatusOr<std::vector<int32_t>> ReadPromptTokens(const std::string& path) {
  absl::StatusOr<std::string> text = ReadPromptText(path);
  if (!text.ok()) return text.status();
  return ParsePromptTokens(*text, path == "-" ? "standard input" : path);
}

absl::StatusOr<std::vector<Prompt>> ReadPromptsFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadPromptText(path);
  if (!text.ok()) return text.status();
  const std::string where = path == "-" ? "standard input" : path;
  std::vector<Prompt> prompts;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++line_number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const std::string at = absl::StrCat(where, ":", line_number);
    if (j.is_string()) {
      prompts.push_back(j.get<std::string>());
    } else if (j.is_array() && !j.empty()) {
      std::vector<int32_t> ids;
      for (const nlohmann::json& v : j) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
          return absl::InvalidArgumentError(
              absl::StrCat(at, ": token ids must be integers in [0, 2^31), got ", v.dump()));
        }
        ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
      }
      prompts.push_back(std::move(ids));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          at, ": each line must be a JSON string (text) or a non-empty array of token ids"));
    }
  }
  if (prompts.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": no prompts"));
  return prompts;
}

}  // namespace g4
