// g4serve.v1.StructuredOutput (the public and the worker proto) <-> StructuredOutputSpec, and the
// coordinator's validation of a request's constraint before it is routed.
#ifndef G4SERVE_COMMON_GRAMMAR_STRUCTURED_OUTPUT_PROTO_H_
#define G4SERVE_COMMON_GRAMMAR_STRUCTURED_OUTPUT_PROTO_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/grammar/json_grammar.h"
#include "g4serve/v1/inference.pb.h"

namespace g4::grammar {

// Largest JSON text accepted for a schema, and its deepest nesting.
inline constexpr size_t kMaxSchemaTextBytes = 1 << 20;
inline constexpr int kMaxSchemaTextDepth = 128;

// InvalidArgument naming the proto field ("structured_output.json_schema: not valid JSON",
// "structured_output.tool_calls.functions[1].parameters_json: #: unsupported keyword ...").
// An unset constraint is InvalidArgument too (callers check has_structured_output()).
absl::StatusOr<StructuredOutputSpec> SpecFromProto(const g4serve::v1::StructuredOutput& proto);

// SpecFromProto, then BuildGrammar without a vocabulary: every schema error, named as above.
absl::Status ValidateStructuredOutput(const g4serve::v1::StructuredOutput& proto);

// Converts `spec` into the proto (the HTTP front door builds specs from OpenAI fields).
g4serve::v1::StructuredOutput SpecToProto(const StructuredOutputSpec& spec);

// Deepest {} / [] nesting of a JSON text (strings skipped); for limits before parsing.
int JsonNestingDepth(absl::string_view text);

}  // namespace g4::grammar

#endif  // G4SERVE_COMMON_GRAMMAR_STRUCTURED_OUTPUT_PROTO_H_
