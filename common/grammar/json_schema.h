// The JSON Schema subset that structured outputs support, parsed into a small graph of schema
// nodes ($ref cycles become cycles between nodes), and a validator for that subset.
//
// Supported (docs/structured_outputs.md): `type` (a name or a list), `properties`, `required`,
// `additionalProperties` (true/false), `enum`, `const`, `items` (one schema), `minItems`,
// `maxItems`, `anyOf`, `allOf` with one element, `$ref` to "#", "#/$defs/..." or
// "#/definitions/...", `minLength`, `maxLength`, and for integers `minimum`, `maximum`,
// `exclusiveMinimum`, `exclusiveMaximum`. Annotations (`title`, `description`, `default`,
// `examples`, `$schema`, `$id`, `$comment`, `deprecated`, `readOnly`, `writeOnly`) are ignored.
// Anything else is InvalidArgument naming the keyword and where it is ("#/properties/a:
// unsupported keyword \"pattern\"").
#ifndef G4SERVE_COMMON_GRAMMAR_JSON_SCHEMA_H_
#define G4SERVE_COMMON_GRAMMAR_JSON_SCHEMA_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace g4::grammar {

// JSON types as bits.
enum TypeBits : uint32_t {
  kTypeNull = 1,
  kTypeBoolean = 2,
  kTypeInteger = 4,  // integral numbers (also produced for "number", which includes them)
  kTypeNumber = 8,
  kTypeString = 16,
  kTypeObject = 32,
  kTypeArray = 64,
  kAllTypes = 127,
};

// Limits that keep the grammar small (the automaton unrolls bounded repetitions).
inline constexpr int64_t kMaxStringLengthBound = 4096;  // minLength / maxLength
inline constexpr int64_t kMaxItemsBound = 1024;         // minItems / maxItems
inline constexpr int kMaxSchemaDepth = 64;              // nesting of schema objects

struct SchemaNode {
  std::string path;  // "#/properties/a/items", for messages

  // $ref: this node stands for node `ref` (nothing else is set).
  int32_t ref = -1;
  // anyOf: the value matches one of these nodes (nothing else is set).
  std::vector<int32_t> any_of;

  // Otherwise: allowed types and their keywords.
  uint32_t types = kAllTypes;  // 0: nothing matches (the `false` schema)
  // enum / const: the only allowed values (already checked against the other keywords).
  std::optional<std::vector<nlohmann::json>> literals;
  // string
  int64_t min_length = 0;
  std::optional<int64_t> max_length;
  // integer (inclusive; exclusive bounds are converted)
  std::optional<int64_t> minimum, maximum;
  // object: `properties` in schema order; a property schema index of -1 means `false` (must
  // not appear). No `properties` keyword: any members (`additional_properties` permitting).
  bool has_properties = false;
  std::vector<std::pair<std::string, int32_t>> properties;
  std::vector<std::string> required;
  bool additional_properties = true;
  // array: items schema (-1: any value)
  int32_t items = -1;
  int64_t min_items = 0;
  std::optional<int64_t> max_items;
};

class JsonSchema {
 public:
  // Parses `schema` (an object or a boolean; key order is kept: it is the order in which
  // properties are generated). Errors are InvalidArgument "<path>: <what>".
  static absl::StatusOr<JsonSchema> Parse(const nlohmann::ordered_json& schema);

  int32_t root() const { return 0; }
  int32_t size() const { return static_cast<int32_t>(nodes_.size()); }
  const SchemaNode& node(int32_t i) const { return nodes_[i]; }
  // Follows $ref chains.
  int32_t Resolve(int32_t i) const;

  // OK when `value` matches node `i` (default: the root); otherwise InvalidArgument describing
  // the first mismatch ("$.a[2]: expected a string").
  absl::Status Validate(const nlohmann::json& value) const { return Validate(root(), value); }
  absl::Status Validate(int32_t i, const nlohmann::json& value) const;

 private:
  friend class SchemaParser;
  absl::Status ValidateAt(int32_t i, const nlohmann::json& value, const std::string& where,
                          bool check_literals, int depth) const;
  std::vector<SchemaNode> nodes_;
};

}  // namespace g4::grammar

#endif  // G4SERVE_COMMON_GRAMMAR_JSON_SCHEMA_H_
