#include "tools/g4_generate/generate_options.h"

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace g4 {

const char kGenerateUsage[] =
    "usage: g4-generate --model DIR --prompt-tokens ID,ID,... --max-new-tokens N "
    "[--logits-out FILE] [--ignore-eos] [--threads N]";

absl::StatusOr<GenerateOptions> ParseGenerateOptions(absl::Span<const char* const> args) {
  GenerateOptions o;
  bool have_tokens = false, have_max = false;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    absl::string_view value;
    bool inline_value = false;
    if (const size_t eq = arg.find('='); arg.substr(0, 2) == "--" && eq != absl::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      inline_value = true;
    }
    auto take = [&]() -> absl::StatusOr<absl::string_view> {
      if (inline_value) return value;
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat(arg, " needs a value"));
      return absl::string_view(args[++i]);
    };
    if (arg == "--ignore-eos") {
      o.ignore_eos = true;
    } else if (arg == "--model" || arg == "--logits-out" || arg == "--prompt-tokens" ||
               arg == "--max-new-tokens" || arg == "--threads") {
      absl::StatusOr<absl::string_view> v = take();
      if (!v.ok()) return v.status();
      if (arg == "--model") {
        o.model_dir = std::string(*v);
      } else if (arg == "--logits-out") {
        o.logits_out = std::string(*v);
      } else if (arg == "--prompt-tokens") {
        have_tokens = true;
        for (absl::string_view piece : absl::StrSplit(*v, ',')) {
          int32_t id;
          if (!absl::SimpleAtoi(piece, &id) || id < 0) {
            return absl::InvalidArgumentError(
                absl::StrCat("--prompt-tokens: \"", piece, "\" is not a token id"));
          }
          o.prompt_tokens.push_back(id);
        }
      } else {
        int n;
        if (!absl::SimpleAtoi(*v, &n) || n < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat(arg, ": \"", *v, "\" is not a non-negative integer"));
        }
        if (arg == "--threads") {
          o.threads = n;
        } else {
          o.max_new_tokens = n;
          have_max = true;
        }
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag \"", args[i], "\""));
    }
  }
  if (o.model_dir.empty()) return absl::InvalidArgumentError("--model is required");
  if (!have_tokens) return absl::InvalidArgumentError("--prompt-tokens is required");
  if (!have_max) return absl::InvalidArgumentError("--max-new-tokens is required");
  return o;
}

}  // namespace g4
