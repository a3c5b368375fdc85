#include "common/grammar/json_schema.h"

#include <cmath>
#include <limits>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace g4::grammar {
namespace {

using Json = nlohmann::ordered_json;  // schemas keep their key order
using Value = nlohmann::json;         // values (enum/const, validated documents)

// Largest magnitude an integer may have: the grammar writes at most 15 digits.
constexpr int64_t kMaxIntegerMagnitude = 999'999'999'999'999;

const std::set<std::string>& Annotations() {
  static const auto* kSet = new std::set<std::string>{
      "title",   "description", "default",  "examples", "$schema",  "$id",
      "$comment", "deprecated", "readOnly", "writeOnly", "$defs",   "definitions"};
  return *kSet;
}

const std::set<std::string>& Supported() {
  static const auto* kSet = new std::set<std::string>{
      "type",      "properties", "required",  "additionalProperties", "enum",
      "const",     "items",      "minItems",  "maxItems",             "anyOf",
      "allOf",     "$ref",       "minLength", "maxLength",            "minimum",
      "maximum",   "exclusiveMinimum",        "exclusiveMaximum"};
  return *kSet;
}

absl::Status Bad(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

// Code points of a UTF-8 string (continuation bytes are not counted).
int64_t CodePoints(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool IsIntegral(const Json& v) {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::isfinite(d) && d == std::floor(d);
}

absl::StatusOr<int64_t> NonNegativeInt(const Json& v, const std::string& path, const char* key,
                                       int64_t limit) {
  if (!IsIntegral(v) || v.get<double>() < 0) {
    return Bad(path, absl::StrCat("\"", key, "\" must be a non-negative integer"));
  }
  const double d = v.get<double>();
  if (d > static_cast<double>(limit)) {
    return Bad(path, absl::StrCat("\"", key, "\" is at most ", limit, " here, got ", v.dump()));
  }
  return static_cast<int64_t>(d);
}

}  // namespace

class SchemaParser {
 public:
  explicit SchemaParser(const Json& root) : root_(root) {}

  absl::StatusOr<JsonSchema> Run() {
    G4_ASSIGN_OR_RETURN(int32_t root, ParseAt(root_, "#", 0));
    (void)root;  // always 0
    G4_RETURN_IF_ERROR(FilterLiterals());
    return std::move(out_);
  }

 private:
  int32_t NewNode(const std::string& path) {
    out_.nodes_.emplace_back();
    out_.nodes_.back().path = path;
    return static_cast<int32_t>(out_.nodes_.size() - 1);
  }
  SchemaNode& N(int32_t i) { return out_.nodes_[i]; }

  // Keywords of `s` other than annotations, for "X together with other keywords" errors.
  static std::vector<std::string> ValidationKeywords(const Json& s, absl::string_view except) {
    std::vector<std::string> keys;
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (it.key() != except && Annotations().count(it.key()) == 0) keys.push_back(it.key());
    }
    return keys;
  }

  absl::StatusOr<int32_t> ParseRef(const std::string& ref, const std::string& path, int depth) {
    if (ref.empty() || ref[0] != '#') {
      return Bad(path, absl::StrCat("$ref \"", ref,
                                    "\" is not supported (only local references \"#...\")"));
    }
    if (auto it = refs_.find(ref); it != refs_.end()) return it->second;
    const std::string pointer = ref.substr(1);
    if (pointer.empty()) {
      refs_[ref] = 0;
      return 0;
    }
    if (pointer[0] != '/') return Bad(path, absl::StrCat("$ref \"", ref, "\" is malformed"));
    Json::json_pointer ptr;
    try {
      ptr = Json::json_pointer(pointer);
    } catch (const std::exception&) {
      return Bad(path, absl::StrCat("$ref \"", ref, "\" is malformed"));
    }
    if (!root_.contains(ptr)) {
      return Bad(path, absl::StrCat("$ref \"", ref, "\" does not resolve in this schema"));
    }
    // A fresh node that aliases the target, registered before parsing so cycles resolve.
    const int32_t alias = NewNode(ref);
    refs_[ref] = alias;
    G4_ASSIGN_OR_RETURN(int32_t target, ParseAt(root_.at(ptr), ref, depth + 1));
    N(alias).ref = target;
    return alias;
  }

  absl::StatusOr<int32_t> ParseAt(const Json& s, const std::string& path, int depth) {
    if (depth > kMaxSchemaDepth) {
      return Bad(path, absl::StrCat("schema nested deeper than ", kMaxSchemaDepth, " levels"));
    }
    const int32_t self = NewNode(path);
    if (s.is_boolean()) {
      if (!s.get<bool>()) N(self).types = 0;
      return self;
    }
    if (!s.is_object()) return Bad(path, "expected a schema (a JSON object or a boolean)");
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (Supported().count(it.key()) == 0 && Annotations().count(it.key()) == 0) {
        return Bad(path, absl::StrCat("unsupported keyword \"", it.key(), "\""));
      }
    }
    for (const char* defs : {"$defs", "definitions"}) {
      if (s.contains(defs) && !s[defs].is_object()) {
        return Bad(path, absl::StrCat("\"", defs, "\" must be an object"));
      }
    }

    if (s.contains("$ref")) {
      if (auto others = ValidationKeywords(s, "$ref"); !others.empty()) {
        return Bad(path, absl::StrCat("\"$ref\" together with \"", others[0],
                                      "\" is not supported"));
      }
      if (!s["$ref"].is_string()) return Bad(path, "\"$ref\" must be a string");
      G4_ASSIGN_OR_RETURN(int32_t target,
                          ParseRef(s["$ref"].get<std::string>(), path, depth));
      N(self).ref = target;
      return self;
    }
    if (s.contains("allOf")) {
      if (auto others = ValidationKeywords(s, "allOf"); !others.empty()) {
        return Bad(path, absl::StrCat("\"allOf\" together with \"", others[0],
                                      "\" is not supported"));
      }
      const Json& all = s["allOf"];
      if (!all.is_array() || all.size() != 1) {
        return Bad(path, "\"allOf\" is supported with exactly one schema");
      }
      G4_ASSIGN_OR_RETURN(int32_t target, ParseAt(all[0], path + "/allOf/0", depth + 1));
      N(self).ref = target;
      return self;
    }
    if (s.contains("anyOf")) {
      if (auto others = ValidationKeywords(s, "anyOf"); !others.empty()) {
        return Bad(path, absl::StrCat("\"anyOf\" together with \"", others[0],
                                      "\" is not supported (move it into each alternative)"));
      }
      const Json& any = s["anyOf"];
      if (!any.is_array() || any.empty()) {
        return Bad(path, "\"anyOf\" must be a non-empty array of schemas");
      }
      std::vector<int32_t> alternatives;
      for (size_t i = 0; i < any.size(); ++i) {
        G4_ASSIGN_OR_RETURN(int32_t alt,
                            ParseAt(any[i], absl::StrCat(path, "/anyOf/", i), depth + 1));
        alternatives.push_back(alt);
      }
      N(self).any_of = std::move(alternatives);
      return self;
    }

    // Types: explicit, or inferred from the keywords present (a narrower set of values is still
    // valid output).
    uint32_t types = 0;
    if (s.contains("type")) {
      const Json& t = s["type"];
      std::vector<Json> names;
      if (t.is_string()) {
        names.push_back(t);
      } else if (t.is_array() && !t.empty()) {
        names.assign(t.begin(), t.end());
      } else {
        return Bad(path, "\"type\" must be a type name or a non-empty array of them");
      }
      for (const Json& name : names) {
        const std::string n = name.is_string() ? name.get<std::string>() : "";
        if (n == "null") types |= kTypeNull;
        else if (n == "boolean") types |= kTypeBoolean;
        else if (n == "integer") types |= kTypeInteger;
        else if (n == "number") types |= kTypeNumber | kTypeInteger;
        else if (n == "string") types |= kTypeString;
        else if (n == "object") types |= kTypeObject;
        else if (n == "array") types |= kTypeArray;
        else return Bad(path, absl::StrCat("unknown type ", name.dump()));
      }
    } else {
      for (const char* k : {"properties", "required", "additionalProperties"}) {
        if (s.contains(k)) types |= kTypeObject;
      }
      for (const char* k : {"items", "minItems", "maxItems"}) {
        if (s.contains(k)) types |= kTypeArray;
      }
      for (const char* k : {"minLength", "maxLength"}) {
        if (s.contains(k)) types |= kTypeString;
      }
      for (const char* k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
        if (s.contains(k)) types |= kTypeInteger;
      }
      if (types == 0) types = kAllTypes;
    }
    N(self).types = types;

    if (s.contains("enum")) {
      if (!s["enum"].is_array() || s["enum"].empty()) {
        return Bad(path, "\"enum\" must be a non-empty array");
      }
      std::vector<Value> values;
      for (const Json& v : s["enum"]) values.push_back(Value::parse(v.dump()));
      N(self).literals = std::move(values);
    }
    if (s.contains("const")) {
      const Value c = Value::parse(s["const"].dump());
      std::vector<Value> values = {c};
      if (N(self).literals.has_value()) {
        // enum and const: the const, if the enum has it.
        bool in_enum = false;
        for (const Value& v : *N(self).literals) in_enum |= v == c;
        if (!in_enum) values.clear();
      }
      N(self).literals = std::move(values);
    }

    // String keywords.
    if (s.contains("minLength")) {
      G4_ASSIGN_OR_RETURN(N(self).min_length, NonNegativeInt(s["minLength"], path, "minLength",
                                                             kMaxStringLengthBound));
    }
    if (s.contains("maxLength")) {
      G4_ASSIGN_OR_RETURN(N(self).max_length, NonNegativeInt(s["maxLength"], path, "maxLength",
                                                             kMaxStringLengthBound));
    }
    if (N(self).max_length.has_value() && *N(self).max_length < N(self).min_length) {
      N(self).types &= ~kTypeString;
    }

    // Integer bounds.
    auto bound = [&](const char* key, bool lower, bool exclusive) -> absl::Status {
      if (!s.contains(key)) return absl::OkStatus();
      const Json& v = s[key];
      if (!v.is_number()) return Bad(path, absl::StrCat("\"", key, "\" must be a number"));
      if (N(self).types & kTypeNumber) {
        return Bad(path, absl::StrCat("\"", key,
                                      "\" is supported for \"type\": \"integer\" only"));
      }
      double d = v.get<double>();
      d = lower ? (exclusive ? std::floor(d) + 1 : std::ceil(d))
                : (exclusive ? std::ceil(d) - 1 : std::floor(d));
      d = std::max(d, -static_cast<double>(kMaxIntegerMagnitude) - 1);
      d = std::min(d, static_cast<double>(kMaxIntegerMagnitude) + 1);
      const int64_t b = static_cast<int64_t>(d);
      std::optional<int64_t>& slot = lower ? N(self).minimum : N(self).maximum;
      slot = slot.has_value() ? (lower ? std::max(*slot, b) : std::min(*slot, b)) : b;
      return absl::OkStatus();
    };
    G4_RETURN_IF_ERROR(bound("minimum", true, false));
    G4_RETURN_IF_ERROR(bound("exclusiveMinimum", true, true));
    G4_RETURN_IF_ERROR(bound("maximum", false, false));
    G4_RETURN_IF_ERROR(bound("exclusiveMaximum", false, true));
    {
      const int64_t lo = N(self).minimum.value_or(-kMaxIntegerMagnitude);
      const int64_t hi = N(self).maximum.value_or(kMaxIntegerMagnitude);
      if (lo > hi || lo > kMaxIntegerMagnitude || hi < -kMaxIntegerMagnitude) {
        N(self).types &= ~kTypeInteger;
      }
    }

    // Object keywords.
    if (s.contains("additionalProperties")) {
      const Json& a = s["additionalProperties"];
      if (a.is_boolean()) {
        N(self).additional_properties = a.get<bool>();
      } else if (a.is_object() && a.empty()) {
        N(self).additional_properties = true;
      } else {
        return Bad(path, "\"additionalProperties\" is supported as true or false only");
      }
    }
    if (s.contains("properties")) {
      const Json& props = s["properties"];
      if (!props.is_object()) return Bad(path, "\"properties\" must be an object");
      N(self).has_properties = true;
      for (auto it = props.begin(); it != props.end(); ++it) {
        const std::string child_path = absl::StrCat(path, "/properties/", it.key());
        int32_t child = -1;
        if (!(it->is_boolean() && !it->get<bool>())) {
          G4_ASSIGN_OR_RETURN(child, ParseAt(*it, child_path, depth + 1));
        }
        N(self).properties.emplace_back(it.key(), child);
      }
    }
    if (s.contains("required")) {
      const Json& req = s["required"];
      if (!req.is_array()) return Bad(path, "\"required\" must be an array of property names");
      std::set<std::string> seen;
      for (const Json& r : req) {
        if (!r.is_string()) return Bad(path, "\"required\" must be an array of property names");
        const std::string name = r.get<std::string>();
        if (!seen.insert(name).second) continue;
        bool known = false, forbidden = false;
        for (const auto& [key, child] : N(self).properties) {
          if (key == name) {
            known = true;
            forbidden = child < 0;
          }
        }
        if (!known) {
          return Bad(path, absl::StrCat("required property \"", name,
                                        "\" is not in \"properties\" (not supported)"));
        }
        if (forbidden) N(self).types &= ~kTypeObject;
        N(self).required.push_back(name);
      }
    }

    // Array keywords.
    if (s.contains("items")) {
      const Json& items = s["items"];
      if (items.is_array()) {
        return Bad(path, "\"items\" as an array of schemas (tuples) is not supported");
      }
      G4_ASSIGN_OR_RETURN(int32_t child, ParseAt(items, path + "/items", depth + 1));
      N(self).items = child;
    }
    if (s.contains("minItems")) {
      G4_ASSIGN_OR_RETURN(N(self).min_items,
                          NonNegativeInt(s["minItems"], path, "minItems", kMaxItemsBound));
    }
    if (s.contains("maxItems")) {
      G4_ASSIGN_OR_RETURN(N(self).max_items,
                          NonNegativeInt(s["maxItems"], path, "maxItems", kMaxItemsBound));
    }
    if (N(self).max_items.has_value() && *N(self).max_items < N(self).min_items) {
      N(self).types &= ~kTypeArray;
    }
    return self;
  }

  // enum/const values must also satisfy the node's other keywords; the rest are dropped.
  absl::Status FilterLiterals() {
    for (int32_t i = 0; i < out_.size(); ++i) {
      SchemaNode& n = out_.nodes_[i];
      if (!n.literals.has_value()) continue;
      std::vector<Value> kept;
      for (const Value& v : *n.literals) {
        if (out_.ValidateAt(i, v, "$", /*check_literals=*/false, 0).ok()) kept.push_back(v);
      }
      out_.nodes_[i].literals = std::move(kept);
    }
    return absl::OkStatus();
  }

  const Json& root_;
  JsonSchema out_;
  absl::flat_hash_map<std::string, int32_t> refs_;
};

absl::StatusOr<JsonSchema> JsonSchema::Parse(const nlohmann::ordered_json& schema) {
  return SchemaParser(schema).Run();
}

int32_t JsonSchema::Resolve(int32_t i) const {
  for (int hops = 0; nodes_[i].ref >= 0 && hops <= size(); ++hops) i = nodes_[i].ref;
  return i;
}

absl::Status JsonSchema::Validate(int32_t i, const nlohmann::json& value) const {
  return ValidateAt(i, value, "$", /*check_literals=*/true, 0);
}

absl::Status JsonSchema::ValidateAt(int32_t i, const nlohmann::json& value,
                                    const std::string& where, bool check_literals,
                                    int depth) const {
  auto fail = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
  };
  if (depth > 100000) return fail("value nested too deeply");
  const int32_t start = i;
  i = Resolve(i);
  if (nodes_[i].ref >= 0) return fail("$ref cycle without a schema");
  const SchemaNode& n = nodes_[i];
  (void)start;
  using Json = Value;
  if (!n.any_of.empty()) {
    for (int32_t alt : n.any_of) {
      if (ValidateAt(alt, value, where, true, depth + 1).ok()) return absl::OkStatus();
    }
    return fail(absl::StrCat("matches none of the anyOf alternatives of ", n.path));
  }
  if (check_literals && n.literals.has_value()) {
    for (const Json& v : *n.literals) {
      if (v == value) return absl::OkStatus();
    }
    return fail(absl::StrCat("not one of the enum/const values of ", n.path));
  }
  uint32_t type = 0;
  if (value.is_null()) type = kTypeNull;
  else if (value.is_boolean()) type = kTypeBoolean;
  else if (value.is_number()) type = IsIntegral(value) ? kTypeInteger : kTypeNumber;
  else if (value.is_string()) type = kTypeString;
  else if (value.is_object()) type = kTypeObject;
  else if (value.is_array()) type = kTypeArray;
  if ((n.types & type) == 0) return fail(absl::StrCat("wrong type for ", n.path));
  switch (type) {
    case kTypeString: {
      const int64_t len = CodePoints(value.get<std::string>());
      if (len < n.min_length) return fail(absl::StrCat("shorter than ", n.min_length));
      if (n.max_length.has_value() && len > *n.max_length) {
        return fail(absl::StrCat("longer than ", *n.max_length));
      }
      break;
    }
    case kTypeInteger: {
      const double d = value.get<double>();
      if (n.minimum.has_value() && d < static_cast<double>(*n.minimum)) {
        return fail(absl::StrCat("less than ", *n.minimum));
      }
      if (n.maximum.has_value() && d > static_cast<double>(*n.maximum)) {
        return fail(absl::StrCat("greater than ", *n.maximum));
      }
      if (value.is_number_integer() && !value.is_number_unsigned()) {
        const int64_t v = value.get<int64_t>();
        if ((n.minimum.has_value() && v < *n.minimum) ||
            (n.maximum.has_value() && v > *n.maximum)) {
          return fail("out of range");
        }
      }
      break;
    }
    case kTypeObject: {
      for (const std::string& r : n.required) {
        if (!value.contains(r)) return fail(absl::StrCat("missing required property \"", r, "\""));
      }
      for (auto it = value.begin(); it != value.end(); ++it) {
        const std::string child_where = absl::StrCat(where, ".", it.key());
        bool known = false;
        for (const auto& [key, child] : n.properties) {
          if (key != it.key()) continue;
          known = true;
          if (child < 0) return fail(absl::StrCat("property \"", key, "\" is not allowed"));
          G4_RETURN_IF_ERROR(ValidateAt(child, *it, child_where, true, depth + 1));
        }
        if (!known && !n.additional_properties) {
          return fail(absl::StrCat("additional property \"", it.key(), "\" is not allowed"));
        }
      }
      break;
    }
    case kTypeArray: {
      const int64_t size = static_cast<int64_t>(value.size());
      if (size < n.min_items) return fail(absl::StrCat("fewer than ", n.min_items, " items"));
      if (n.max_items.has_value() && size > *n.max_items) {
        return fail(absl::StrCat("more than ", *n.max_items, " items"));
      }
      if (n.items >= 0) {
        for (size_t k = 0; k < value.size(); ++k) {
          G4_RETURN_IF_ERROR(
              ValidateAt(n.items, value[k], absl::StrCat(where, "[", k, "]"), true, depth + 1));
        }
      }
      break;
    }
    default:
      break;
  }
  return absl::OkStatus();
}

}  // namespace g4::grammar
