// Prompts from files or standard input, for the command-line tools (g4-generate, g4-client,
// g4-load). A 32768-token id list is longer than Linux allows for one command-line argument
// (128 KiB), so long prompts come from a file; `-` names standard input.
#ifndef G4SERVE_TOOLS_PROMPT_INPUT_PROMPT_INPUT_H_
#define G4SERVE_TOOLS_PROMPT_INPUT_PROMPT_INPUT_H_

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace g4 {

// The whole content of `path` (`-`: standard input), bytes as they are. NOT_FOUND names the
// path when it cannot be opened.
absl::StatusOr<std::string> ReadPromptText(const std::string& path);

// Token ids from `path` (`-`: standard input): integers >= 0 separated by commas and/or
// whitespace, optionally inside one JSON-style [ ... ]. INVALID_ARGUMENT names the first bad
// entry and its position; an empty list is an error too.
absl::StatusOr<std::vector<int32_t>> ReadPromptTokens(const std::string& path);
// The same parser on text already in memory (`what` names the source in errors).
absl::StatusOr<std::vector<int32_t>> ParsePromptTokens(absl::string_view text,
                                                       absl::string_view what);

// One prompt of a prompt file: text, or token ids.
using Prompt = std::variant<std::string, std::vector<int32_t>>;

// A file of prompts (`-`: standard input), JSON Lines: each non-empty line is a JSON string (a
// text prompt) or a JSON array of token ids. INVALID_ARGUMENT names the line; no prompt at all
// is an error.
absl::StatusOr<std::vector<Prompt>> ReadPromptsFile(const std::string& path);

}  // namespace g4

#endif  // G4SERVE_TOOLS_PROMPT_INPUT_PROMPT_INPUT_H_
