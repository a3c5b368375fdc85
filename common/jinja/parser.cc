#include "common/jinja/parser.h"

#include <cstdlib>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/nesting.h"
#include "common/stack_headroom.h"
#include "common/status_macros.h"

namespace g4::jinja {
namespace {

// Statements and expressions may nest this deep; the parser, the interpreter and the AST's
// destructor recurse once per level.
constexpr int kMaxNesting = 256;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  absl::StatusOr<std::unique_ptr<TemplateAst>> Run() {
    auto tmpl = std::make_unique<TemplateAst>();
    std::string end;
    G4_RETURN_IF_ERROR(ParseBody({}, tmpl->body, end));
    return tmpl;
  }

 private:
  const Token& Cur() const { return tokens_[pos_]; }
  const Token& Peek(size_t k = 1) const {
    return tokens_[std::min(pos_ + k, tokens_.size() - 1)];
  }
  void Advance() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  bool IsOp(absl::string_view op) const {
    return Cur().type == TokenType::kOperator && Cur().value == op;
  }
  bool IsName(absl::string_view name) const {
    return Cur().type == TokenType::kName && Cur().value == name;
  }
  bool AcceptOp(absl::string_view op) {
    if (!IsOp(op)) return false;
    Advance();
    return true;
  }
  bool AcceptName(absl::string_view name) {
    if (!IsName(name)) return false;
    Advance();
    return true;
  }

  static std::string Describe(const Token& t) {
    switch (t.type) {
      case TokenType::kText:
        return "template data";
      case TokenType::kVarBegin:
        return "'{{'";
      case TokenType::kVarEnd:
        return "end of print statement '}}'";
      case TokenType::kBlockBegin:
        return "'{%'";
      case TokenType::kBlockEnd:
        return "end of statement block '%}'";
      case TokenType::kString:
        return "string";
      case TokenType::kInt:
      case TokenType::kFloat:
        return absl::StrCat("number ", t.value);
      case TokenType::kEof:
        return "end of template";
      default:
        return absl::StrCat("'", t.value, "'");
    }
  }

  absl::Status Error(absl::string_view msg) const {
    return absl::InvalidArgumentError(absl::StrCat("template line ", Cur().line, ": ", msg));
  }
  absl::Status Unexpected(absl::string_view expected) const {
    return Error(absl::StrCat("expected ", expected, ", got ", Describe(Cur())));
  }

  absl::Status ExpectOp(absl::string_view op) {
    if (!AcceptOp(op)) return Unexpected(absl::StrCat("'", op, "'"));
    return absl::OkStatus();
  }
  absl::Status ExpectBlockEnd() {
    if (Cur().type != TokenType::kBlockEnd) return Unexpected("end of statement block '%}'");
    Advance();
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ExpectName() {
    if (Cur().type != TokenType::kName) return Unexpected("a name");
    std::string n = Cur().value;
    Advance();
    return n;
  }

  ExprPtr NewExpr(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // Parses statements until `{% <one of end_names>` (consumed up to and including the name).
  absl::Status ParseBody(const std::set<std::string>& end_names, Body& body, std::string& end) {
    while (true) {
      const Token& t = Cur();
      switch (t.type) {
        case TokenType::kEof:
          if (!end_names.empty()) {
            std::string names;
            for (const std::string& n : end_names) {
              absl::StrAppend(&names, names.empty() ? "" : " or ", "'", n, "'");
            }
            return Error(absl::StrCat("unexpected end of template; looking for ", names));
          }
          return absl::OkStatus();
        case TokenType::kText: {
          auto s = std::make_unique<Stmt>();
          s->kind = Stmt::Kind::kText;
          s->line = t.line;
          s->text = t.value;
          body.push_back(std::move(s));
          Advance();
          break;
        }
        case TokenType::kVarBegin: {
          int line = t.line;
          Advance();
          auto s = std::make_unique<Stmt>();
          s->kind = Stmt::Kind::kOutput;
          s->line = line;
          G4_ASSIGN_OR_RETURN(s->expr, ParseTuple(/*with_condexpr=*/true, false));
          if (Cur().type != TokenType::kVarEnd) return Unexpected("end of print statement '}}'");
          Advance();
          body.push_back(std::move(s));
          break;
        }
        case TokenType::kBlockBegin: {
          Advance();
          if (Cur().type != TokenType::kName) return Unexpected("a statement name");
          std::string name = Cur().value;
          if (end_names.count(name)) {
            Advance();
            end = name;
            return absl::OkStatus();
          }
          G4_ASSIGN_OR_RETURN(StmtPtr s, ParseStatement());
          body.push_back(std::move(s));
          break;
        }
        default:
          return Unexpected("template data or a tag");
      }
    }
  }

  absl::Status TooDeep() const {
    return absl::InvalidArgumentError(absl::StrCat("template line ", Cur().line,
                                                   ": blocks or expressions nested deeper than ",
                                                   kMaxNesting, " levels"));
  }

  // Entering one more level (a Nested in scope): the nesting bound, and the thread's stack. The
  // bound keeps the parser, the interpreter and the AST's destructor within a default thread's
  // stack in Release; where frames are larger (sanitizer builds) or a thread's stack is small,
  // the stack itself runs out first (common/stack_headroom.h).
  absl::Status CheckNesting() const {
    if (depth_ > kMaxNesting) return TooDeep();
    if (StackNearlyExhausted()) {
      return Error(absl::StrCat("blocks or expressions nested too deep for the thread's stack (",
                                depth_, " levels)"));
    }
    return absl::OkStatus();
  }

  // One more node wrapping the previous ones in a left-associative chain (`a + b + c`,
  // `x.y.z`, `v | f | g`): the tree gets deeper without the parser recursing.
  absl::Status Link(int* links) const {
    if (depth_ + ++*links > kMaxNesting) return TooDeep();
    return absl::OkStatus();
  }

  absl::StatusOr<StmtPtr> ParseStatement() {
    Nested nested(&depth_);
    G4_RETURN_IF_ERROR(CheckNesting());
    const std::string name = Cur().value;
    const int line = Cur().line;
    auto s = std::make_unique<Stmt>();
    s->line = line;
    Advance();
    if (name == "if") {
      s->kind = Stmt::Kind::kIf;
      while (true) {
        G4_ASSIGN_OR_RETURN(ExprPtr cond, ParseTuple(true, false));
        G4_RETURN_IF_ERROR(ExpectBlockEnd());
        Body b;
        std::string end;
        G4_RETURN_IF_ERROR(ParseBody({"elif", "else", "endif"}, b, end));
        s->conds.push_back(std::move(cond));
        s->bodies.push_back(std::move(b));
        if (end == "elif") continue;
        if (end == "else") {
          G4_RETURN_IF_ERROR(ExpectBlockEnd());
          G4_RETURN_IF_ERROR(ParseBody({"endif"}, s->else_body, end));
        }
        G4_RETURN_IF_ERROR(ExpectBlockEnd());
        return s;
      }
    }
    if (name == "for") {
      s->kind = Stmt::Kind::kFor;
      bool paren = AcceptOp("(");
      do {
        G4_ASSIGN_OR_RETURN(std::string target, ExpectName());
        s->targets.push_back(target);
      } while (AcceptOp(","));
      if (paren) G4_RETURN_IF_ERROR(ExpectOp(")"));
      if (!AcceptName("in")) return Unexpected("'in'");
      G4_ASSIGN_OR_RETURN(s->expr, ParseTuple(/*with_condexpr=*/false, false));
      if (AcceptName("if")) {
        G4_ASSIGN_OR_RETURN(s->cond, ParseExpression(true));
      }
      if (AcceptName("recursive")) s->recursive = true;
      G4_RETURN_IF_ERROR(ExpectBlockEnd());
      std::string end;
      G4_RETURN_IF_ERROR(ParseBody({"else", "endfor"}, s->body, end));
      if (end == "else") {
        G4_RETURN_IF_ERROR(ExpectBlockEnd());
        G4_RETURN_IF_ERROR(ParseBody({"endfor"}, s->else_body, end));
      }
      G4_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (name == "set") {
      s->kind = Stmt::Kind::kSet;
      bool paren = AcceptOp("(");
      G4_ASSIGN_OR_RETURN(std::string first, ExpectName());
      s->targets.push_back(first);
      if (AcceptOp(".")) {
        G4_ASSIGN_OR_RETURN(std::string attr, ExpectName());
        s->targets.push_back(attr);
        s->attr_target = true;
      } else {
        while (AcceptOp(",")) {
          if (Cur().type != TokenType::kName) break;
          G4_ASSIGN_OR_RETURN(std::string t, ExpectName());
          s->targets.push_back(t);
        }
      }
      if (paren) G4_RETURN_IF_ERROR(ExpectOp(")"));
      if (AcceptOp("=")) {
        G4_ASSIGN_OR_RETURN(s->expr, ParseTuple(true, false));
        G4_RETURN_IF_ERROR(ExpectBlockEnd());
        return s;
      }
      // Block set, optionally with filters: {% set x | upper %}...{% endset %}
      if (IsOp("|")) {
        G4_ASSIGN_OR_RETURN(s->filter_expr, ParseFilterChain(nullptr));
      }
      G4_RETURN_IF_ERROR(ExpectBlockEnd());
      std::string end;
      G4_RETURN_IF_ERROR(ParseBody({"endset"}, s->body, end));
      G4_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (name == "macro" || name == "call") {
      s->kind = name == "macro" ? Stmt::Kind::kMacro : Stmt::Kind::kCallBlock;
      if (name == "macro") {
        G4_ASSIGN_OR_RETURN(s->name, ExpectName());
      }
      if (name == "macro" || IsOp("(")) {
        G4_RETURN_IF_ERROR(ExpectOp("("));
        while (!IsOp(")")) {
          if (!s->params.empty()) G4_RETURN_IF_ERROR(ExpectOp(","));
          if (IsOp(")")) break;
          G4_ASSIGN_OR_RETURN(std::string param, ExpectName());
          ExprPtr def;
          if (AcceptOp("=")) {
            G4_ASSIGN_OR_RETURN(def, ParseExpression(true));
          }
          s->params.emplace_back(param, std::move(def));
        }
        Advance();  // ')'
      }
      if (name == "call") {
        G4_ASSIGN_OR_RETURN(s->expr, ParseExpression(true));
        if (s->expr->kind != Expr::Kind::kCall) return Error("expected a call after 'call'");
      }
      G4_RETURN_IF_ERROR(ExpectBlockEnd());
      std::string end;
      G4_RETURN_IF_ERROR(
          ParseBody({name == "macro" ? "endmacro" : "endcall"}, s->body, end));
      if (name == "macro" && Cur().type == TokenType::kName) Advance();  // {% endmacro name %}
      G4_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (name == "break" || name == "continue") {
      s->kind = name == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
      G4_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (name == "generation" || name == "filter") {
      // transformers' {% generation %} marks assistant spans; it renders its body unchanged.
      s->kind = Stmt::Kind::kScope;
      if (name == "filter") {
        G4_ASSIGN_OR_RETURN(s->filter_expr, ParseFilterChain(nullptr, /*leading_pipe=*/false));
      }
      G4_RETURN_IF_ERROR(ExpectBlockEnd());
      std::string end;
      G4_RETURN_IF_ERROR(ParseBody({"end" + name}, s->body, end));
      G4_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("template line ", line, ": unknown or unsupported tag '", name, "'"));
  }

  // ---- expressions ----

  absl::StatusOr<ExprPtr> ParseTuple(bool with_condexpr, bool explicit_parens) {
    const int line = Cur().line;
    std::vector<ExprPtr> items;
    bool saw_comma = false;
    while (true) {
      if (!items.empty()) {
        if (!AcceptOp(",")) break;
        saw_comma = true;
      }
      if (IsTupleEnd()) break;
      G4_ASSIGN_OR_RETURN(ExprPtr e, ParseExpression(with_condexpr));
      items.push_back(std::move(e));
    }
    if (!saw_comma && items.size() == 1) return std::move(items[0]);
    if (items.empty() && !explicit_parens) return Unexpected("an expression");
    auto t = NewExpr(Expr::Kind::kTuple, line);
    t->items = std::move(items);
    return t;
  }

  bool IsTupleEnd() const {
    const Token& t = Cur();
    if (t.type == TokenType::kVarEnd || t.type == TokenType::kBlockEnd ||
        t.type == TokenType::kEof) {
      return true;
    }
    if (t.type == TokenType::kOperator && (t.value == ")" || t.value == "]" || t.value == "}")) {
      return true;
    }
    return t.type == TokenType::kName && (t.value == "in" || t.value == "recursive");
  }

  absl::StatusOr<ExprPtr> ParseExpression(bool with_condexpr) {
    Nested nested(&depth_);
    G4_RETURN_IF_ERROR(CheckNesting());
    if (!with_condexpr) return ParseOr();
    G4_ASSIGN_OR_RETURN(ExprPtr expr, ParseOr());
    int links = 0;
    while (IsName("if")) {
      G4_RETURN_IF_ERROR(Link(&links));
      const int line = Cur().line;
      Advance();
      G4_ASSIGN_OR_RETURN(ExprPtr cond, ParseOr());
      ExprPtr else_expr;
      if (AcceptName("else")) {
        G4_ASSIGN_OR_RETURN(else_expr, ParseExpression(true));
      }
      auto c = NewExpr(Expr::Kind::kCondExpr, line);
      c->operand = std::move(cond);
      c->items.push_back(std::move(expr));
      c->items.push_back(std::move(else_expr));
      expr = std::move(c);
    }
    return expr;
  }

  absl::StatusOr<ExprPtr> ParseOr() {
    G4_ASSIGN_OR_RETURN(ExprPtr left, ParseAnd());
    int links = 0;
    while (IsName("or")) {
      G4_RETURN_IF_ERROR(Link(&links));
      const int line = Cur().line;
      Advance();
      G4_ASSIGN_OR_RETURN(ExprPtr right, ParseAnd());
      auto e = NewExpr(Expr::Kind::kOr, line);
      e->operand = std::move(left);
      e->items.push_back(std::move(right));
      left = std::move(e);
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseAnd() {
    G4_ASSIGN_OR_RETURN(ExprPtr left, ParseNot());
    int links = 0;
    while (IsName("and")) {
      G4_RETURN_IF_ERROR(Link(&links));
      const int line = Cur().line;
      Advance();
      G4_ASSIGN_OR_RETURN(ExprPtr right, ParseNot());
      auto e = NewExpr(Expr::Kind::kAnd, line);
      e->operand = std::move(left);
      e->items.push_back(std::move(right));
      left = std::move(e);
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseNot() {
    Nested nested(&depth_);
    G4_RETURN_IF_ERROR(CheckNesting());
    if (IsName("not")) {
      const int line = Cur().line;
      Advance();
      G4_ASSIGN_OR_RETURN(ExprPtr inner, ParseNot());
      auto e = NewExpr(Expr::Kind::kNot, line);
      e->operand = std::move(inner);
      return e;
    }
    return ParseCompare();
  }

  absl::StatusOr<ExprPtr> ParseCompare() {
    const int line = Cur().line;
    G4_ASSIGN_OR_RETURN(ExprPtr first, ParseMath1());
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (Cur().type == TokenType::kOperator &&
          (Cur().value == "==" || Cur().value == "!=" || Cur().value == "<" ||
           Cur().value == "<=" || Cur().value == ">" || Cur().value == ">=")) {
        op = Cur().value;
        Advance();
      } else if (IsName("in")) {
        op = "in";
        Advance();
      } else if (IsName("not") && Peek().type == TokenType::kName && Peek().value == "in") {
        op = "notin";
        Advance();
        Advance();
      } else {
        break;
      }
      G4_ASSIGN_OR_RETURN(ExprPtr right, ParseMath1());
      if (!cmp) {
        cmp = NewExpr(Expr::Kind::kCompare, line);
        cmp->operand = std::move(first);
      }
      cmp->ops.push_back(op);
      cmp->items.push_back(std::move(right));
    }
    if (cmp) return cmp;
    return first;
  }

  ExprPtr Binary(std::string op, ExprPtr left, ExprPtr right, int line) {
    auto e = NewExpr(Expr::Kind::kBinary, line);
    e->name = std::move(op);
    e->operand = std::move(left);
    e->items.push_back(std::move(right));
    return e;
  }

  absl::StatusOr<ExprPtr> ParseMath1() {
    G4_ASSIGN_OR_RETURN(ExprPtr left, ParseConcat());
    int links = 0;
    while (IsOp("+") || IsOp("-")) {
      G4_RETURN_IF_ERROR(Link(&links));
      std::string op = Cur().value;
      const int line = Cur().line;
      Advance();
      G4_ASSIGN_OR_RETURN(ExprPtr right, ParseConcat());
      left = Binary(op, std::move(left), std::move(right), line);
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseConcat() {
    G4_ASSIGN_OR_RETURN(ExprPtr left, ParseMath2());
    int links = 0;
    while (IsOp("~")) {
      G4_RETURN_IF_ERROR(Link(&links));
      const int line = Cur().line;
      Advance();
      G4_ASSIGN_OR_RETURN(ExprPtr right, ParseMath2());
      left = Binary("~", std::move(left), std::move(right), line);
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseMath2() {
    G4_ASSIGN_OR_RETURN(ExprPtr left, ParsePow());
    int links = 0;
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      G4_RETURN_IF_ERROR(Link(&links));
      std::string op = Cur().value;
      const int line = Cur().line;
      Advance();
      G4_ASSIGN_OR_RETURN(ExprPtr right, ParsePow());
      left = Binary(op, std::move(left), std::move(right), line);
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParsePow() {
    G4_ASSIGN_OR_RETURN(ExprPtr left, ParseUnary(true));
    int links = 0;
    while (IsOp("**")) {
      G4_RETURN_IF_ERROR(Link(&links));
      const int line = Cur().line;
      Advance();
      G4_ASSIGN_OR_RETURN(ExprPtr right, ParseUnary(true));
      left = Binary("**", std::move(left), std::move(right), line);
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseUnary(bool with_filter) {
    Nested nested(&depth_);
    G4_RETURN_IF_ERROR(CheckNesting());
    const int line = Cur().line;
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      bool neg = IsOp("-");
      Advance();
      G4_ASSIGN_OR_RETURN(ExprPtr inner, ParseUnary(false));
      node = NewExpr(neg ? Expr::Kind::kNeg : Expr::Kind::kPos, line);
      node->operand = std::move(inner);
    } else {
      G4_ASSIGN_OR_RETURN(node, ParsePrimary());
    }
    G4_ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
    if (with_filter) {
      G4_ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
    }
    return node;
  }

  absl::StatusOr<ExprPtr> ParsePrimary() {
    const Token& t = Cur();
    const int line = t.line;
    switch (t.type) {
      case TokenType::kName: {
        auto e = NewExpr(Expr::Kind::kLiteral, line);
        if (t.value == "true" || t.value == "True") {
          e->value = Value::Bool(true);
        } else if (t.value == "false" || t.value == "False") {
          e->value = Value::Bool(false);
        } else if (t.value == "none" || t.value == "None") {
          e->value = Value::None();
        } else {
          e->kind = Expr::Kind::kName;
          e->name = t.value;
        }
        Advance();
        return e;
      }
      case TokenType::kString: {
        std::string s = t.value;
        Advance();
        while (Cur().type == TokenType::kString) {  // implicit concatenation
          s += Cur().value;
          Advance();
        }
        auto e = NewExpr(Expr::Kind::kLiteral, line);
        e->value = Value::String(std::move(s));
        return e;
      }
      case TokenType::kInt: {
        auto e = NewExpr(Expr::Kind::kLiteral, line);
        e->value = Value::Int(std::strtoll(t.value.c_str(), nullptr, 10));
        Advance();
        return e;
      }
      case TokenType::kFloat: {
        auto e = NewExpr(Expr::Kind::kLiteral, line);
        e->value = Value::Float(std::strtod(t.value.c_str(), nullptr));
        Advance();
        return e;
      }
      case TokenType::kOperator:
        if (t.value == "(") {
          Advance();
          G4_ASSIGN_OR_RETURN(ExprPtr e, ParseTuple(true, /*explicit_parens=*/true));
          G4_RETURN_IF_ERROR(ExpectOp(")"));
          return e;
        }
        if (t.value == "[") {
          Advance();
          auto e = NewExpr(Expr::Kind::kList, line);
          while (!IsOp("]")) {
            if (!e->items.empty()) G4_RETURN_IF_ERROR(ExpectOp(","));
            if (IsOp("]")) break;
            G4_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(true));
            e->items.push_back(std::move(item));
          }
          Advance();
          return e;
        }
        if (t.value == "{") {
          Advance();
          auto e = NewExpr(Expr::Kind::kDict, line);
          while (!IsOp("}")) {
            if (!e->items.empty()) G4_RETURN_IF_ERROR(ExpectOp(","));
            if (IsOp("}")) break;
            G4_ASSIGN_OR_RETURN(ExprPtr key, ParseExpression(true));
            G4_RETURN_IF_ERROR(ExpectOp(":"));
            G4_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
            e->items.push_back(std::move(key));
            e->items.push_back(std::move(value));
          }
          Advance();
          return e;
        }
        break;
      default:
        break;
    }
    return Unexpected("an expression");
  }

  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr node) {
    int links = 0;
    while (true) {
      G4_RETURN_IF_ERROR(Link(&links));
      if (IsOp(".") || IsOp("[")) {
        G4_ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node)));
      } else if (IsOp("(")) {
        G4_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
      } else {
        return node;
      }
    }
  }

  absl::StatusOr<ExprPtr> ParseFilterExpr(ExprPtr node) {
    int links = 0;
    while (true) {
      G4_RETURN_IF_ERROR(Link(&links));
      if (IsOp("|")) {
        G4_ASSIGN_OR_RETURN(node, ParseFilterChain(std::move(node)));
      } else if (IsName("is")) {
        G4_ASSIGN_OR_RETURN(node, ParseTest(std::move(node)));
      } else if (IsOp("(")) {
        G4_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
      } else {
        return node;
      }
    }
  }

  absl::StatusOr<ExprPtr> ParseSubscript(ExprPtr node) {
    const int line = Cur().line;
    if (AcceptOp(".")) {
      if (Cur().type == TokenType::kInt) {
        auto e = NewExpr(Expr::Kind::kGetItem, line);
        e->operand = std::move(node);
        auto idx = NewExpr(Expr::Kind::kLiteral, line);
        idx->value = Value::Int(std::strtoll(Cur().value.c_str(), nullptr, 10));
        e->items.push_back(std::move(idx));
        Advance();
        return e;
      }
      G4_ASSIGN_OR_RETURN(std::string attr, ExpectName());
      auto e = NewExpr(Expr::Kind::kGetAttr, line);
      e->operand = std::move(node);
      e->name = attr;
      return e;
    }
    G4_RETURN_IF_ERROR(ExpectOp("["));
    // Subscript or slice.
    ExprPtr parts[3];
    int part = 0;
    bool is_slice = false;
    while (true) {
      if (IsOp(":")) {
        is_slice = true;
        if (++part > 2) return Error("too many ':' in slice");
        Advance();
        continue;
      }
      if (IsOp("]")) break;
      G4_ASSIGN_OR_RETURN(parts[part], ParseExpression(true));
      if (!is_slice && IsOp(",")) return Error("tuple subscripts are not supported");
    }
    Advance();
    if (!is_slice) {
      if (!parts[0]) return Error("empty subscript");
      auto e = NewExpr(Expr::Kind::kGetItem, line);
      e->operand = std::move(node);
      e->items.push_back(std::move(parts[0]));
      return e;
    }
    auto e = NewExpr(Expr::Kind::kSlice, line);
    e->operand = std::move(node);
    for (auto& p : parts) e->items.push_back(std::move(p));
    return e;
  }

  absl::Status ParseArgs(Expr& call) {
    G4_RETURN_IF_ERROR(ExpectOp("("));
    bool first = true;
    while (!IsOp(")")) {
      if (!first) G4_RETURN_IF_ERROR(ExpectOp(","));
      first = false;
      if (IsOp(")")) break;
      if (Cur().type == TokenType::kName && Peek().type == TokenType::kOperator &&
          Peek().value == "=") {
        std::string key = Cur().value;
        Advance();
        Advance();
        G4_ASSIGN_OR_RETURN(ExprPtr v, ParseExpression(true));
        call.kwargs.emplace_back(key, std::move(v));
      } else {
        if (!call.kwargs.empty()) return Error("positional argument after keyword argument");
        G4_ASSIGN_OR_RETURN(ExprPtr v, ParseExpression(true));
        call.items.push_back(std::move(v));
      }
    }
    Advance();
    return absl::OkStatus();
  }

  absl::StatusOr<ExprPtr> ParseCall(ExprPtr node) {
    auto e = NewExpr(Expr::Kind::kCall, Cur().line);
    e->operand = std::move(node);
    G4_RETURN_IF_ERROR(ParseArgs(*e));
    return e;
  }

  absl::StatusOr<std::string> ParseDottedName() {
    G4_ASSIGN_OR_RETURN(std::string n, ExpectName());
    while (IsOp(".") && Peek().type == TokenType::kName) {
      Advance();
      n += "." + Cur().value;
      Advance();
    }
    return n;
  }

  // Parses `| f(args) | g ...` applied to `node` (node may be null for filter blocks).
  absl::StatusOr<ExprPtr> ParseFilterChain(ExprPtr node, bool leading_pipe = true) {
    bool first = true;
    int links = 0;
    while ((first && !leading_pipe) || IsOp("|")) {
      G4_RETURN_IF_ERROR(Link(&links));
      if (!(first && !leading_pipe)) Advance();
      first = false;
      const int line = Cur().line;
      auto e = NewExpr(Expr::Kind::kFilter, line);
      G4_ASSIGN_OR_RETURN(e->name, ParseDottedName());
      if (IsOp("(")) G4_RETURN_IF_ERROR(ParseArgs(*e));
      e->operand = std::move(node);
      node = std::move(e);
      if (!leading_pipe && !IsOp("|")) break;
    }
    return node;
  }

  absl::StatusOr<ExprPtr> ParseTest(ExprPtr node) {
    const int line = Cur().line;
    Advance();  // 'is'
    auto e = NewExpr(Expr::Kind::kTest, line);
    e->negated = AcceptName("not");
    G4_ASSIGN_OR_RETURN(e->name, ParseDottedName());
    if (IsOp("(")) {
      G4_RETURN_IF_ERROR(ParseArgs(*e));
    } else {
      const Token& t = Cur();
      bool arg_start =
          t.type == TokenType::kName || t.type == TokenType::kString ||
          t.type == TokenType::kInt || t.type == TokenType::kFloat ||
          (t.type == TokenType::kOperator && (t.value == "(" || t.value == "[" || t.value == "{"));
      if (arg_start && !(t.type == TokenType::kName &&
                         (t.value == "else" || t.value == "or" || t.value == "and"))) {
        if (IsName("is")) return Error("You cannot chain multiple tests with is");
        G4_ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
        G4_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
        e->items.push_back(std::move(arg));
      }
    }
    e->operand = std::move(node);
    return e;
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;  // statements and expressions being parsed (Nested)
};

}  // namespace

absl::StatusOr<std::unique_ptr<TemplateAst>> ParseTemplate(std::string_view source,
                                                        const LexerOptions& options) {
  G4_ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(source, options));
  Parser parser(std::move(tokens));
  return parser.Run();
}

}  // namespace g4::jinja
