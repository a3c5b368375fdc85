// g4-tokenize --tokenizer FILE (--text TEXT | --jsonl FILE) [--add-bos]
//
// Prints the token ids of TEXT as a JSON list (no special tokens unless --add-bos). With --jsonl,
// reads lines {"text": ...} and writes one line {"ids": [...]} per input line, in order (lines
// that are empty or only whitespace are skipped). Flags may be written "--flag VALUE" or
// "--flag=VALUE" (common/flags/flag_set.h). Bad flags: one line on stderr, exit 2. Other errors
// (unreadable tokenizer or input, a malformed JSONL line): one line on stderr, exit 1.
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
#include "common/flags/flag_set.h"
#include "common/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "g4-tokenize: %s\n", msg.c_str());
  return 1;
}

std::string IdsJson(const std::vector<int32_t>& ids) {
  return absl::StrCat("[", absl::StrJoin(ids, ","), "]");
}

}  // namespace

int main(int argc, char** argv) {
  std::string tokenizer_path;
  std::optional<std::string> text, jsonl;
  bool add_bos = false;
  g4::FlagSet flags("g4-tokenize", "--tokenizer FILE (--text TEXT | --jsonl FILE) [--add-bos]",
                    "Prints the token ids of TEXT as a JSON list, or one line {\"ids\": [...]} per "
                    "JSONL input line {\"text\": ...}. Exit 2 on bad flags, 1 on other errors.");
  flags.RejectDuplicates();
  flags.Add("tokenizer", &tokenizer_path, "a Hugging Face tokenizer.json (or .json.xz)")
      .Value("FILE")
      .Required()
      .NonEmpty();
  flags.Add("text", &text, "the text to tokenize").Value("TEXT");
  flags.Add("jsonl", &jsonl, "a file of lines {\"text\": ...}; blank lines are skipped")
      .Value("FILE");
  flags.Add("add-bos", &add_bos, "add the special tokens (<bos>)");
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) return g4::FlagError("g4-tokenize", s);
  if (flags.help()) return g4::PrintUsage(flags.Usage());
  if (text.has_value() == jsonl.has_value()) {
    return g4::FlagError("g4-tokenize", absl::InvalidArgumentError(
                                            "exactly one of --text and --jsonl is required"));
  }

  auto tok = g4::Tokenizer::LoadFromFile(tokenizer_path);
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
