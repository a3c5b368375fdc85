// g4-tokenize --tokenizer FILE (--text TEXT | --jsonl FILE) [--add-bos]
//
// Prints the token ids of TEXT as a JSON list (no special tokens unless --add-bos). With --jsonl,
// reads lines {"text": ...} and writes one line {"ids": [...]} per input line, in order (lines
// that are empty or only whitespace are skipped). Flags may be written "--flag VALUE" or
// "--flag=VALUE". Bad flags: one line on stderr, exit 2. Other errors (unreadable tokenizer or
// input, a malformed JSONL line): one line on stderr, exit 1.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace {

constexpr char kUsage[] =
    "usage: g4-tokenize --tokenizer FILE (--text TEXT | --jsonl FILE) [--add-bos]";

int UsageError(const std::string& msg) {
  std::fprintf(stderr, "g4-tokenize: %s (%s)\n", msg.c_str(), kUsage);
  return 2;
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "g4-tokenize: %s\n", msg.c_str());
  return 1;
}

std::string IdsJson(const std::vector<int32_t>& ids) {
  return absl::StrCat("[", absl::StrJoin(ids, ","), "]");
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::string> tokenizer_path, text, jsonl;
  bool add_bos = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--add-bos") {
      add_bos = true;
      continue;
    }
    std::optional<std::string>* target = nullptr;
    std::string name = arg, value;
    bool has_inline = false;
    if (const size_t eq = arg.find('='); absl::StartsWith(arg, "--") && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_inline = true;
    }
    if (name == "--tokenizer") {
      target = &tokenizer_path;
    } else if (name == "--text") {
      target = &text;
    } else if (name == "--jsonl") {
      target = &jsonl;
    } else if (name == "--help" || name == "-h") {
      std::printf("%s\n", kUsage);
      return 0;
    } else {
      return UsageError(absl::StrCat("unknown flag '", arg, "'"));
    }
    if (!has_inline) {
      if (i + 1 >= argc) return UsageError(absl::StrCat(name, " needs a value"));
      value = argv[++i];
    }
    if (target->has_value()) return UsageError(absl::StrCat(name, " given twice"));
    *target = std::move(value);
  }
  if (!tokenizer_path) return UsageError("--tokenizer is required");
  if (text.has_value() == jsonl.has_value()) {
    return UsageError("exactly one of --text and --jsonl is required");
  }

  auto tok = g4::Tokenizer::LoadFromFile(*tokenizer_path);
  if (!tok.ok()) return Fail(std::string(tok.status().message()));

  if (text) {
    std::printf("%s\n", IdsJson((*tok)->Encode(*text, add_bos)).c_str());
    return 0;
  }
  std::ifstream in(*jsonl, std::ios::binary);
  if (!in) return Fail(absl::StrCat("cannot open ", *jsonl));
  std::string line, out;
  for (size_t lineno = 1; std::getline(in, line); ++lineno) {
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return Fail(absl::StrCat(*jsonl, ":", lineno, ": not a JSON object"));
    }
    auto it = j.find("text");
    if (it == j.end() || !it->is_string()) {
      return Fail(absl::StrCat(*jsonl, ":", lineno, ": missing string field \"text\""));
    }
    out = absl::StrCat("{\"ids\":", IdsJson((*tok)->Encode(it->get_ref<const std::string&>(),
                                                             add_bos)),
                       "}\n");
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  if (in.bad()) return Fail(absl::StrCat("error reading ", *jsonl));
  return std::fflush(stdout) == 0 ? 0 : Fail("error writing output");
}
