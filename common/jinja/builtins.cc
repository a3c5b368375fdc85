#include "common/jinja/builtins.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/py_string.h"
#include "common/status_macros.h"

namespace g4::jinja {
namespace {

absl::Status TypeError(absl::string_view msg) { return absl::InvalidArgumentError(msg); }

absl::Status UndefinedError(const Value& v) {
  if (v.name().empty()) return absl::InvalidArgumentError("value is undefined");
  return absl::InvalidArgumentError(absl::StrCat("'", v.name(), "' is undefined"));
}

std::vector<std::string> Chars(const std::string& s) {
  std::vector<std::string> out;
  for (char32_t cp : DecodeUtf8(s)) {
    std::string c;
    AppendUtf8(cp, c);
    out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<int64_t> ToIndex(const Value* v, absl::string_view what) {
  if (v == nullptr || v->is_none()) return TypeError(absl::StrCat(what, " must be an integer"));
  if (v->is_int() || v->is_bool()) return v->as_int();
  return TypeError(absl::StrCat(what, " must be an integer, not ", v->TypeName()));
}

const std::string* OptString(const Value* v) {
  if (v == nullptr || !v->is_string()) return nullptr;
  return &v->as_string();
}

Value BoundMethod(const Value& self, std::string name,
                  std::function<absl::StatusOr<Value>(const Value&, const CallArgs&)> fn) {
  Value captured = self;
  return Value::MakeCallable(name, [captured, fn](const CallArgs& args) {
    return fn(captured, args);
  });
}

// ---- Python methods ----

Value StringMethod(const Value& s, absl::string_view name) {
  using Fn = std::function<absl::StatusOr<Value>(const Value&, const CallArgs&)>;
  Fn fn;
  if (name == "startswith" || name == "endswith") {
    bool starts = name == "startswith";
    fn = [starts](const Value& self, const CallArgs& args) -> absl::StatusOr<Value> {
      const Value* p = args.Get(0, "prefix");
      if (p == nullptr) return TypeError("startswith/endswith takes one argument");
      std::vector<std::string> cands;
      if (p->is_string()) {
        cands.push_back(p->as_string());
      } else if (p->is_list()) {
        for (const Value& e : p->list()) {
          if (!e.is_string()) return TypeError("tuple for startswith must only contain str");
          cands.push_back(e.as_string());
        }
      } else {
        return TypeError("startswith/endswith first arg must be str or a tuple of str");
      }
      const std::string& str = self.as_string();
      for (const std::string& c : cands) {
        if (c.size() > str.size()) continue;
        if (starts ? str.compare(0, c.size(), c) == 0
                   : str.compare(str.size() - c.size(), c.size(), c) == 0) {
          return Value::Bool(true);
        }
      }
      return Value::Bool(false);
    };
  } else if (name == "strip" || name == "lstrip" || name == "rstrip") {
    bool l = name != "rstrip", r = name != "lstrip";
    fn = [l, r](const Value& self, const CallArgs& args) -> absl::StatusOr<Value> {
      return Value::String(PyStrip(self.as_string(), OptString(args.Get(0, "chars")), l, r));
    };
  } else if (name == "split" || name == "rsplit") {
    fn = [](const Value& self, const CallArgs& args) -> absl::StatusOr<Value> {
      const Value* sep = args.Get(0, "sep");
      const Value* max = args.Get(1, "maxsplit");
      if (sep != nullptr && !sep->is_none() && !sep->is_string()) {
        return TypeError("must be str or None");
      }
      if (sep != nullptr && sep->is_string() && sep->as_string().empty()) {
        return absl::InvalidArgumentError("empty separator");
      }
      int64_t maxsplit = -1;
      if (max != nullptr) {
        G4_ASSIGN_OR_RETURN(maxsplit, ToIndex(max, "maxsplit"));
      }
      List out;
      for (std::string& part : PySplit(self.as_string(), OptString(sep), maxsplit)) {
        out.push_back(Value::String(std::move(part)));
      }
      return Value::MakeList(std::move(out));
    };
  } else if (name == "upper" || name == "lower") {
    bool up = name == "upper";
    fn = [up](const Value& self, const CallArgs&) -> absl::StatusOr<Value> {
      return Value::String(up ? PyUpper(self.as_string()) : PyLower(self.as_string()));
    };
  } else if (name == "replace") {
    fn = [](const Value& self, const CallArgs& args) -> absl::StatusOr<Value> {
      const std::string* from = OptString(args.Get(0, "old"));
      const std::string* to = OptString(args.Get(1, "new"));
      if (from == nullptr || to == nullptr) return TypeError("replace() arguments must be str");
      int64_t count = -1;
      if (const Value* c = args.Get(2, "count")) {
        G4_ASSIGN_OR_RETURN(count, ToIndex(c, "count"));
      }
      return Value::String(PyReplace(self.as_string(), *from, *to, count));
    };
  } else if (name == "title" || name == "capitalize") {
    std::string filter(name);
    fn = [filter](const Value& self, const CallArgs&) -> absl::StatusOr<Value> {
      return ApplyFilter(filter, self, CallArgs{});
    };
  } else if (name == "find" || name == "count") {
    bool find = name == "find";
    fn = [find](const Value& self, const CallArgs& args) -> absl::StatusOr<Value> {
      const std::string* sub = OptString(args.Get(0, "sub"));
      if (sub == nullptr) return TypeError("must be str");
      const std::string& s = self.as_string();
      if (find) {
        size_t f = s.find(*sub);
        if (f == std::string::npos) return Value::Int(-1);
        return Value::Int(static_cast<int64_t>(Utf8Length(std::string_view(s).substr(0, f))));
      }
      if (sub->empty()) return Value::Int(static_cast<int64_t>(Utf8Length(s) + 1));
      int64_t n = 0;
      for (size_t p = s.find(*sub); p != std::string::npos; p = s.find(*sub, p + sub->size())) ++n;
      return Value::Int(n);
    };
  } else if (name == "join") {
    fn = [](const Value& self, const CallArgs& args) -> absl::StatusOr<Value> {
      const Value* it = args.Get(0, "iterable");
      if (it == nullptr) return TypeError("join() takes exactly one argument");
      G4_ASSIGN_OR_RETURN(List items, Iterate(*it));
      std::string out;
      for (size_t i = 0; i < items.size(); ++i) {
        if (!items[i].is_string()) return TypeError("sequence item: expected str instance");
        if (i > 0) out += self.as_string();
        out += items[i].as_string();
      }
      return Value::String(out);
    };
  } else if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isalnum" ||
             name == "isupper" || name == "islower") {
    std::string which(name);
    fn = [which](const Value& self, const CallArgs&) -> absl::StatusOr<Value> {
      std::vector<char32_t> cps = DecodeUtf8(self.as_string());
      if (cps.empty()) return Value::Bool(false);
      bool any_cased = false;
      for (char32_t c : cps) {
        bool digit = c >= '0' && c <= '9';
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0xC0;
        if (which == "isdigit" && !digit) return Value::Bool(false);
        if (which == "isalpha" && !alpha) return Value::Bool(false);
        if (which == "isalnum" && !alpha && !digit) return Value::Bool(false);
        if (which == "isspace" && !IsPyWhitespace(c)) return Value::Bool(false);
        if (which == "isupper" && c >= 'a' && c <= 'z') return Value::Bool(false);
        if (which == "islower" && c >= 'A' && c <= 'Z') return Value::Bool(false);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) any_cased = true;
      }
      if (which == "isupper" || which == "islower") return Value::Bool(any_cased);
      return Value::Bool(true);
    };
  } else {
    return Value::Undefined(std::string(name));
  }
  return BoundMethod(s, std::string(name), std::move(fn));
}

Value DictMethod(const Value& d, absl::string_view name) {
  using Fn = std::function<absl::StatusOr<Value>(const Value&, const CallArgs&)>;
  Fn fn;
  if (name == "get") {
    fn = [](const Value& self, const CallArgs& args) -> absl::StatusOr<Value> {
      const Value* key = args.Get(0, "key");
      if (key == nullptr) return TypeError("get expected at least 1 argument, got 0");
      const Value* def = args.Get(1, "default");
      if (key->is_string()) {
        if (const Value* v = self.dict().Find(key->as_string())) return *v;
      }
      return def != nullptr ? *def : Value::None();
    };
  } else if (name == "items" || name == "keys" || name == "values") {
    int which = name == "items" ? 0 : name == "keys" ? 1 : 2;
    fn = [which](const Value& self, const CallArgs&) -> absl::StatusOr<Value> {
      List out;
      for (const auto& [k, v] : self.dict().items()) {
        if (which == 0) {
          out.push_back(Value::MakeList({Value::String(k), v}, /*tuple=*/true));
        } else if (which == 1) {
          out.push_back(Value::String(k));
        } else {
          out.push_back(v);
        }
      }
      return Value::MakeList(std::move(out));
    };
  } else if (name == "copy") {
    fn = [](const Value& self, const CallArgs&) -> absl::StatusOr<Value> {
      return Value::MakeDict(self.dict());
    };
  } else {
    return Value::Undefined(std::string(name));
  }
  return BoundMethod(d, std::string(name), std::move(fn));
}

Value ListMethod(const Value& l, absl::string_view name) {
  using Fn = std::function<absl::StatusOr<Value>(const Value&, const CallArgs&)>;
  Fn fn;
  if (name == "index" || name == "count") {
    bool index = name == "index";
    fn = [index](const Value& self, const CallArgs& args) -> absl::StatusOr<Value> {
      const Value* x = args.Get(0, "value");
      if (x == nullptr) return TypeError("expected 1 argument");
      int64_t n = 0;
      for (size_t i = 0; i < self.list().size(); ++i) {
        if (self.list()[i].Equals(*x)) {
          if (index) return Value::Int(static_cast<int64_t>(i));
          ++n;
        }
      }
      if (index) return absl::InvalidArgumentError("list.index(x): x not in list");
      return Value::Int(n);
    };
  } else {
    return Value::Undefined(std::string(name));
  }
  return BoundMethod(l, std::string(name), std::move(fn));
}

// ---- sorting helpers ----

absl::StatusOr<int> Compare3(const Value& a, const Value& b) {
  G4_ASSIGN_OR_RETURN(bool lt, Less(a, b, "<"));
  if (lt) return -1;
  G4_ASSIGN_OR_RETURN(bool gt, Less(b, a, "<"));
  return gt ? 1 : 0;
}

Value SortKey(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::String(PyLower(v.as_string()));
  return v;
}

absl::Status StableSort(std::vector<std::pair<Value, Value>>& items, bool reverse) {
  absl::Status err;
  std::stable_sort(items.begin(), items.end(), [&](const auto& a, const auto& b) {
    if (!err.ok()) return false;
    auto c = Compare3(a.first, b.first);
    if (!c.ok()) {
      err = c.status();
      return false;
    }
    return reverse ? *c > 0 : *c < 0;
  });
  return err;
}

absl::StatusOr<Value> AttributePath(const Value& v, const std::string& attr) {
  Value cur = v;
  size_t pos = 0;
  while (true) {
    size_t dot = attr.find('.', pos);
    std::string part = attr.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    if (cur.is_undefined()) return UndefinedError(cur);
    cur = digits ? GetItem(cur, Value::Int(std::atoll(part.c_str()))) : GetItem(cur, Value::String(part));
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return cur;
}

CallArgs Shift(const CallArgs& args, size_t n) {
  CallArgs out;
  for (size_t i = n; i < args.positional.size(); ++i) out.positional.push_back(args.positional[i]);
  out.keyword = args.keyword;
  return out;
}

absl::StatusOr<Value> SelectReject(const Value& operand, const CallArgs& args, bool select,
                                   bool by_attr) {
  G4_ASSIGN_OR_RETURN(List items, Iterate(operand));
  size_t next = 0;
  std::string attr;
  if (by_attr) {
    const Value* a = args.Get(0, "attr");
    if (a == nullptr || !a->is_string()) return TypeError("selectattr/rejectattr need an attribute");
    attr = a->as_string();
    next = 1;
  }
  const Value* test = next < args.positional.size() ? &args.positional[next] : nullptr;
  CallArgs test_args = Shift(args, next + 1);
  test_args.keyword.clear();
  List out;
  for (const Value& item : items) {
    Value subject = item;
    if (by_attr) {
      G4_ASSIGN_OR_RETURN(subject, AttributePath(item, attr));
    }
    bool ok;
    if (test == nullptr) {
      ok = subject.Truthy();
    } else {
      if (!test->is_string()) return TypeError("test name must be a string");
      G4_ASSIGN_OR_RETURN(ok, ApplyTest(test->as_string(), subject, test_args));
    }
    if (ok == select) out.push_back(item);
  }
  return Value::MakeList(std::move(out));
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

// Python round(): ties go to the even neighbour (default FE_TONEAREST rounding mode).
double RoundHalfEven(double x, int64_t precision) {
  double m = std::pow(10.0, static_cast<double>(precision));
  return std::nearbyint(x * m) / m;
}

}  // namespace

absl::StatusOr<List> Iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return List{};
    case Value::Kind::kList:
      return v.list();
    case Value::Kind::kDict: {
      List out;
      for (const auto& [k, _] : v.dict().items()) out.push_back(Value::String(k));
      return out;
    }
    case Value::Kind::kString: {
      List out;
      for (std::string& c : Chars(v.as_string())) out.push_back(Value::String(std::move(c)));
      return out;
    }
    default:
      return TypeError(absl::StrCat("'", v.TypeName(), "' object is not iterable"));
  }
}

absl::StatusOr<bool> Less(const Value& a, const Value& b, absl::string_view op) {
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  int c;
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_float(), y = b.as_float();
      if (std::isnan(x) || std::isnan(y)) return false;
      c = x < y ? -1 : x > y ? 1 : 0;
    } else {
      c = a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
    }
  } else if (a.is_string() && b.is_string()) {
    int r = a.as_string().compare(b.as_string());
    c = r < 0 ? -1 : r > 0 ? 1 : 0;
  } else if (a.is_list() && b.is_list()) {
    const List& x = a.list();
    const List& y = b.list();
    c = 0;
    size_t i = 0;
    for (; i < x.size() && i < y.size(); ++i) {
      if (x[i].Equals(y[i])) continue;
      G4_ASSIGN_OR_RETURN(bool lt, Less(x[i], y[i], "<"));
      c = lt ? -1 : 1;
      break;
    }
    if (c == 0 && i == std::min(x.size(), y.size())) {
      c = x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
    }
  } else {
    return TypeError(absl::StrCat("'", op, "' not supported between instances of '", a.TypeName(),
                                  "' and '", b.TypeName(), "'"));
  }
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  return c >= 0;
}

absl::StatusOr<bool> Contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kString:
      if (!item.is_string()) {
        return TypeError(absl::StrCat("'in <string>' requires string as left operand, not ",
                                      item.TypeName()));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& v : container.list()) {
        if (v.Equals(item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      return item.is_string() && container.dict().Find(item.as_string()) != nullptr;
    default:
      return TypeError(
          absl::StrCat("argument of type '", container.TypeName(), "' is not iterable"));
  }
}

Value GetAttribute(const Value& obj, absl::string_view name) {
  switch (obj.kind()) {
    case Value::Kind::kDict: {
      Value m = DictMethod(obj, name);
      if (!m.is_undefined()) return m;
      if (const Value* v = obj.dict().Find(std::string_view(name.data(), name.size()))) return *v;
      return Value::Undefined(std::string(name));
    }
    case Value::Kind::kNamespace:
      if (const Value* v = obj.dict().Find(std::string_view(name.data(), name.size()))) return *v;
      return Value::Undefined(std::string(name));
    case Value::Kind::kString: {
      Value m = StringMethod(obj, name);
      if (!m.is_undefined()) return m;
      return Value::Undefined(std::string(name));
    }
    case Value::Kind::kList:
      return ListMethod(obj, name);
    default:
      return Value::Undefined(std::string(name));
  }
}

Value GetItem(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Value::Kind::kDict:
    case Value::Kind::kNamespace:
      if (key.is_string()) {
        if (const Value* v = obj.dict().Find(key.as_string())) return *v;
        return GetAttribute(obj, key.as_string());
      }
      return Value::Undefined(key.Str());
    case Value::Kind::kList:
    case Value::Kind::kString: {
      if (key.is_string()) return GetAttribute(obj, key.as_string());
      if (!key.is_int() && !key.is_bool()) return Value::Undefined(key.Str());
      int64_t i = key.as_int();
      if (obj.is_list()) {
        int64_t n = static_cast<int64_t>(obj.list().size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) return Value::Undefined(key.Str());
        return obj.list()[static_cast<size_t>(i)];
      }
      std::vector<char32_t> cps = DecodeUtf8(obj.as_string());
      int64_t n = static_cast<int64_t>(cps.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::Undefined(key.Str());
      return Value::String(EncodeUtf8(cps, static_cast<size_t>(i), static_cast<size_t>(i) + 1));
    }
    default:
      if (key.is_string()) return GetAttribute(obj, key.as_string());
      return Value::Undefined(key.Str());
  }
}

absl::StatusOr<bool> ApplyTest(absl::string_view name, const Value& v, const CallArgs& args) {
  const Value* arg = args.Get(0, "other");
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") {
    return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
  }
  if (name == "sequence") {
    return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
  }
  if (name == "callable") return v.is_callable();
  if (name == "lower" || name == "upper") {
    if (!v.is_string()) return false;
    return name == "lower" ? PyLower(v.as_string()) == v.as_string()
                           : PyUpper(v.as_string()) == v.as_string();
  }
  if (name == "escaped") return false;
  if (name == "odd" || name == "even" || name == "divisibleby") {
    if (v.is_undefined()) return UndefinedError(v);
    if (!v.is_int() && !v.is_bool()) return TypeError("test requires an integer");
    if (name == "divisibleby") {
      G4_ASSIGN_OR_RETURN(int64_t d, ToIndex(args.Get(0, "num"), "divisibleby argument"));
      if (d == 0) return absl::InvalidArgumentError("integer division or modulo by zero");
      return v.as_int() % d == 0;
    }
    bool odd = (v.as_int() % 2) != 0;
    return name == "odd" ? odd : !odd;
  }
  if (name == "eq" || name == "equalto" || name == "==" || name == "ne" || name == "!=") {
    if (arg == nullptr) return TypeError("test requires an argument");
    bool eq = v.Equals(*arg);
    return (name == "ne" || name == "!=") ? !eq : eq;
  }
  if (name == "lt" || name == "lessthan" || name == "<") {
    if (arg == nullptr) return TypeError("test requires an argument");
    return Less(v, *arg, "<");
  }
  if (name == "le" || name == "<=") {
    if (arg == nullptr) return TypeError("test requires an argument");
    return Less(v, *arg, "<=");
  }
  if (name == "gt" || name == "greaterthan" || name == ">") {
    if (arg == nullptr) return TypeError("test requires an argument");
    return Less(v, *arg, ">");
  }
  if (name == "ge" || name == ">=") {
    if (arg == nullptr) return TypeError("test requires an argument");
    return Less(v, *arg, ">=");
  }
  if (name == "in") {
    const Value* seq = args.Get(0, "seq");
    if (seq == nullptr) return TypeError("test 'in' requires an argument");
    return Contains(*seq, v);
  }
  if (name == "sameas") {
    if (arg == nullptr) return TypeError("test requires an argument");
    if (v.is_none() || v.is_bool() || v.is_undefined()) return v.Equals(*arg) && v.kind() == arg->kind();
    if (v.is_list() && arg->is_list()) return &v.list() == &arg->list();
    if ((v.is_dict() || v.is_namespace()) && v.kind() == arg->kind()) return &v.dict() == &arg->dict();
    return false;
  }
  return absl::InvalidArgumentError(absl::StrCat("No test named '", name, "'"));
}

absl::StatusOr<Value> ApplyFilter(absl::string_view name, const Value& v, const CallArgs& args) {
  if (name == "default" || name == "d") {
    const Value* def = args.Get(0, "default_value");
    const Value* boolean = args.Get(1, "boolean");
    bool use_default = v.is_undefined() || (boolean != nullptr && boolean->Truthy() && !v.Truthy());
    if (use_default) return def != nullptr ? *def : Value::String("");
    return v;
  }
  if (name == "safe") return v;
  if (name == "string") return Value::String(v.Str());
  if (name == "trim") {
    return Value::String(PyStrip(v.Str(), OptString(args.Get(0, "chars")), true, true));
  }
  if (name == "upper") return Value::String(PyUpper(v.Str()));
  if (name == "lower") return Value::String(PyLower(v.Str()));
  if (name == "capitalize") {
    std::vector<char32_t> cps = DecodeUtf8(v.Str());
    std::string out;
    for (size_t i = 0; i < cps.size(); ++i) {
      std::string c;
      AppendUtf8(cps[i], c);
      out += i == 0 ? PyUpper(c) : PyLower(c);
    }
    return Value::String(out);
  }
  if (name == "title") {
    std::vector<char32_t> cps = DecodeUtf8(v.Str());
    std::string out;
    bool boundary = true;
    for (char32_t cp : cps) {
      std::string c;
      AppendUtf8(cp, c);
      out += boundary ? PyUpper(c) : PyLower(c);
      boundary = IsPyWhitespace(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' ||
                 cp == '<';
    }
    return Value::String(out);
  }
  if (name == "length" || name == "count") {
    switch (v.kind()) {
      case Value::Kind::kUndefined:
        return Value::Int(0);
      case Value::Kind::kString:
        return Value::Int(static_cast<int64_t>(Utf8Length(v.as_string())));
      case Value::Kind::kList:
        return Value::Int(static_cast<int64_t>(v.list().size()));
      case Value::Kind::kDict:
        return Value::Int(static_cast<int64_t>(v.dict().size()));
      default:
        return TypeError(absl::StrCat("object of type '", v.TypeName(), "' has no len()"));
    }
  }
  if (name == "list") {
    G4_ASSIGN_OR_RETURN(List items, Iterate(v));
    return Value::MakeList(std::move(items));
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::MakeList();
    if (!v.is_dict()) return TypeError("items filter requires a mapping");
    return DictMethod(v, "items").function()(CallArgs{});
  }
  if (name == "dictsort") {
    if (!v.is_dict()) return TypeError("dictsort requires a mapping");
    const Value* cs = args.Get(0, "case_sensitive");
    const Value* by = args.Get(1, "by");
    const Value* rev = args.Get(2, "reverse");
    bool case_sensitive = cs != nullptr && cs->Truthy();
    bool by_value = false;
    if (by != nullptr) {
      if (!by->is_string() || (by->as_string() != "key" && by->as_string() != "value")) {
        return absl::InvalidArgumentError("You can only sort by either \"key\" or \"value\"");
      }
      by_value = by->as_string() == "value";
    }
    std::vector<std::pair<Value, Value>> items;
    for (const auto& [k, val] : v.dict().items()) {
      Value key = by_value ? val : Value::String(k);
      items.emplace_back(SortKey(key, case_sensitive),
                         Value::MakeList({Value::String(k), val}, /*tuple=*/true));
    }
    G4_RETURN_IF_ERROR(StableSort(items, rev != nullptr && rev->Truthy()));
    List out;
    for (auto& [_, item] : items) out.push_back(std::move(item));
    return Value::MakeList(std::move(out));
  }
  if (name == "sort") {
    G4_ASSIGN_OR_RETURN(List items, Iterate(v));
    const Value* rev = args.Get(0, "reverse");
    const Value* cs = args.Get(1, "case_sensitive");
    const Value* attr = args.Get(2, "attribute");
    std::vector<std::pair<Value, Value>> keyed;
    for (const Value& item : items) {
      Value key = item;
      if (attr != nullptr && attr->is_string()) {
        G4_ASSIGN_OR_RETURN(key, AttributePath(item, attr->as_string()));
      }
      keyed.emplace_back(SortKey(key, cs != nullptr && cs->Truthy()), item);
    }
    G4_RETURN_IF_ERROR(StableSort(keyed, rev != nullptr && rev->Truthy()));
    List out;
    for (auto& [_, item] : keyed) out.push_back(std::move(item));
    return Value::MakeList(std::move(out));
  }
  if (name == "reverse") {
    if (v.is_string()) {
      std::vector<char32_t> cps = DecodeUtf8(v.as_string());
      std::reverse(cps.begin(), cps.end());
      return Value::String(EncodeUtf8(cps, 0, cps.size()));
    }
    G4_ASSIGN_OR_RETURN(List items, Iterate(v));
    std::reverse(items.begin(), items.end());
    return Value::MakeList(std::move(items));
  }
  if (name == "unique") {
    G4_ASSIGN_OR_RETURN(List items, Iterate(v));
    List out;
    for (const Value& item : items) {
      Value key = SortKey(item, false);
      bool seen = false;
      for (const Value& o : out) seen = seen || SortKey(o, false).Equals(key);
      if (!seen) out.push_back(item);
    }
    return Value::MakeList(std::move(out));
  }
  if (name == "join") {
    G4_ASSIGN_OR_RETURN(List items, Iterate(v));
    const Value* sep = args.Get(0, "d");
    const Value* attr = args.Get(1, "attribute");
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0 && sep != nullptr) out += sep->Str();
      Value item = items[i];
      if (attr != nullptr && attr->is_string()) {
        G4_ASSIGN_OR_RETURN(item, AttributePath(item, attr->as_string()));
      }
      out += item.Str();
    }
    return Value::String(out);
  }
  if (name == "map") {
    G4_ASSIGN_OR_RETURN(List items, Iterate(v));
    List out;
    const Value* attr = nullptr;
    for (const auto& [k, val] : args.keyword) {
      if (k == "attribute") attr = &val;
    }
    if (attr != nullptr) {
      const Value* def = nullptr;
      for (const auto& [k, val] : args.keyword) {
        if (k == "default") def = &val;
      }
      for (const Value& item : items) {
        G4_ASSIGN_OR_RETURN(Value x, AttributePath(item, attr->Str()));
        if (x.is_undefined() && def != nullptr) x = *def;
        out.push_back(std::move(x));
      }
      return Value::MakeList(std::move(out));
    }
    if (args.positional.empty() || !args.positional[0].is_string()) {
      return TypeError("map requires a filter name or attribute=");
    }
    CallArgs rest = Shift(args, 1);
    for (const Value& item : items) {
      G4_ASSIGN_OR_RETURN(Value x, ApplyFilter(args.positional[0].as_string(), item, rest));
      out.push_back(std::move(x));
    }
    return Value::MakeList(std::move(out));
  }
  if (name == "select" || name == "reject") return SelectReject(v, args, name == "select", false);
  if (name == "selectattr" || name == "rejectattr") {
    return SelectReject(v, args, name == "selectattr", true);
  }
  if (name == "first" || name == "last") {
    G4_ASSIGN_OR_RETURN(List items, Iterate(v));
    if (items.empty()) return Value::Undefined(std::string(name));
    return name == "first" ? items.front() : items.back();
  }
  if (name == "min" || name == "max" || name == "sum") {
    G4_ASSIGN_OR_RETURN(List items, Iterate(v));
    const Value* attr = args.Get(name == "sum" ? 0 : 1, "attribute");
    if (name == "sum") {
      const Value* start = args.Get(1, "start");
      Value acc = start != nullptr ? *start : Value::Int(0);
      for (Value item : items) {
        if (attr != nullptr && attr->is_string()) {
          G4_ASSIGN_OR_RETURN(item, AttributePath(item, attr->as_string()));
        }
        if (!acc.is_number() || !item.is_number()) return TypeError("sum requires numbers");
        acc = (acc.is_float() || item.is_float()) ? Value::Float(acc.as_float() + item.as_float())
                                                  : Value::Int(acc.as_int() + item.as_int());
      }
      return acc;
    }
    if (items.empty()) return Value::Undefined(std::string(name));
    const Value* cs = args.Get(0, "case_sensitive");
    Value best = items[0];
    for (size_t i = 1; i < items.size(); ++i) {
      G4_ASSIGN_OR_RETURN(int c, Compare3(SortKey(items[i], cs != nullptr && cs->Truthy()),
                                          SortKey(best, cs != nullptr && cs->Truthy())));
      if ((name == "min" && c < 0) || (name == "max" && c > 0)) best = items[i];
    }
    return best;
  }
  if (name == "replace") {
    const Value* from = args.Get(0, "old");
    const Value* to = args.Get(1, "new");
    if (from == nullptr || to == nullptr) return TypeError("replace requires old and new");
    int64_t count = -1;
    if (const Value* c = args.Get(2, "count"); c != nullptr && !c->is_none()) {
      G4_ASSIGN_OR_RETURN(count, ToIndex(c, "count"));
    }
    return Value::String(PyReplace(v.Str(), from->Str(), to->Str(), count));
  }
  if (name == "tojson") {
    const Value* indent = args.Get(0, "indent");
    const Value* sort_keys = nullptr;
    for (const auto& [k, val] : args.keyword) {
      if (k == "sort_keys") sort_keys = &val;
    }
    int ind = -1;
    if (indent != nullptr && !indent->is_none()) {
      G4_ASSIGN_OR_RETURN(int64_t i, ToIndex(indent, "indent"));
      ind = static_cast<int>(i);
    }
    G4_ASSIGN_OR_RETURN(std::string s,
                        PythonJsonDumps(v, ind, sort_keys != nullptr && sort_keys->Truthy()));
    return Value::String(s);
  }
  if (name == "int") {
    const Value* def = args.Get(0, "default");
    Value fallback = def != nullptr ? *def : Value::Int(0);
    if (v.is_int() || v.is_bool()) return Value::Int(v.as_int());
    if (v.is_float()) {
      if (!std::isfinite(v.as_float())) return fallback;
      return Value::Int(static_cast<int64_t>(v.as_float()));
    }
    if (v.is_string()) {
      std::string s = PyStrip(v.as_string(), nullptr, true, true);
      std::string digits;
      for (char c : s) {
        if (c != '_') digits.push_back(c);
      }
      char* end = nullptr;
      long long i = std::strtoll(digits.c_str(), &end, 10);
      if (!digits.empty() && end == digits.c_str() + digits.size()) return Value::Int(i);
      double d = std::strtod(digits.c_str(), &end);
      if (!digits.empty() && end == digits.c_str() + digits.size() && std::isfinite(d)) {
        return Value::Int(static_cast<int64_t>(d));
      }
    }
    return fallback;
  }
  if (name == "float") {
    const Value* def = args.Get(0, "default");
    Value fallback = def != nullptr ? *def : Value::Float(0.0);
    if (v.is_number()) return Value::Float(v.as_float());
    if (v.is_string()) {
      std::string s = PyStrip(v.as_string(), nullptr, true, true);
      char* end = nullptr;
      double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end == s.c_str() + s.size()) return Value::Float(d);
    }
    return fallback;
  }
  if (name == "abs") {
    if (v.is_float()) return Value::Float(std::fabs(v.as_float()));
    if (v.is_number()) return Value::Int(std::llabs(v.as_int()));
    return TypeError(absl::StrCat("bad operand type for abs(): '", v.TypeName(), "'"));
  }
  if (name == "round") {
    if (!v.is_number()) return TypeError("round requires a number");
    int64_t precision = 0;
    if (const Value* p = args.Get(0, "precision")) {
      G4_ASSIGN_OR_RETURN(precision, ToIndex(p, "precision"));
    }
    const Value* method = args.Get(1, "method");
    std::string m = method != nullptr ? method->Str() : "common";
    double x = v.as_float();
    double mult = std::pow(10.0, static_cast<double>(precision));
    if (m == "common") return Value::Float(RoundHalfEven(x, precision));
    if (m == "floor") return Value::Float(std::floor(x * mult) / mult);
    if (m == "ceil") return Value::Float(std::ceil(x * mult) / mult);
    return absl::InvalidArgumentError("method must be common, ceil or floor");
  }
  if (name == "escape" || name == "e" || name == "forceescape") {
    return Value::String(HtmlEscape(v.Str()));
  }
  if (name == "indent") {
    int64_t width = 4;
    if (const Value* w = args.Get(0, "width")) {
      if (w->is_string()) {
        return absl::UnimplementedError("indent with a string width is not supported");
      }
      G4_ASSIGN_OR_RETURN(width, ToIndex(w, "width"));
    }
    // A template is not a way to allocate without bound (as `seq * n`, interpreter.cc).
    constexpr int64_t kMaxIndentWidth = int64_t{16} << 20;
    if (width > kMaxIndentWidth) {
      return absl::InvalidArgumentError(absl::StrCat("indent width ", width,
                                                     " is over the limit of ", kMaxIndentWidth));
    }
    const Value* first = args.Get(1, "first");
    const Value* blank = args.Get(2, "blank");
    std::string pad(static_cast<size_t>(std::max<int64_t>(width, 0)), ' ');
    std::string s = v.Str();
    std::vector<std::string> lines;
    size_t pos = 0;
    while (true) {
      size_t nl = s.find('\n', pos);
      lines.push_back(s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
      if (nl == std::string::npos) break;
      pos = nl + 1;
    }
    if (static_cast<uint64_t>(lines.size()) * pad.size() > (uint64_t{16} << 20)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "indent would add ", lines.size(), " x ", pad.size(), " characters (limit 16 MiB)"));
    }
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) out += "\n";
      bool indent_line = (i == 0) ? (first != nullptr && first->Truthy())
                                  : (!lines[i].empty() || (blank != nullptr && blank->Truthy()));
      if (indent_line) out += pad;
      out += lines[i];
    }
    return Value::String(out);
  }
  if (name == "wordcount") {
    return Value::Int(static_cast<int64_t>(PySplit(v.Str(), nullptr, -1).size()));
  }
  return absl::InvalidArgumentError(absl::StrCat("No filter named '", name, "'"));
}

void AddGlobals(Dict& globals) {
  globals.Set("namespace", Value::MakeCallable("namespace", [](const CallArgs& args)
                                                                 -> absl::StatusOr<Value> {
    Dict attrs;
    for (const Value& p : args.positional) {
      if (!p.is_dict()) return TypeError("namespace() positional argument must be a mapping");
      for (const auto& [k, v] : p.dict().items()) attrs.Set(k, v);
    }
    for (const auto& [k, v] : args.keyword) attrs.Set(k, v);
    return Value::MakeNamespace(std::move(attrs));
  }));
  globals.Set("dict", Value::MakeCallable("dict", [](const CallArgs& args)
                                                       -> absl::StatusOr<Value> {
    Dict d;
    for (const Value& p : args.positional) {
      if (!p.is_dict()) return TypeError("dict() positional argument must be a mapping");
      for (const auto& [k, v] : p.dict().items()) d.Set(k, v);
    }
    for (const auto& [k, v] : args.keyword) d.Set(k, v);
    return Value::MakeDict(std::move(d));
  }));
  globals.Set("range", Value::MakeCallable("range", [](const CallArgs& args)
                                                         -> absl::StatusOr<Value> {
    int64_t start = 0, stop = 0, step = 1;
    const auto& p = args.positional;
    if (p.empty() || p.size() > 3) return TypeError("range expected 1 to 3 arguments");
    for (const Value& a : p) {
      if (!a.is_int() && !a.is_bool()) return TypeError("range() arguments must be integers");
    }
    if (p.size() == 1) {
      stop = p[0].as_int();
    } else {
      start = p[0].as_int();
      stop = p[1].as_int();
      if (p.size() == 3) step = p[2].as_int();
    }
    if (step == 0) return absl::InvalidArgumentError("range() arg 3 must not be zero");
    List out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
      if (out.size() > 100000) return absl::InvalidArgumentError("range too big");
      out.push_back(Value::Int(i));
      if (__builtin_add_overflow(i, step, &i)) break;  // past INT64_MAX: past stop too
    }
    return Value::MakeList(std::move(out));
  }));
  globals.Set("raise_exception", Value::MakeCallable("raise_exception", [](const CallArgs& args)
                                                                             -> absl::StatusOr<Value> {
    const Value* msg = args.Get(0, "message");
    return absl::InvalidArgumentError(
        absl::StrCat("raise_exception: ", msg != nullptr ? msg->Str() : ""));
  }));
  globals.Set("strftime_now", Value::MakeCallable("strftime_now", [](const CallArgs& args)
                                                                       -> absl::StatusOr<Value> {
    const Value* fmt = args.Get(0, "format");
    if (fmt == nullptr || !fmt->is_string()) return TypeError("strftime_now requires a format");
    std::time_t now = std::time(nullptr);
    std::tm tm_now;
    localtime_r(&now, &tm_now);
    char buf[256];
    size_t n = std::strftime(buf, sizeof(buf), fmt->as_string().c_str(), &tm_now);
    return Value::String(std::string(buf, n));
  }));
}

}  // namespace g4::jinja
