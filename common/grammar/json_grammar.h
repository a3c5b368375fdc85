// What a structured-output request constrains (a JSON Schema, any JSON object, or forced Gemma 4
// tool calls) and its translation into a Grammar.
//
// Canonical forms (the grammar allows exactly these; docs/structured_outputs.md):
// * JSON: Python json.dumps layout: ", " between members/items, ": " after keys, no other
//   whitespace, no leading/trailing whitespace. Properties appear in schema order; optional ones
//   may be left out; properties not in `properties` are never generated. Integers have at most
//   15 digits; numbers are -?(0|[1-9][0-9]{0,14})(.[0-9]{1,15})?([eE][+-]?[0-9]{1,2})?.
//   Strings are valid UTF-8 with JSON escapes (\uXXXX outside the surrogate range); a raw "<" is
//   never followed by "|", "c", "t" or "e" (write \u003c), so the output cannot contain Gemma 4's
//   control markers (<|tool_call>, <channel|>, <turn|>, <eos>, ...) that the chat output parser
//   would act on. enum/const strings are written with "<" as \u003c.
// * Gemma 4 tool calls: <|tool_call>call:NAME{key:value,...}<tool_call|>, the argument syntax of
//   the chat template (bare keys, strings between <|"|> markers, no spaces); the same "<" rule
//   applies inside strings, which have no escapes.
#ifndef G4SERVE_COMMON_GRAMMAR_JSON_GRAMMAR_H_
#define G4SERVE_COMMON_GRAMMAR_JSON_GRAMMAR_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "common/grammar/grammar.h"
#include "nlohmann/json.hpp"

namespace g4::grammar {

// Gemma 4 markers the tool-call grammar uses (special tokens in Gemma 4's vocabulary).
inline constexpr char kToolCallOpen[] = "<|tool_call>";
inline constexpr char kToolCallClose[] = "<tool_call|>";
inline constexpr char kGemmaQuote[] = "<|\"|>";

// Most automaton states one grammar may have (bounded repetitions are unrolled).
inline constexpr int32_t kMaxGrammarNodes = 1'000'000;

struct ToolSpec {
  std::string name;
  nlohmann::ordered_json parameters;  // JSON Schema of the arguments object; null: any object
};

struct StructuredOutputSpec {
  enum class Kind { kJsonSchema, kJsonObject, kToolCalls };
  Kind kind = Kind::kJsonObject;
  nlohmann::ordered_json schema;  // kJsonSchema (key order kept: the property order)
  std::vector<ToolSpec> tools;   // kToolCalls: each call is to one of these
  bool allow_multiple_calls = false;  // kToolCalls: one call, or one or more

  // Identifies the grammar: equal keys give equal grammars (the compile cache's key).
  std::string CacheKey() const;
};

// Builds the grammar. `special_tokens`: marker texts the vocabulary has as special tokens (see
// GrammarBuilder); empty gives a grammar over the markers' bytes, which is what validation
// without a vocabulary needs. Errors are InvalidArgument: "schema: #/...: unsupported keyword
// \"pattern\"" for kJsonSchema, "tools[2].parameters: #: ..." or "tools[0].name: ..." for tools.
absl::StatusOr<Grammar> BuildGrammar(const StructuredOutputSpec& spec,
                                     const absl::flat_hash_set<std::string>& special_tokens);

// The field names an API uses for what BuildGrammar's messages call "schema", "tools" and
// "tools[i]" (with ".parameters" / ".name" after it).
struct GrammarFieldNames {
  std::string schema;
  std::string tools;
  std::function<std::string(size_t tool)> tool;
  std::string parameters = "parameters";
  std::string name = "name";
};
// `status` (from BuildGrammar) with its leading field renamed; other statuses unchanged.
absl::Status RenameGrammarFields(const absl::Status& status, const GrammarFieldNames& names);

// A tool name the Gemma 4 output parser can read back: [A-Za-z0-9_.-]+ (OpenAI's names are a
// subset).
bool IsValidToolName(const std::string& name);

}  // namespace g4::grammar

#endif  // G4SERVE_COMMON_GRAMMAR_JSON_GRAMMAR_H_
