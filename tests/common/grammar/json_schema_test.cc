// JSON Schema subset: what parses, errors that name the keyword and where it is, the validator,
// and grammar-level errors (unsatisfiable schemas, left recursion, size limits).
#include "common/grammar/json_schema.h"

#include "absl/strings/match.h"
#include "common/grammar/json_grammar.h"
#include "gtest/gtest.h"

namespace g4::grammar {
namespace {

using OJson = nlohmann::ordered_json;
using Json = nlohmann::json;

absl::Status ParseError(const std::string& schema) {
  return JsonSchema::Parse(OJson::parse(schema)).status();
}

absl::Status GrammarError(const std::string& schema) {
  StructuredOutputSpec spec;
  spec.kind = StructuredOutputSpec::Kind::kJsonSchema;
  spec.schema = OJson::parse(schema);
  return BuildGrammar(spec, {}).status();
}

TEST(JsonSchemaTest, UnsupportedKeywordsAreNamedWithTheirPath) {
  struct Case {
    std::string schema, message;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"type": "string", "pattern": "a+"})", R"(#: unsupported keyword "pattern")"},
           {R"({"properties": {"a": {"format": "date"}}})",
            R"(#/properties/a: unsupported keyword "format")"},
           {R"({"items": {"oneOf": [{}]}})", R"(#/items: unsupported keyword "oneOf")"},
           {R"({"anyOf": [{"not": {}}]})", R"(#/anyOf/0: unsupported keyword "not")"},
           {R"({"type": "number", "minimum": 1})", R"("minimum" is supported for "type": "integer" only)"},
           {R"({"additionalProperties": {"type": "string"}})",
            R"("additionalProperties" is supported as true or false only)"},
           {R"({"items": [{}, {}]})", "tuples"},
           {R"({"allOf": [{}, {}]})", R"("allOf" is supported with exactly one schema)"},
           {R"({"$ref": "other.json#/a"})", "only local references"},
           {R"({"$ref": "#/$defs/missing"})", "does not resolve"},
           {R"({"$ref": "#/$defs/a", "type": "string", "$defs": {"a": {}}})",
            R"("$ref" together with "type" is not supported)"},
           {R"({"anyOf": [{}], "type": "string"})", R"("anyOf" together with "type")"},
           {R"({"type": "strin"})", R"(unknown type "strin")"},
           {R"({"required": ["x"], "properties": {}})", R"(required property "x")"},
           {R"({"maxLength": 100000})", R"("maxLength" is at most 4096)"},
           {R"({"maxItems": -1})", R"("maxItems" must be a non-negative integer)"},
           {R"({"enum": []})", R"("enum" must be a non-empty array)"},
           {R"(3)", "expected a schema"},
       }) {
    absl::Status s = ParseError(c.schema);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.schema;
    EXPECT_TRUE(absl::StrContains(s.message(), c.message)) << c.schema << " -> " << s;
  }
}

TEST(JsonSchemaTest, AnnotationsAndSupportedKeywordsParse) {
  EXPECT_TRUE(ParseError(R"({"$schema": "https://json-schema.org/draft/2020-12/schema",
      "title": "T", "description": "d", "type": "object", "properties": {
      "a": {"type": ["string", "null"], "minLength": 1, "maxLength": 3, "default": "x"},
      "b": {"type": "integer", "exclusiveMinimum": 0, "maximum": 10, "examples": [1]},
      "c": {"allOf": [{"$ref": "#/definitions/c"}]}, "d": false},
      "required": ["a"], "additionalProperties": false,
      "definitions": {"c": {"enum": [1, "x"], "deprecated": true}}})").ok());
}

TEST(JsonSchemaTest, Validator) {
  auto schema = JsonSchema::Parse(OJson::parse(R"({"type": "object", "properties": {
      "n": {"type": "integer", "minimum": 1, "maximum": 5},
      "s": {"type": "string", "minLength": 2, "maxLength": 3},
      "l": {"type": "array", "items": {"enum": ["a", 1]}, "minItems": 1, "maxItems": 2},
      "no": false},
      "required": ["n"], "additionalProperties": false})"));
  ASSERT_TRUE(schema.ok()) << schema.status();
  EXPECT_TRUE(schema->Validate(Json::parse(R"({"n": 3})")).ok());
  EXPECT_TRUE(schema->Validate(Json::parse(R"({"n": 3.0, "s": "\u00e9\u00e9", "l": [1]})")).ok());
  for (const char* bad : {R"({})", R"({"n": 0})", R"({"n": 6})", R"({"n": 1.5})",
                          R"({"n": 1, "s": "a"})", R"({"n": 1, "s": "abcd"})",
                          R"({"n": 1, "l": []})", R"({"n": 1, "l": ["b"]})",
                          R"({"n": 1, "l": [1, 1, 1]})", R"({"n": 1, "x": 1})",
                          R"({"n": 1, "no": 1})", R"([])"}) {
    EXPECT_FALSE(schema->Validate(Json::parse(bad)).ok()) << bad;
  }
}

TEST(JsonSchemaTest, EnumValuesAreFilteredByTheOtherKeywords) {
  auto schema = JsonSchema::Parse(OJson::parse(R"({"type": "string", "enum": ["a", 1, "b"],
                                                   "maxLength": 1})"));
  ASSERT_TRUE(schema.ok());
  ASSERT_TRUE(schema->node(0).literals.has_value());
  EXPECT_EQ(schema->node(0).literals->size(), 2u);
  EXPECT_TRUE(absl::StrContains(GrammarError(R"({"type": "string", "enum": [1, 2]})").message(),
                                "unsatisfiable"));
}

TEST(JsonSchemaTest, GrammarErrors) {
  EXPECT_TRUE(absl::StrContains(
      GrammarError(R"({"type": "integer", "minimum": 5, "maximum": 4})").message(),
      "unsatisfiable"));
  EXPECT_TRUE(absl::StrContains(GrammarError(R"({"type": "object", "properties": {
      "self": {"$ref": "#"}}, "required": ["self"]})").message(), "unsatisfiable"));
  EXPECT_TRUE(absl::StrContains(
      GrammarError(R"({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})").message(),
      "$ref cycle"));
  EXPECT_TRUE(absl::StrContains(
      GrammarError(R"({"anyOf": [{"type": "null"}, {"$ref": "#"}]})").message(),
      "left recursion"));
  // Too many unrolled states (equal strings share one rule, so the bounds differ).
  std::string big = R"({"type": "object", "properties": {)";
  for (int i = 0; i < 40; ++i) {
    big += (i ? "," : "") + std::string("\"p") + std::to_string(i) +
           R"(": {"type": "string", "maxLength": )" + std::to_string(4096 - i) + "}";
  }
  big += "}}";
  EXPECT_TRUE(absl::StrContains(GrammarError(big).message(), "too large")) << GrammarError(big);
  // Recursion that can stop is fine.
  EXPECT_TRUE(GrammarError(R"({"type": "array", "items": {"$ref": "#"}})").ok());
}

TEST(JsonSchemaTest, ToolErrorsNameTheTool) {
  StructuredOutputSpec spec;
  spec.kind = StructuredOutputSpec::Kind::kToolCalls;
  spec.tools = {{"ok", nullptr}, {"bad name", nullptr}};
  EXPECT_TRUE(absl::StartsWith(BuildGrammar(spec, {}).status().message(), "tools[1].name: "));
  spec.tools = {{"ok", nullptr}, {"f", OJson::parse(R"({"type": "string"})")}};
  EXPECT_TRUE(absl::StartsWith(BuildGrammar(spec, {}).status().message(),
                               "tools[1].parameters: #: must describe an object"));
  spec.tools = {{"f", OJson::parse(R"({"type": "object", "properties": {"a": {"pattern": "x"}}})")}};
  EXPECT_EQ(BuildGrammar(spec, {}).status().message(),
            R"(tools[0].parameters: #/properties/a: unsupported keyword "pattern")");
}

}  // namespace
}  // namespace g4::grammar
