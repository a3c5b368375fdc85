#include "common/jinja/interpreter.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/builtins.h"
#include "common/jinja/nesting.h"
#include "common/jinja/parser.h"
#include "common/jinja/py_string.h"
#include "common/stack_headroom.h"
#include "common/status_macros.h"

namespace g4::jinja {
namespace {

// Macro calls may nest this deep (a recursive macro that walks the request's data).
constexpr int kMaxCallDepth = 256;
// Evaluation (statement bodies and expressions, macro calls included) may nest this deep.
constexpr int kMaxEvalDepth = 2048;
// Depth counts alone cannot keep a render inside a thread's stack: one macro level takes several
// KiB of frames (a recursive macro over a list: ~20 KiB in Release, several times that in
// sanitizer builds), and threads' stacks differ. So evaluation also stops while the thread still
// has kMinStackHeadroom of stack left (common/stack_headroom.h).

struct Scope {
  explicit Scope(Scope* p) : parent(p) {}
  std::unordered_map<std::string, Value> vars;
  Scope* parent;

  Value Lookup(const std::string& name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return it->second;
    }
    return Value::Undefined(name);
  }
};

absl::Status AtLine(int line, const absl::Status& s) {
  if (s.ok() || absl::StartsWith(s.message(), "template line ")) return s;
  return absl::Status(s.code(), absl::StrCat("template line ", line, ": ", s.message()));
}

absl::Status UndefinedError(const Value& v) {
  if (v.name().empty()) return absl::InvalidArgumentError("value is undefined");
  return absl::InvalidArgumentError(absl::StrCat("'", v.name(), "' is undefined"));
}

absl::Status IntegerOverflow(absl::string_view op) {
  return absl::InvalidArgumentError(
      absl::StrCat("integer overflow in '", op, "' (64-bit integers)"));
}

// `seq * n` makes at most this many characters or list items (a template is not a way to
// allocate without bound).
constexpr uint64_t kMaxRepeatItems = uint64_t{16} << 20;

absl::Status OperandError(absl::string_view op, const Value& a, const Value& b) {
  return absl::InvalidArgumentError(absl::StrCat("unsupported operand type(s) for ", op, ": '",
                                                 a.TypeName(), "' and '", b.TypeName(), "'"));
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t FloorMod(int64_t a, int64_t b) {
  int64_t m = a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

absl::StatusOr<Value> Arith(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") return Value::String(a.Str() + b.Str());
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  if (a.is_number() && b.is_number()) {
    bool fl = a.is_float() || b.is_float();
    // Python's ints do not overflow; ours are 64-bit, and overflowing is an error, never UB
    // (found by tests/fuzz/jinja_fuzz.cc).
    int64_t r = 0;
    if (op == "+") {
      if (fl) return Value::Float(a.as_float() + b.as_float());
      if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) return IntegerOverflow(op);
      return Value::Int(r);
    }
    if (op == "-") {
      if (fl) return Value::Float(a.as_float() - b.as_float());
      if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) return IntegerOverflow(op);
      return Value::Int(r);
    }
    if (op == "*") {
      if (fl) return Value::Float(a.as_float() * b.as_float());
      if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) return IntegerOverflow(op);
      return Value::Int(r);
    }
    if (op == "/") {
      if (b.as_float() == 0) return absl::InvalidArgumentError("division by zero");
      return Value::Float(a.as_float() / b.as_float());
    }
    if (op == "//" || op == "%") {
      if (b.as_float() == 0) return absl::InvalidArgumentError("integer division or modulo by zero");
      if (fl) {
        double x = a.as_float(), y = b.as_float();
        double m = std::fmod(x, y);
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        if (op == "%") return Value::Float(m);
        return Value::Float(std::floor(x / y));
      }
      if (a.as_int() == std::numeric_limits<int64_t>::min() && b.as_int() == -1) {
        if (op == "%") return Value::Int(0);
        return IntegerOverflow(op);
      }
      return Value::Int(op == "//" ? FloorDiv(a.as_int(), b.as_int()) : FloorMod(a.as_int(), b.as_int()));
    }
    if (op == "**") {
      if (!fl && b.as_int() >= 0) {  // by squaring: O(log b), overflow checked
        int64_t base = a.as_int(), e = b.as_int();
        r = 1;
        while (e > 0) {
          if ((e & 1) != 0 && __builtin_mul_overflow(r, base, &r)) return IntegerOverflow(op);
          e >>= 1;
          if (e > 0 && __builtin_mul_overflow(base, base, &base)) return IntegerOverflow(op);
        }
        return Value::Int(r);
      }
      return Value::Float(std::pow(a.as_float(), b.as_float()));
    }
  }
  if (op == "+") {
    if (a.is_string() && b.is_string()) return Value::String(a.as_string() + b.as_string());
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      List out = a.list();
      out.insert(out.end(), b.list().begin(), b.list().end());
      return Value::MakeList(std::move(out), a.is_tuple());
    }
  }
  if (op == "*") {
    const Value* seq = (a.is_string() || a.is_list()) ? &a : (b.is_string() || b.is_list()) ? &b : nullptr;
    const Value* count = seq == &a ? &b : &a;
    if (seq != nullptr && (count->is_int() || count->is_bool())) {
      int64_t n = std::max<int64_t>(count->as_int(), 0);
      const size_t item = seq->is_string() ? seq->as_string().size() : seq->list().size();
      if (item == 0) n = 0;
      if (n > 0 && item > kMaxRepeatItems / static_cast<uint64_t>(n)) {
        return absl::InvalidArgumentError(
            absl::StrCat("repetition result too large (", item, " x ", n, " items; at most ",
                         kMaxRepeatItems, ")"));
      }
      if (seq->is_string()) {
        std::string out;
        for (int64_t i = 0; i < n; ++i) out += seq->as_string();
        return Value::String(out);
      }
      List out;
      for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq->list().begin(), seq->list().end());
      return Value::MakeList(std::move(out), seq->is_tuple());
    }
  }
  return OperandError(op, a, b);
}

absl::StatusOr<Value> SliceValue(const Value& obj, const Value* start_v, const Value* stop_v,
                                 const Value* step_v) {
  auto opt = [](const Value* v, int64_t& out) -> absl::StatusOr<bool> {
    if (v == nullptr || v->is_none()) return false;
    if (!v->is_int() && !v->is_bool()) {
      return absl::InvalidArgumentError("slice indices must be integers or None");
    }
    out = v->as_int();
    return true;
  };
  int64_t step = 1;
  G4_ASSIGN_OR_RETURN(bool has_step, opt(step_v, step));
  (void)has_step;
  if (step == 0) return absl::InvalidArgumentError("slice step cannot be zero");
  std::vector<char32_t> cps;
  int64_t n;
  if (obj.is_string()) {
    cps = DecodeUtf8(obj.as_string());
    n = static_cast<int64_t>(cps.size());
  } else if (obj.is_list()) {
    n = static_cast<int64_t>(obj.list().size());
  } else if (obj.is_undefined()) {
    return UndefinedError(obj);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("'", obj.TypeName(), "' object is not subscriptable"));
  }
  int64_t start = 0, stop = 0;
  G4_ASSIGN_OR_RETURN(bool has_start, opt(start_v, start));
  G4_ASSIGN_OR_RETURN(bool has_stop, opt(stop_v, stop));
  auto clamp = [&](int64_t i, bool has, bool is_start) -> int64_t {
    if (!has) {
      if (step > 0) return is_start ? 0 : n;
      return is_start ? n - 1 : -1;
    }
    if (i < 0) {
      i += n;
      if (i < 0) i = step > 0 ? 0 : -1;
    } else if (i >= n) {
      i = step > 0 ? n : n - 1;
    }
    return i;
  };
  start = clamp(start, has_start, true);
  stop = clamp(stop, has_stop, false);
  std::vector<size_t> idx;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) idx.push_back(static_cast<size_t>(i));
  if (obj.is_string()) {
    std::string out;
    for (size_t i : idx) AppendUtf8(cps[i], out);
    return Value::String(out);
  }
  List out;
  for (size_t i : idx) out.push_back(obj.list()[i]);
  return Value::MakeList(std::move(out), obj.is_tuple());
}

enum class Flow { kNormal, kBreak, kContinue };

class Interpreter {
 public:
  explicit Interpreter(const Value& context) : globals_(nullptr) {
    Dict builtins;
    AddGlobals(builtins);
    for (const auto& [k, v] : builtins.items()) globals_.vars[k] = v;
    if (context.is_dict()) {
      for (const auto& [k, v] : context.dict().items()) globals_.vars[k] = v;
    }
  }

  absl::StatusOr<std::string> Run(const TemplateAst& ast) {
    std::string out;
    G4_RETURN_IF_ERROR(ExecBody(ast.body, globals_, out));
    return out;
  }

 private:
  absl::Status CheckDepth() const {
    if (eval_depth_ > kMaxEvalDepth) {
      return absl::InvalidArgumentError(
          absl::StrCat("recursion too deep: evaluation nested deeper than ", kMaxEvalDepth,
                       " levels"));
    }
    if (g4::StackNearlyExhausted()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "recursion too deep: the thread's stack is nearly exhausted (", eval_depth_,
          " levels)"));
    }
    return absl::OkStatus();
  }

  absl::Status ExecBody(const Body& body, Scope& scope, std::string& out) {
    Nested nested(&eval_depth_);
    G4_RETURN_IF_ERROR(CheckDepth());
    for (const StmtPtr& s : body) {
      G4_RETURN_IF_ERROR(AtLine(s->line, Exec(*s, scope, out)));
      if (flow_ != Flow::kNormal) return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  absl::Status Assign(Scope& scope, const std::vector<std::string>& targets, const Value& v) {
    if (targets.size() == 1) {
      scope.vars[targets[0]] = v;
      return absl::OkStatus();
    }
    G4_ASSIGN_OR_RETURN(List items, Iterate(v));
    if (items.size() != targets.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot unpack ", items.size(), " values into ", targets.size(), " names"));
    }
    for (size_t i = 0; i < targets.size(); ++i) scope.vars[targets[i]] = items[i];
    return absl::OkStatus();
  }

  absl::StatusOr<Value> ApplyFilterChain(const Expr& chain, Value v, Scope& scope) {
    // chain is a kFilter node whose innermost operand is null.
    std::vector<const Expr*> filters;
    for (const Expr* e = &chain; e != nullptr; e = e->operand.get()) filters.push_back(e);
    for (auto it = filters.rbegin(); it != filters.rend(); ++it) {
      G4_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(**it, scope));
      G4_ASSIGN_OR_RETURN(v, ApplyFilter((*it)->name, v, args));
    }
    return v;
  }

  absl::Status Exec(const Stmt& s, Scope& scope, std::string& out) {
    switch (s.kind) {
      case Stmt::Kind::kText:
        out += s.text;
        return absl::OkStatus();
      case Stmt::Kind::kOutput: {
        G4_ASSIGN_OR_RETURN(Value v, Eval(*s.expr, scope));
        out += v.Str();
        return absl::OkStatus();
      }
      case Stmt::Kind::kIf:
        for (size_t i = 0; i < s.conds.size(); ++i) {
          G4_ASSIGN_OR_RETURN(Value c, Eval(*s.conds[i], scope));
          if (c.Truthy()) return ExecBody(s.bodies[i], scope, out);
        }
        return ExecBody(s.else_body, scope, out);
      case Stmt::Kind::kFor:
        return ExecFor(s, scope, out);
      case Stmt::Kind::kSet: {
        Value v;
        if (s.expr) {
          G4_ASSIGN_OR_RETURN(v, Eval(*s.expr, scope));
        } else {
          std::string body;
          G4_RETURN_IF_ERROR(ExecBody(s.body, scope, body));
          v = Value::String(body);
          if (s.filter_expr) {
            G4_ASSIGN_OR_RETURN(v, ApplyFilterChain(*s.filter_expr, v, scope));
          }
        }
        if (s.attr_target) {
          Value ns = scope.Lookup(s.targets[0]);
          if (!ns.is_namespace()) {
            return absl::InvalidArgumentError(
                absl::StrCat("cannot assign attribute on non-namespace object '", s.targets[0], "'"));
          }
          ns.dict().Set(s.targets[1], v);
          return absl::OkStatus();
        }
        return Assign(scope, s.targets, v);
      }
      case Stmt::Kind::kMacro:
        scope.vars[s.name] = MakeMacro(s, nullptr, scope);
        return absl::OkStatus();
      case Stmt::Kind::kCallBlock: {
        const Expr& call = *s.expr;
        G4_ASSIGN_OR_RETURN(Value callee, Eval(*call.operand, scope));
        G4_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(call, scope));
        args.keyword.emplace_back("caller", MakeMacro(s, &scope, scope));
        G4_ASSIGN_OR_RETURN(Value r, CallValue(callee, args));
        out += r.Str();
        return absl::OkStatus();
      }
      case Stmt::Kind::kBreak:
        flow_ = Flow::kBreak;
        return absl::OkStatus();
      case Stmt::Kind::kContinue:
        flow_ = Flow::kContinue;
        return absl::OkStatus();
      case Stmt::Kind::kScope: {
        if (!s.filter_expr) return ExecBody(s.body, scope, out);
        std::string body;
        G4_RETURN_IF_ERROR(ExecBody(s.body, scope, body));
        G4_ASSIGN_OR_RETURN(Value v, ApplyFilterChain(*s.filter_expr, Value::String(body), scope));
        out += v.Str();
        return absl::OkStatus();
      }
    }
    return absl::InternalError("unknown statement");
  }

  absl::Status ExecFor(const Stmt& s, Scope& scope, std::string& out) {
    if (s.recursive) return absl::UnimplementedError("recursive for loops are not supported");
    G4_ASSIGN_OR_RETURN(Value iterable, Eval(*s.expr, scope));
    if (iterable.is_dict() && s.targets.size() > 1) {
      // Iterating a dict yields keys; unpacking them is what Python would do (rarely intended).
    }
    G4_ASSIGN_OR_RETURN(List items, Iterate(iterable));
    if (s.cond) {
      List kept;
      for (const Value& item : items) {
        Scope probe(&scope);
        G4_RETURN_IF_ERROR(Assign(probe, s.targets, item));
        G4_ASSIGN_OR_RETURN(Value c, Eval(*s.cond, probe));
        if (c.Truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      Scope iter(&scope);
      G4_RETURN_IF_ERROR(Assign(iter, s.targets, items[static_cast<size_t>(i)]));
      Dict loop;
      loop.Set("index", Value::Int(i + 1));
      loop.Set("index0", Value::Int(i));
      loop.Set("revindex", Value::Int(n - i));
      loop.Set("revindex0", Value::Int(n - i - 1));
      loop.Set("first", Value::Bool(i == 0));
      loop.Set("last", Value::Bool(i == n - 1));
      loop.Set("length", Value::Int(n));
      loop.Set("depth", Value::Int(1));
      loop.Set("depth0", Value::Int(0));
      loop.Set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::Undefined("previtem"));
      loop.Set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::Undefined("nextitem"));
      loop.Set("cycle", Value::MakeCallable("cycle", [i](const CallArgs& args) -> absl::StatusOr<Value> {
        if (args.positional.empty()) return absl::InvalidArgumentError("no items for cycling given");
        return args.positional[static_cast<size_t>(i) % args.positional.size()];
      }));
      iter.vars["loop"] = Value::MakeDict(std::move(loop));
      G4_RETURN_IF_ERROR(ExecBody(s.body, iter, out));
      if (flow_ == Flow::kBreak) {
        flow_ = Flow::kNormal;
        break;
      }
      flow_ = Flow::kNormal;
    }
    if (n == 0) return ExecBody(s.else_body, scope, out);
    return absl::OkStatus();
  }

  // A macro (or the `caller` of a call block when `closure` is set) as a callable value.
  Value MakeMacro(const Stmt& s, Scope* closure, Scope& /*def_scope*/) {
    const Stmt* stmt = &s;
    std::string name = s.kind == Stmt::Kind::kMacro ? s.name : "caller";
    return Value::MakeCallable(name, [this, stmt, closure, name](const CallArgs& args)
                                         -> absl::StatusOr<Value> {
      if (depth_ >= kMaxCallDepth) {
        return absl::InvalidArgumentError(absl::StrCat(
            "maximum macro recursion depth (", kMaxCallDepth, ") exceeded in '", name, "'"));
      }
      Scope local(closure != nullptr ? closure : &globals_);
      const auto& params = stmt->params;
      if (args.positional.size() > params.size()) {
        return absl::InvalidArgumentError(absl::StrCat("macro '", name, "' takes not more than ",
                                                       params.size(), " argument(s)"));
      }
      std::vector<bool> bound(params.size(), false);
      for (size_t i = 0; i < args.positional.size(); ++i) {
        local.vars[params[i].first] = args.positional[i];
        bound[i] = true;
      }
      Dict extra;
      Value caller;
      for (const auto& [k, v] : args.keyword) {
        bool found = false;
        for (size_t i = 0; i < params.size(); ++i) {
          if (params[i].first == k) {
            if (bound[i]) {
              return absl::InvalidArgumentError(
                  absl::StrCat("macro '", name, "' got multiple values for argument '", k, "'"));
            }
            local.vars[k] = v;
            bound[i] = true;
            found = true;
          }
        }
        if (!found) {
          if (k == "caller") {
            caller = v;
          } else {
            extra.Set(k, v);
          }
        }
      }
      if (extra.size() > 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "macro '", name, "' takes no keyword argument '", extra.items()[0].first, "'"));
      }
      for (size_t i = 0; i < params.size(); ++i) {
        if (bound[i]) continue;
        if (params[i].second) {
          G4_ASSIGN_OR_RETURN(Value d, Eval(*params[i].second, local));
          local.vars[params[i].first] = d;
        } else {
          local.vars[params[i].first] = Value::Undefined(params[i].first);
        }
      }
      if (!caller.is_undefined()) local.vars["caller"] = caller;
      ++depth_;
      std::string out;
      Flow saved = flow_;
      flow_ = Flow::kNormal;
      absl::Status st = ExecBody(stmt->body, local, out);
      flow_ = saved;
      --depth_;
      G4_RETURN_IF_ERROR(st);
      return Value::String(out);
    });
  }

  absl::StatusOr<CallArgs> EvalArgs(const Expr& e, Scope& scope) {
    CallArgs args;
    for (const ExprPtr& a : e.items) {
      G4_ASSIGN_OR_RETURN(Value v, Eval(*a, scope));
      args.positional.push_back(std::move(v));
    }
    for (const auto& [k, a] : e.kwargs) {
      G4_ASSIGN_OR_RETURN(Value v, Eval(*a, scope));
      args.keyword.emplace_back(k, std::move(v));
    }
    return args;
  }

  absl::StatusOr<Value> CallValue(const Value& callee, const CallArgs& args) {
    if (callee.is_undefined()) return UndefinedError(callee);
    if (!callee.is_callable()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", callee.TypeName(), "' object is not callable"));
    }
    return callee.function()(args);
  }

  absl::StatusOr<Value> Eval(const Expr& e, Scope& scope) {
    Nested nested(&eval_depth_);
    if (absl::Status deep = CheckDepth(); !deep.ok()) return AtLine(e.line, deep);
    absl::StatusOr<Value> r = EvalImpl(e, scope);
    if (!r.ok()) return AtLine(e.line, r.status());
    return r;
  }

  absl::StatusOr<Value> EvalImpl(const Expr& e, Scope& scope) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.value;
      case Expr::Kind::kName:
        return scope.Lookup(e.name);
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        List items;
        for (const ExprPtr& i : e.items) {
          G4_ASSIGN_OR_RETURN(Value v, Eval(*i, scope));
          items.push_back(std::move(v));
        }
        return Value::MakeList(std::move(items), e.kind == Expr::Kind::kTuple);
      }
      case Expr::Kind::kDict: {
        Dict d;
        for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
          G4_ASSIGN_OR_RETURN(Value k, Eval(*e.items[i], scope));
          G4_ASSIGN_OR_RETURN(Value v, Eval(*e.items[i + 1], scope));
          if (!k.is_string()) {
            return absl::UnimplementedError("only string keys are supported in dict literals");
          }
          d.Set(k.as_string(), std::move(v));
        }
        return Value::MakeDict(std::move(d));
      }
      case Expr::Kind::kGetAttr: {
        G4_ASSIGN_OR_RETURN(Value obj, Eval(*e.operand, scope));
        if (obj.is_undefined()) {
          return absl::InvalidArgumentError(
              absl::StrCat("'", obj.name(), "' is undefined (accessing attribute '", e.name, "')"));
        }
        return GetAttribute(obj, e.name);
      }
      case Expr::Kind::kGetItem: {
        G4_ASSIGN_OR_RETURN(Value obj, Eval(*e.operand, scope));
        G4_ASSIGN_OR_RETURN(Value key, Eval(*e.items[0], scope));
        if (obj.is_undefined()) {
          return absl::InvalidArgumentError(absl::StrCat("'", obj.name(), "' is undefined (accessing item ",
                                                         key.Repr(), ")"));
        }
        return GetItem(obj, key);
      }
      case Expr::Kind::kSlice: {
        G4_ASSIGN_OR_RETURN(Value obj, Eval(*e.operand, scope));
        Value parts[3];
        bool has[3] = {false, false, false};
        for (int i = 0; i < 3; ++i) {
          if (e.items[i]) {
            G4_ASSIGN_OR_RETURN(parts[i], Eval(*e.items[i], scope));
            has[i] = true;
          }
        }
        return SliceValue(obj, has[0] ? &parts[0] : nullptr, has[1] ? &parts[1] : nullptr,
                          has[2] ? &parts[2] : nullptr);
      }
      case Expr::Kind::kCall: {
        G4_ASSIGN_OR_RETURN(Value callee, Eval(*e.operand, scope));
        G4_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, scope));
        return CallValue(callee, args);
      }
      case Expr::Kind::kFilter: {
        G4_ASSIGN_OR_RETURN(Value v, Eval(*e.operand, scope));
        G4_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, scope));
        return ApplyFilter(e.name, v, args);
      }
      case Expr::Kind::kTest: {
        G4_ASSIGN_OR_RETURN(Value v, Eval(*e.operand, scope));
        G4_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, scope));
        G4_ASSIGN_OR_RETURN(bool r, ApplyTest(e.name, v, args));
        return Value::Bool(r != e.negated);
      }
      case Expr::Kind::kNot: {
        G4_ASSIGN_OR_RETURN(Value v, Eval(*e.operand, scope));
        return Value::Bool(!v.Truthy());
      }
      case Expr::Kind::kNeg:
      case Expr::Kind::kPos: {
        G4_ASSIGN_OR_RETURN(Value v, Eval(*e.operand, scope));
        if (v.is_undefined()) return UndefinedError(v);
        if (!v.is_number()) {
          return absl::InvalidArgumentError(
              absl::StrCat("bad operand type for unary ", e.kind == Expr::Kind::kNeg ? "-" : "+",
                           ": '", v.TypeName(), "'"));
        }
        if (e.kind == Expr::Kind::kPos) return v.is_bool() ? Value::Int(v.as_int()) : v;
        if (v.is_float()) return Value::Float(-v.as_float());
        if (v.as_int() == std::numeric_limits<int64_t>::min()) return IntegerOverflow("-");
        return Value::Int(-v.as_int());
      }
      case Expr::Kind::kBinary: {
        G4_ASSIGN_OR_RETURN(Value a, Eval(*e.operand, scope));
        G4_ASSIGN_OR_RETURN(Value b, Eval(*e.items[0], scope));
        return Arith(e.name, a, b);
      }
      case Expr::Kind::kAnd: {
        G4_ASSIGN_OR_RETURN(Value a, Eval(*e.operand, scope));
        if (!a.Truthy()) return a;
        return Eval(*e.items[0], scope);
      }
      case Expr::Kind::kOr: {
        G4_ASSIGN_OR_RETURN(Value a, Eval(*e.operand, scope));
        if (a.Truthy()) return a;
        return Eval(*e.items[0], scope);
      }
      case Expr::Kind::kCompare: {
        G4_ASSIGN_OR_RETURN(Value left, Eval(*e.operand, scope));
        for (size_t i = 0; i < e.ops.size(); ++i) {
          G4_ASSIGN_OR_RETURN(Value right, Eval(*e.items[i], scope));
          const std::string& op = e.ops[i];
          bool r;
          if (op == "==") {
            r = left.Equals(right);
          } else if (op == "!=") {
            r = !left.Equals(right);
          } else if (op == "in" || op == "notin") {
            G4_ASSIGN_OR_RETURN(r, Contains(right, left));
            if (op == "notin") r = !r;
          } else {
            G4_ASSIGN_OR_RETURN(r, Less(left, right, op));
          }
          if (!r) return Value::Bool(false);
          left = std::move(right);
        }
        return Value::Bool(true);
      }
      case Expr::Kind::kCondExpr: {
        G4_ASSIGN_OR_RETURN(Value c, Eval(*e.operand, scope));
        if (c.Truthy()) return Eval(*e.items[0], scope);
        if (e.items[1]) return Eval(*e.items[1], scope);
        return Value::Undefined("");
      }
    }
    return absl::InternalError("unknown expression");
  }

  Scope globals_;
  Flow flow_ = Flow::kNormal;
  int depth_ = 0;       // macro calls in progress
  int eval_depth_ = 0;  // ExecBody + Eval frames in progress
};

}  // namespace

absl::StatusOr<Template> Template::Parse(std::string_view source, const LexerOptions& options) {
  G4_ASSIGN_OR_RETURN(std::unique_ptr<TemplateAst> ast, ParseTemplate(source, options));
  Template t;
  t.ast_ = std::shared_ptr<const TemplateAst>(std::move(ast));
  return t;
}

absl::StatusOr<std::string> Template::Render(const Value& context) const {
  if (!ast_) return absl::FailedPreconditionError("template not parsed");
  Interpreter interp(context);
  return interp.Run(*ast_);
}

}  // namespace g4::jinja
