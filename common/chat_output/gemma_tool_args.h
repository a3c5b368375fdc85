// Gemma 4 tool-call argument syntax -> JSON.
//
// The chat template renders tool-call arguments as `{key:value,...}` where keys
// are bare and string values are wrapped in the escape token `<|"|>` (e.g.
// `{location:<|"|>Paris<|"|>,days:3}`). This module converts that syntax (as
// emitted by the model) into nlohmann::json. See docs/output_parsing.md for the
// accepted grammar.
#ifndef G4SERVE_COMMON_CHAT_OUTPUT_GEMMA_TOOL_ARGS_H_
#define G4SERVE_COMMON_CHAT_OUTPUT_GEMMA_TOOL_ARGS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/json_depth.h"
#include "nlohmann/json.hpp"

namespace g4 {

// Maximum nesting depth of objects/arrays accepted by ParseGemmaToolArguments: the bound every
// JSON from outside gets (common/json_depth.h).
inline constexpr int kMaxToolArgumentDepth = kMaxJsonDepth;

// Parses one Gemma argument object (`{...}`, surrounding whitespace allowed)
// into a JSON object. Strings between `<|"|>` delimiters are taken verbatim
// (they may contain `,:{}[]"\`, newlines, any UTF-8). Also accepted, for
// robustness: `<|"|>`-quoted keys, JSON double-quoted strings/keys,
// `True`/`False`/`None`, a trailing comma. Returns InvalidArgument on anything
// else (unterminated strings, bare-word values, unbalanced brackets, trailing
// text, nesting deeper than kMaxToolArgumentDepth). Never throws.
absl::StatusOr<nlohmann::json> ParseGemmaToolArguments(absl::string_view text);

// Compact JSON text for OpenAI's `arguments` field. Invalid UTF-8 inside
// strings is replaced with U+FFFD instead of throwing.
std::string ToolArgumentsToJsonString(const nlohmann::json& arguments);

}  // namespace g4

#endif  // G4SERVE_COMMON_CHAT_OUTPUT_GEMMA_TOOL_ARGS_H_
