// Abstract syntax tree of a parsed Jinja template.
#ifndef G4SERVE_COMMON_JINJA_AST_H_
#define G4SERVE_COMMON_JINJA_AST_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/jinja/value.h"

namespace g4::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,   // value
    kName,      // name
    kList,      // items
    kTuple,     // items
    kDict,      // items = key0, value0, key1, value1, ...
    kGetAttr,   // operand.name
    kGetItem,   // operand[items[0]]
    kSlice,     // operand[items[0]:items[1]:items[2]] (null entries = omitted)
    kCall,      // operand(items..., kwargs...)
    kFilter,    // operand | name(items..., kwargs...)   (operand null inside a filter block)
    kTest,      // operand is [not] name(items...)
    kNot,       // not operand
    kNeg,       // -operand
    kPos,       // +operand
    kBinary,    // operand <op> items[0]   (+ - * / // % ** ~)
    kAnd,       // operand and items[0]
    kOr,        // operand or items[0]
    kCompare,   // operand <ops[i]> items[i] ...   (== != < <= > >= in notin)
    kCondExpr,  // items[0] if operand else items[1] (items[1] may be null)
  };

  Kind kind;
  int line = 0;
  Value value;
  std::string name;
  ExprPtr operand;
  std::vector<ExprPtr> items;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // conds[i] -> bodies[i]; else_body
    kFor,       // for targets in expr [if cond]: body else else_body
    kSet,       // set targets = expr   /  set target %}body{% endset
    kMacro,     // macro name(params) body
    kCallBlock, // call(params) expr; body is the caller
    kBreak,
    kContinue,
    kScope,     // plain body (generation blocks, filter blocks with filter_expr)
  };

  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr cond;
  std::vector<ExprPtr> conds;
  std::vector<Body> bodies;
  Body body;
  Body else_body;
  // For `for` and `set`: target names. For set on a namespace attribute: targets = {ns, attr} and
  // attr_target = true.
  std::vector<std::string> targets;
  bool attr_target = false;
  bool recursive = false;
  // Macro parameters (name, default or null).
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;
  // Filter block: filters applied to the rendered body (kScope with filter_expr set).
  ExprPtr filter_expr;
};

struct TemplateAst {
  Body body;
};

}  // namespace g4::jinja

#endif  // G4SERVE_COMMON_JINJA_AST_H_
