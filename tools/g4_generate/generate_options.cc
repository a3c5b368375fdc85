#include "tools/g4_generate/generate_options.h"

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/flags/flag_set.h"
#include "common/status_macros.h"

namespace g4 {
namespace {

constexpr char kProgram[] = "g4-generate";
constexpr char kSynopsis[] =
    "--model DIR (--prompt-tokens ID,ID,... | --prompt TEXT | --chat TEXT | --prompt-file PATH | "
    "--prompt-tokens-file PATH) --max-new-tokens N [flags]";
constexpr char kDescription[] =
    "Generation on the CPU reference backend: prints the generated text (when the model has a "
    "tokenizer.json), then the generated ids as one JSON list on the last line. Greedy unless "
    "--temperature is given. docs/cli.md.";

void DeclareFlags(FlagSet& flags, GenerateOptions& o) {
  o.sampling.temperature = 0.0;  // greedy unless asked otherwise
  flags.Add("model", &o.model_dir, "Hugging Face Gemma 4 checkpoint directory")
      .Value("DIR")
      .Required()
      .NonEmpty();
  flags.AddCustom("prompt-tokens", "ID,ID,...", "comma-separated token ids, used as given (no BOS)",
                  [&o](absl::string_view value) -> absl::Status {
                    o.prompt_tokens.clear();
                    for (absl::string_view piece : absl::StrSplit(value, ',')) {
                      int32_t id;
                      if (!absl::SimpleAtoi(piece, &id) || id < 0) {
                        return absl::InvalidArgumentError(
                            absl::StrCat("\"", piece, "\" is not a token id"));
                      }
                      o.prompt_tokens.push_back(id);
                    }
                    return absl::OkStatus();
                  });
  flags.Add("prompt", &o.prompt_text, "text, tokenized with <bos> added").Value("TEXT");
  flags.Add("chat", &o.chat_text,
            "one user message rendered by the model's chat_template.jinja (generation prompt "
            "added)")
      .Value("TEXT");
  flags.Add("prompt-file", &o.prompt_file,
            "text read from this file (- for stdin), tokenized with <bos> added")
      .Value("PATH");
  flags.Add("prompt-tokens-file", &o.prompt_tokens_file,
            "token ids read from this file (- for stdin): a JSON list or ids separated by "
            "commas or whitespace, used as given (no BOS)")
      .Value("PATH");
  flags.Add("max-new-tokens", &o.max_new_tokens, "generate at most N tokens (0 prints [])")
      .Min(0)
      .Required();
  flags.Add("logits-out", &o.logits_out,
            "write one line {\"logits\":[...]} per generated position")
      .Value("FILE");
  flags.Add("ignore-eos", &o.sampling.ignore_eos, "do not stop at the stop tokens");
  flags.Add("threads", &o.threads, "BLAS threads; 0 = OpenBLAS's default (all cores)")
      .Range(0, 4096);
  flags.Add("temperature", &o.sampling.temperature, "sampling temperature; 0 = greedy")
      .Value("T")
      .Default("0, greedy");
  flags.Add("top-k", &o.sampling.top_k, "keep the K most likely tokens").Value("K").Default("off");
  flags.Add("top-p", &o.sampling.top_p, "nucleus sampling mass").Value("P").Default("off");
  flags.Add("min-p", &o.sampling.min_p, "drop tokens below P times the top probability")
      .Value("P")
      .Default("off");
  flags.Add("seed", &o.sampling.seed, "random seed for sampling").Value("S").Default("random");
  flags.Add("repetition-penalty", &o.sampling.repetition_penalty, "repetition penalty")
      .Value("R")
      .Default("off");
  flags.Add("presence-penalty", &o.sampling.presence_penalty, "presence penalty")
      .Value("P")
      .Default("off");
  flags.Add("frequency-penalty", &o.sampling.frequency_penalty, "frequency penalty")
      .Value("F")
      .Default("off");
  flags.Add("stop", &o.sampling.stop,
            "a stop string, matched on the text across token boundaries; not printed")
      .Value("STRING");
}

constexpr FlagSpec<GenerateOptions> kSpec = {kProgram, kSynopsis, kDescription, DeclareFlags};

}  // namespace

std::string GenerateUsage() { return kSpec.Usage(); }

absl::StatusOr<GenerateOptions> ParseGenerateOptions(absl::Span<const char* const> args) {
  GenerateOptions o;
  G4_RETURN_IF_ERROR(kSpec.Parse(args, &o));
  if (o.help) return o;
  // A given --prompt-tokens always holds ids: an empty list does not parse.
  const bool have_tokens = !o.prompt_tokens.empty();
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
  return o;
}

}  // namespace g4
