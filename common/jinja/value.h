// Dynamic values for the Jinja-subset interpreter.
//
// A Value models the Python objects a chat template sees when jinja2 renders it: undefined, None,
// bool, int, float, str, list/tuple, dict (insertion-ordered, string keys), namespace() objects and
// callables (macros, builtins, bound methods). Lists, dicts and namespaces have reference semantics
// like their Python counterparts.
#ifndef G4SERVE_COMMON_JINJA_VALUE_H_
#define G4SERVE_COMMON_JINJA_VALUE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace g4::jinja {

class Value;

using List = std::vector<Value>;

// Insertion-ordered mapping from string keys to values (Python dict semantics for str keys).
class Dict {
 public:
  const Value* Find(std::string_view key) const;
  Value* Find(std::string_view key);
  void Set(std::string key, Value value);
  bool Erase(std::string_view key);
  size_t size() const;  // defined after Value: clang needs the complete pair type here
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

// Arguments of a call: positional and keyword (in call order).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // Keyword argument `name`, or positional argument `index` when no such keyword was given;
  // nullptr when neither is present.
  const Value* Get(size_t index, std::string_view name) const;
};

using NativeFunction = std::function<absl::StatusOr<Value>(const CallArgs&)>;

class Value {
 public:
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kNamespace,
    kCallable,
  };

  Value() = default;  // undefined
  static Value Undefined(std::string name = "");
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double d);
  static Value String(std::string s);
  static Value MakeList(List items = {}, bool tuple = false);
  static Value MakeDict(Dict dict = {});
  static Value MakeNamespace(Dict attrs = {});
  static Value MakeCallable(std::string name, NativeFunction fn);

  static Value FromJson(const nlohmann::ordered_json& j);
  static Value FromJson(const nlohmann::json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kList && tuple_; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return is_bool() ? (b_ ? 1 : 0) : i_; }
  double as_float() const { return is_float() ? f_ : static_cast<double>(as_int()); }
  const std::string& as_string() const { return s_; }
  // Name of an undefined value (the variable/attribute that was missing) or of a callable.
  const std::string& name() const { return s_; }

  List& list() const { return *list_; }
  Dict& dict() const { return *dict_; }  // dict or namespace attributes
  const NativeFunction& function() const { return *fn_; }

  // Python truthiness.
  bool Truthy() const;
  // Python str() / repr() of the value (undefined prints as "").
  std::string Str() const;
  std::string Repr() const;
  // Python type name, for error messages.
  std::string TypeName() const;

  // Python `==`.
  bool Equals(const Value& other) const;

  // JSON conversion (undefined → error, callables → error).
  absl::StatusOr<nlohmann::ordered_json> ToJson() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  bool tuple_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::string s_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<NativeFunction> fn_;
};

inline size_t Dict::size() const { return items_.size(); }

// Python repr() of a float ("1.0", "1e-05", "1e+20", "inf", "nan").
std::string FormatPythonFloat(double d);
// Python repr() of a str.
std::string PythonStringRepr(std::string_view s);

// json.dumps(value, ensure_ascii=False, indent=indent, separators=..., sort_keys=sort_keys) as
// transformers' `tojson` filter calls it. indent < 0 means None.
absl::StatusOr<std::string> PythonJsonDumps(const Value& value, int indent, bool sort_keys);

}  // namespace g4::jinja

#endif  // G4SERVE_COMMON_JINJA_VALUE_H_
