// Command line of g4-generate (a contract: see docs/cli.md).
#ifndef G4SERVE_TOOLS_G4_GENERATE_GENERATE_OPTIONS_H_
#define G4SERVE_TOOLS_G4_GENERATE_GENERATE_OPTIONS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "worker/sampling/sampling_params.h"

namespace g4 {

struct GenerateOptions {
  std::string model_dir;
  // Exactly one prompt form.
  std::vector<int32_t> prompt_tokens;
  std::optional<std::string> prompt_text;  // --prompt: tokenized with <bos> added
  std::optional<std::string> chat_text;    // --chat: one user message through the chat template
  // --prompt-file PATH (text, as --prompt) / --prompt-tokens-file PATH (ids, as --prompt-tokens);
  // `-` is standard input. Read by main (tools/prompt_input).
  std::string prompt_file;
  std::string prompt_tokens_file;
  int max_new_tokens = 0;
  std::string logits_out;  // empty: none
  int threads = 0;         // 0: the BLAS default
  // Sampling: greedy unless --temperature says otherwise. max_tokens, ignore_eos and stop
  // strings are set from their flags.
  SamplingRequest sampling;
  bool help = false;  // --help / -h: nothing else was checked
};

// Parses argv[1..] (common/flags/flag_set.h). Errors name the flag and what is wrong.
absl::StatusOr<GenerateOptions> ParseGenerateOptions(absl::Span<const char* const> args);

// The --help text: every flag with its meaning and default.
std::string GenerateUsage();

}  // namespace g4

#endif  // G4SERVE_TOOLS_G4_GENERATE_GENERATE_OPTIONS_H_
