#include "common/grammar/structured_output_proto.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace g4::grammar {
namespace {

namespace pb = ::g4serve::v1;
using OJson = nlohmann::ordered_json;

absl::StatusOr<OJson> ParseSchemaText(const std::string& text, const std::string& field) {
  if (text.size() > kMaxSchemaTextBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": larger than ", kMaxSchemaTextBytes, " bytes"));
  }
  if (JsonNestingDepth(text) > kMaxSchemaTextDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": nested deeper than ", kMaxSchemaTextDepth, " levels"));
  }
  OJson j = OJson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(field, ": not valid JSON"));
  return j;
}

// BuildGrammar's field names as the proto's.
absl::Status Rename(const absl::Status& s) {
  GrammarFieldNames names;
  names.schema = "structured_output.json_schema";
  names.tools = "structured_output.tool_calls.functions";
  names.tool = [](size_t i) { return absl::StrCat("structured_output.tool_calls.functions[", i, "]"); };
  names.parameters = "parameters_json";
  return RenameGrammarFields(s, names);
}

}  // namespace

int JsonNestingDepth(absl::string_view text) {
  int depth = 0, best = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      best = std::max(best, ++depth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return best;
}

absl::StatusOr<StructuredOutputSpec> SpecFromProto(const pb::StructuredOutput& proto) {
  StructuredOutputSpec spec;
  switch (proto.constraint_case()) {
    case pb::StructuredOutput::kJsonSchema: {
      spec.kind = StructuredOutputSpec::Kind::kJsonSchema;
      G4_ASSIGN_OR_RETURN(spec.schema,
                          ParseSchemaText(proto.json_schema(), "structured_output.json_schema"));
      break;
    }
    case pb::StructuredOutput::kJsonObject:
      if (!proto.json_object()) {
        return absl::InvalidArgumentError("structured_output.json_object: must be true when set");
      }
      spec.kind = StructuredOutputSpec::Kind::kJsonObject;
      break;
    case pb::StructuredOutput::kToolCalls: {
      spec.kind = StructuredOutputSpec::Kind::kToolCalls;
      spec.allow_multiple_calls = proto.tool_calls().allow_multiple();
      const auto& functions = proto.tool_calls().functions();
      if (functions.empty()) {
        return absl::InvalidArgumentError(
            "structured_output.tool_calls.functions: at least one function is required");
      }
      for (int i = 0; i < functions.size(); ++i) {
        ToolSpec tool;
        tool.name = functions[i].name();
        if (!functions[i].parameters_json().empty()) {
          G4_ASSIGN_OR_RETURN(
              tool.parameters,
              ParseSchemaText(functions[i].parameters_json(),
                              absl::StrCat("structured_output.tool_calls.functions[", i,
                                           "].parameters_json")));
        }
        spec.tools.push_back(std::move(tool));
      }
      break;
    }
    case pb::StructuredOutput::CONSTRAINT_NOT_SET:
      return absl::InvalidArgumentError(
          "structured_output: set one of json_schema, json_object, tool_calls");
  }
  return spec;
}

absl::Status ValidateStructuredOutput(const pb::StructuredOutput& proto) {
  G4_ASSIGN_OR_RETURN(StructuredOutputSpec spec, SpecFromProto(proto));
  return Rename(BuildGrammar(spec, {}).status());
}

pb::StructuredOutput SpecToProto(const StructuredOutputSpec& spec) {
  pb::StructuredOutput out;
  switch (spec.kind) {
    case StructuredOutputSpec::Kind::kJsonSchema:
      out.set_json_schema(spec.schema.dump(-1, ' ', false, OJson::error_handler_t::replace));
      break;
    case StructuredOutputSpec::Kind::kJsonObject:
      out.set_json_object(true);
      break;
    case StructuredOutputSpec::Kind::kToolCalls:
      out.mutable_tool_calls()->set_allow_multiple(spec.allow_multiple_calls);
      for (const ToolSpec& t : spec.tools) {
        pb::FunctionSchema* f = out.mutable_tool_calls()->add_functions();
        f->set_name(t.name);
        if (!t.parameters.is_null()) {
          f->set_parameters_json(t.parameters.dump(-1, ' ', false, OJson::error_handler_t::replace));
        }
      }
      break;
  }
  return out;
}

}  // namespace g4::grammar
