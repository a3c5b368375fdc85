// Built-in filters, tests, global functions, attribute/item access and Python methods.
//
// Errors returned here carry no template line; the interpreter prefixes it.
#ifndef G4SERVE_COMMON_JINJA_BUILTINS_H_
#define G4SERVE_COMMON_JINJA_BUILTINS_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/jinja/value.h"

namespace g4::jinja {

absl::StatusOr<Value> ApplyFilter(absl::string_view name, const Value& operand,
                                  const CallArgs& args);
absl::StatusOr<bool> ApplyTest(absl::string_view name, const Value& operand, const CallArgs& args);

// jinja2 environment.getattr: Python attribute (methods) first, then item. Never fails for
// defined objects (missing → Undefined); the caller rejects undefined operands.
Value GetAttribute(const Value& obj, absl::string_view name);
// jinja2 environment.getitem: item first, then attribute for string keys.
Value GetItem(const Value& obj, const Value& key);

// Iterates a value like Python's iter(): list/tuple items, dict keys, string characters,
// undefined → empty.
absl::StatusOr<List> Iterate(const Value& v);

// Python comparison `a < b` (op is one of < <= > >=).
absl::StatusOr<bool> Less(const Value& a, const Value& b, absl::string_view op);
// Python `a in b`.
absl::StatusOr<bool> Contains(const Value& container, const Value& item);

// Adds namespace, range, dict, raise_exception, strftime_now.
void AddGlobals(Dict& globals);

}  // namespace g4::jinja

#endif  // G4SERVE_COMMON_JINJA_BUILTINS_H_
