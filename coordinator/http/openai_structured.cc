#include "coordinator/http/openai_structured.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grammar/json_grammar.h"
#include "common/grammar/structured_output_proto.h"

namespace g4 {
namespace {

using Json = nlohmann::ordered_json;
using grammar::StructuredOutputSpec;

absl::Status Bad(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

bool Has(const Json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && !it->is_null();
}

// Checks the spec by building its grammar; BuildGrammar's field names become the OpenAI ones
// (`tool_index[i]` is the request's index of spec tool i).
absl::Status Check(const StructuredOutputSpec& spec, const std::vector<size_t>& tool_index) {
  grammar::GrammarFieldNames names;
  names.schema = "response_format.json_schema.schema";
  names.tools = "tools";
  names.tool = [&](size_t i) {
    return absl::StrCat("tools[", i < tool_index.size() ? tool_index[i] : i, "]");
  };
  names.parameters = "function.parameters";
  names.name = "function.name";
  return grammar::RenameGrammarFields(grammar::BuildGrammar(spec, {}).status(), names);
}

absl::Status CheckSchemaText(const Json& schema, const std::string& field) {
  // The body parser bounds nesting already; the schema text limits of the gRPC API apply too.
  if (grammar::JsonNestingDepth(schema.dump()) > grammar::kMaxSchemaTextDepth) {
    return Bad(field, absl::StrCat("nested deeper than ", grammar::kMaxSchemaTextDepth, " levels"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseStructuredOutputs(const Json& body, g4serve::v1::GenerateRequest* out) {
  StructuredOutputSpec spec;
  bool constrained = false;
  std::vector<size_t> tool_index;

  if (Has(body, "response_format")) {
    const Json& rf = body["response_format"];
    if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string()) {
      return Bad("response_format", "expected {\"type\": \"text\" | \"json_object\" | "
                                    "\"json_schema\", ...}");
    }
    const std::string type = rf["type"].get<std::string>();
    for (auto it = rf.begin(); it != rf.end(); ++it) {
      if (it.key() != "type" && !(type == "json_schema" && it.key() == "json_schema")) {
        return Bad(absl::StrCat("response_format.", it.key()), "unrecognized argument");
      }
    }
    if (type == "json_object") {
      spec.kind = StructuredOutputSpec::Kind::kJsonObject;
      constrained = true;
    } else if (type == "json_schema") {
      if (!rf.contains("json_schema") || !rf["json_schema"].is_object()) {
        return Bad("response_format.json_schema", "required (an object with name and schema)");
      }
      const Json& js = rf["json_schema"];
      for (auto it = js.begin(); it != js.end(); ++it) {
        const std::string& k = it.key();
        if (k != "name" && k != "schema" && k != "strict" && k != "description") {
          return Bad(absl::StrCat("response_format.json_schema.", k), "unrecognized argument");
        }
      }
      if (!js.contains("name") || !js["name"].is_string() ||
          js["name"].get<std::string>().empty()) {
        return Bad("response_format.json_schema.name", "required (a non-empty string)");
      }
      if (Has(js, "strict") && !js["strict"].is_boolean()) {
        return Bad("response_format.json_schema.strict", "expected a boolean");
      }
      if (Has(js, "description") && !js["description"].is_string()) {
        return Bad("response_format.json_schema.description", "expected a string");
      }
      spec.kind = StructuredOutputSpec::Kind::kJsonSchema;
      spec.schema = Has(js, "schema") ? js["schema"] : Json::object();
      if (!spec.schema.is_object() && !spec.schema.is_boolean()) {
        return Bad("response_format.json_schema.schema", "expected a JSON Schema object");
      }
      if (absl::Status s = CheckSchemaText(spec.schema, "response_format.json_schema.schema");
          !s.ok()) {
        return s;
      }
      constrained = true;
    } else if (type != "text") {
      return Bad("response_format.type",
                 absl::StrCat("'", type, "' is not supported (text, json_object, json_schema)"));
    }
  }

  if (Has(body, "tool_choice")) {
    const Json& tc = body["tool_choice"];
    const Json tools = Has(body, "tools") ? body["tools"] : Json::array();
    std::string forced_name;
    bool forced = false;
    if (tc.is_string()) {
      const std::string choice = tc.get<std::string>();
      if (choice == "required") {
        forced = true;
      } else if (choice != "auto" && choice != "none") {
        return Bad("tool_choice", absl::StrCat("'", choice,
                                               "' is not supported (auto, none, required)"));
      }
    } else if (tc.is_object()) {
      if (!tc.contains("type") || tc["type"] != "function" || !tc.contains("function") ||
          !tc["function"].is_object() || !tc["function"].contains("name") ||
          !tc["function"]["name"].is_string()) {
        return Bad("tool_choice",
                   "expected {\"type\": \"function\", \"function\": {\"name\": NAME}}");
      }
      forced = true;
      forced_name = tc["function"]["name"].get<std::string>();
    } else {
      return Bad("tool_choice", "expected \"auto\", \"none\", \"required\" or a named function");
    }
    if (forced) {
      if (constrained) {
        return Bad("tool_choice", "forcing tool calls cannot be combined with a JSON "
                                  "response_format");
      }
      if (tools.empty()) return Bad("tool_choice", "forcing a tool call needs `tools`");
      spec.kind = StructuredOutputSpec::Kind::kToolCalls;
      spec.allow_multiple_calls =
          forced_name.empty() && Has(body, "parallel_tool_calls") &&
          body["parallel_tool_calls"].is_boolean() && body["parallel_tool_calls"].get<bool>();
      for (size_t i = 0; i < tools.size(); ++i) {
        const Json& f = tools[i]["function"];
        const std::string name = f["name"].get<std::string>();
        if (!forced_name.empty() && name != forced_name) continue;
        grammar::ToolSpec tool;
        tool.name = name;
        if (Has(f, "parameters")) {
          tool.parameters = f["parameters"];
          if (absl::Status s = CheckSchemaText(tool.parameters,
                                               absl::StrCat("tools[", i, "].function.parameters"));
              !s.ok()) {
            return s;
          }
        }
        spec.tools.push_back(std::move(tool));
        tool_index.push_back(i);
        if (!forced_name.empty()) break;
      }
      if (spec.tools.empty()) {
        return Bad("tool_choice.function.name",
                   absl::StrCat("no tool named '", forced_name, "' in tools"));
      }
      constrained = true;
    }
  }

  if (!constrained) return absl::OkStatus();
  if (absl::Status s = Check(spec, tool_index); !s.ok()) return s;
  *out->mutable_structured_output() = grammar::SpecToProto(spec);
  return absl::OkStatus();
}

}  // namespace g4
