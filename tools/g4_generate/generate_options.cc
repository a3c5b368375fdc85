#include "tools/g4_generate/generate_options.h"

#include <algorithm>
#include <iterator>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace g4 {

const char kGenerateUsage[] =
    "usage: g4-generate --model DIR (--prompt-tokens ID,ID,... | --prompt TEXT | --chat TEXT | "
    "--prompt-file PATH | --prompt-tokens-file PATH) "
    "--max-new-tokens N [--logits-out FILE] [--ignore-eos] [--threads N] [--temperature T] "
    "[--top-k K] [--top-p P] [--min-p P] [--repetition-penalty R] [--presence-penalty P] "
    "[--frequency-penalty F] [--seed S] [--stop STRING]...";

namespace {

absl::Status BadValue(absl::string_view flag, absl::string_view value, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": \"", value, "\" is not ", what));
}

}  // namespace

absl::StatusOr<GenerateOptions> ParseGenerateOptions(absl::Span<const char* const> args) {
  GenerateOptions o;
  bool have_tokens = false, have_max = false;
  o.sampling.temperature = 0.0;  // greedy unless asked otherwise
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    absl::string_view value;
    bool inline_value = false;
    if (const size_t eq = arg.find('='); arg.substr(0, 2) == "--" && eq != absl::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      inline_value = true;
    }
    if (arg == "--ignore-eos") {
      o.sampling.ignore_eos = true;
      continue;
    }
    static constexpr absl::string_view kValueFlags[] = {
        "--model", "--logits-out", "--prompt", "--chat", "--stop", "--prompt-tokens",
        "--prompt-file", "--prompt-tokens-file",
        "--max-new-tokens", "--threads", "--top-k", "--seed", "--temperature", "--top-p", "--min-p",
        "--repetition-penalty", "--presence-penalty", "--frequency-penalty"};
    if (std::find(std::begin(kValueFlags), std::end(kValueFlags), arg) == std::end(kValueFlags)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag \"", args[i], "\""));
    }
    if (!inline_value) {
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat(arg, " needs a value"));
      value = args[++i];
    }
    auto int_flag = [&](auto* out) -> absl::Status {
      if (!absl::SimpleAtoi(value, out)) return BadValue(arg, value, "an integer");
      return absl::OkStatus();
    };
    auto float_flag = [&](std::optional<double>* out) -> absl::Status {
      double d;
      if (!absl::SimpleAtod(value, &d)) return BadValue(arg, value, "a number");
      *out = d;
      return absl::OkStatus();
    };
    absl::Status st;
    if (arg == "--model") {
      o.model_dir = std::string(value);
    } else if (arg == "--logits-out") {
      o.logits_out = std::string(value);
    } else if (arg == "--prompt") {
      o.prompt_text = std::string(value);
    } else if (arg == "--chat") {
      o.chat_text = std::string(value);
    } else if (arg == "--prompt-file") {
      o.prompt_file = std::string(value);
    } else if (arg == "--prompt-tokens-file") {
      o.prompt_tokens_file = std::string(value);
    } else if (arg == "--stop") {
      o.sampling.stop.push_back(std::string(value));
    } else if (arg == "--prompt-tokens") {
      have_tokens = true;
      for (absl::string_view piece : absl::StrSplit(value, ',')) {
        int32_t id;
        if (!absl::SimpleAtoi(piece, &id) || id < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("--prompt-tokens: \"", piece, "\" is not a token id"));
        }
        o.prompt_tokens.push_back(id);
      }
    } else if (arg == "--max-new-tokens" || arg == "--threads") {
      int n;
      if (!absl::SimpleAtoi(value, &n) || n < 0) return BadValue(arg, value, "a non-negative integer");
      (arg == "--threads" ? o.threads : o.max_new_tokens) = n;
      have_max = have_max || arg == "--max-new-tokens";
    } else if (arg == "--top-k") {
      int k;
      st = int_flag(&k);
      o.sampling.top_k = k;
    } else if (arg == "--seed") {
      uint64_t s;
      st = int_flag(&s);
      o.sampling.seed = s;
    } else if (arg == "--temperature") {
      st = float_flag(&o.sampling.temperature);
    } else if (arg == "--top-p") {
      st = float_flag(&o.sampling.top_p);
    } else if (arg == "--min-p") {
      st = float_flag(&o.sampling.min_p);
    } else if (arg == "--repetition-penalty") {
      st = float_flag(&o.sampling.repetition_penalty);
    } else if (arg == "--presence-penalty") {
      st = float_flag(&o.sampling.presence_penalty);
    } else if (arg == "--frequency-penalty") {
      st = float_flag(&o.sampling.frequency_penalty);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag \"", args[i], "\""));
    }
    if (!st.ok()) return st;
  }
  if (o.model_dir.empty()) return absl::InvalidArgumentError("--model is required");
  const int prompts = have_tokens + o.prompt_text.has_value() + o.chat_text.has_value() +
                      !o.prompt_file.empty() + !o.prompt_tokens_file.empty();
  if (prompts == 0) {
    return absl::InvalidArgumentError(
        "--prompt-tokens, --prompt, --chat, --prompt-file or --prompt-tokens-file is required");
  }
  if (prompts > 1) {
    return absl::InvalidArgumentError(
        "give only one of --prompt-tokens, --prompt, --chat, --prompt-file and "
        "--prompt-tokens-file");
  }
  if (!have_max) return absl::InvalidArgumentError("--max-new-tokens is required");
  return o;
}

}  // namespace g4
