#include "common/grammar/json_grammar.h"

#include <array>
#include <cctype>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/grammar/json_schema.h"
#include "common/status_macros.h"

namespace g4::grammar {
namespace {

using Json = nlohmann::json;

enum class Dialect { kJson, kGemma };

constexpr int kMaxIntegerDigits = 15;
constexpr int kMaxFractionDigits = 15;
constexpr int kMaxExponentDigits = 2;

// JSON string literal (UTF-8 kept) with every "<" written as \u003c.
std::string JsonStringLiteral(const std::string& s) {
  return absl::StrReplaceAll(Json(s).dump(-1, ' ', false, Json::error_handler_t::replace),
                             {{"<", "\\u003c"}});
}

// A bare key the Gemma argument parser reads back unchanged.
bool IsBareKey(const std::string& key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (c == ':' || c == ',' || c == '{' || c == '}' || c == '[' || c == ']' || c == '"' ||
        c == '<' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      return false;
    }
  }
  // Not something the parser would read as another value kind.
  return true;
}

// Whether `s` can sit verbatim between <|"|> markers (see the "<" rule in the header).
bool SafeGemmaString(const std::string& s) {
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] == '<' && (s[i + 1] == '|' || s[i + 1] == 'c' || s[i + 1] == 't' || s[i + 1] == 'e')) {
      return false;
    }
  }
  return true;
}

// Text pieces: literal bytes or a marker (special token when the vocabulary has it).
struct Piece {
  bool marker;
  std::string text;
};

class GrammarWriter {
 public:
  explicit GrammarWriter(GrammarBuilder* b) : b_(*b) {}

  // The rule matching values of `schema` node `i`.
  absl::StatusOr<int32_t> ValueRule(const JsonSchema& schema, int32_t i, Dialect d) {
    const int32_t resolved = schema.Resolve(i);
    if (schema.node(resolved).ref >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(schema.node(i).path, ": $ref cycle that never reaches a schema"));
    }
    const auto key = std::make_tuple(&schema, resolved, d);
    if (auto it = value_rules_.find(key); it != value_rules_.end()) return it->second;
    const SchemaNode& n = schema.node(resolved);
    const int32_t rule = b_.AddRule(n.path);
    value_rules_[key] = rule;  // before the body: recursive $refs call this rule
    const int32_t start = b_.start(rule);
    const int32_t end = b_.AddNode(rule);
    b_.SetAccepting(end);
    if (!n.any_of.empty()) {
      for (int32_t alt : n.any_of) {
        G4_ASSIGN_OR_RETURN(int32_t r, ValueRule(schema, alt, d));
        b_.AddCall(start, r, end);
      }
      return rule;
    }
    if (n.literals.has_value()) {
      for (const Json& v : *n.literals) {
        std::vector<Piece> pieces;
        Literal(v, d, &pieces);
        Emit(start, pieces, end);
      }
      return rule;
    }
    if (n.types & kTypeNull) b_.AddLiteral(start, "null", end);
    if (n.types & kTypeBoolean) {
      b_.AddLiteral(start, "true", end);
      b_.AddLiteral(start, "false", end);
    }
    if (n.types & kTypeNumber) {
      b_.AddCall(start, NumberRule(), end);
    } else if (n.types & kTypeInteger) {
      const int64_t max = 999'999'999'999'999;
      b_.AddCall(start, IntegerRule(n.minimum.value_or(-max), n.maximum.value_or(max)), end);
    }
    if (n.types & kTypeString) b_.AddCall(start, StringRule(n.min_length, n.max_length, d), end);
    if (n.types & kTypeObject) G4_RETURN_IF_ERROR(Object(schema, n, d, start, end));
    if (n.types & kTypeArray) {
      int32_t items = -1;
      if (n.items >= 0) {
        G4_ASSIGN_OR_RETURN(items, ValueRule(schema, n.items, d));
      } else {
        items = AnyValueRule(d);
      }
      Array(items, n.min_items, n.max_items, d, start, end);
    }
    return rule;
  }

  // An object of `schema` node `i` only (tool arguments); InvalidArgument when the node does
  // not describe objects.
  absl::StatusOr<int32_t> ObjectRule(const JsonSchema& schema, int32_t i, Dialect d) {
    const int32_t resolved = schema.Resolve(i);
    const SchemaNode& n = schema.node(resolved);
    if (n.ref >= 0 || !n.any_of.empty() || n.literals.has_value() ||
        (n.types & kTypeObject) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(n.path, ": must describe an object (\"type\": \"object\")"));
    }
    const int32_t rule = b_.AddRule(n.path + " (object)");
    const int32_t end = b_.AddNode(rule);
    b_.SetAccepting(end);
    G4_RETURN_IF_ERROR(Object(schema, n, d, b_.start(rule), end));
    return rule;
  }

  // Set when an unrolled repetition would exceed kMaxGrammarNodes (it was left out).
  bool too_large() const { return too_large_; }

  int32_t AnyObjectRule(Dialect d) {
    auto it = any_object_.find(d);
    if (it != any_object_.end()) return it->second;
    const int32_t rule = b_.AddRule("object");
    any_object_[d] = rule;
    const int32_t end = b_.AddNode(rule);
    b_.SetAccepting(end);
    GenericObject(d, b_.start(rule), end);
    return rule;
  }

  int32_t AnyValueRule(Dialect d) {
    auto it = any_value_.find(d);
    if (it != any_value_.end()) return it->second;
    const int32_t rule = b_.AddRule("value");
    any_value_[d] = rule;
    const int32_t start = b_.start(rule);
    const int32_t end = b_.AddNode(rule);
    b_.SetAccepting(end);
    b_.AddLiteral(start, "null", end);
    b_.AddLiteral(start, "true", end);
    b_.AddLiteral(start, "false", end);
    b_.AddCall(start, NumberRule(), end);
    b_.AddCall(start, StringRule(0, std::nullopt, d), end);
    b_.AddCall(start, AnyObjectRule(d), end);
    Array(rule, 0, std::nullopt, d, start, end);
    return rule;
  }

  void Emit(int32_t from, const std::vector<Piece>& pieces, int32_t to) {
    int32_t at = from;
    for (size_t i = 0; i < pieces.size(); ++i) {
      const int32_t next = i + 1 == pieces.size() ? to : b_.AddNode(b_.rule_of(from));
      if (pieces[i].marker) {
        b_.AddMarker(at, pieces[i].text, next);
      } else {
        b_.AddLiteral(at, pieces[i].text, next);
      }
      at = next;
    }
    if (pieces.empty()) b_.AddEpsilon(from, to);
  }

  void Literal(const Json& v, Dialect d, std::vector<Piece>* out) {
    auto text = [&](std::string s) {
      if (!out->empty() && !out->back().marker) {
        out->back().text += s;
      } else {
        out->push_back({false, std::move(s)});
      }
    };
    const char* sep = d == Dialect::kJson ? ", " : ",";
    const char* colon = d == Dialect::kJson ? ": " : ":";
    if (v.is_object()) {
      text("{");
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) text(sep);
        first = false;
        text((d == Dialect::kGemma && IsBareKey(it.key())) ? it.key()
                                                            : JsonStringLiteral(it.key()));
        text(colon);
        Literal(*it, d, out);
      }
      text("}");
    } else if (v.is_array()) {
      text("[");
      for (size_t i = 0; i < v.size(); ++i) {
        if (i > 0) text(sep);
        Literal(v[i], d, out);
      }
      text("]");
    } else if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      if (d == Dialect::kGemma && SafeGemmaString(s)) {
        out->push_back({true, kGemmaQuote});
        text(s);
        out->push_back({true, kGemmaQuote});
      } else {
        text(JsonStringLiteral(s));
      }
    } else {
      text(v.dump());
    }
  }

 private:
  // -?(0|[1-9][0-9]{0,14})(\.[0-9]{1,15})?([eE][+-]?[0-9]{1,2})?
  int32_t NumberRule() {
    if (number_rule_ >= 0) return number_rule_;
    const int32_t rule = number_rule_ = b_.AddRule("number");
    auto node = [&] { return b_.AddNode(rule); };
    const int32_t start = b_.start(rule);
    const int32_t sign = node();
    b_.AddByte(start, '-', sign);
    b_.AddEpsilon(start, sign);
    const int32_t int_end = node();  // after the integer part
    b_.SetAccepting(int_end);
    b_.AddByte(sign, '0', int_end);
    int32_t digits = node();
    b_.AddBytes(sign, '1', '9', digits);
    for (int k = 1; k < kMaxIntegerDigits; ++k) {
      b_.AddEpsilon(digits, int_end);
      const int32_t next = node();
      b_.AddBytes(digits, '0', '9', next);
      digits = next;
    }
    b_.AddEpsilon(digits, int_end);
    const int32_t frac_end = node();
    b_.SetAccepting(frac_end);
    int32_t frac = node();
    b_.AddByte(int_end, '.', frac);
    for (int k = 0; k < kMaxFractionDigits; ++k) {
      const int32_t next = node();
      b_.AddBytes(frac, '0', '9', next);
      b_.AddEpsilon(next, frac_end);
      frac = next;
    }
    const int32_t exp = node(), exp_sign = node();
    b_.AddBytes(int_end, 'E', 'E', exp);
    b_.AddBytes(int_end, 'e', 'e', exp);
    b_.AddBytes(frac_end, 'E', 'E', exp);
    b_.AddBytes(frac_end, 'e', 'e', exp);
    b_.AddByte(exp, '+', exp_sign);
    b_.AddByte(exp, '-', exp_sign);
    b_.AddEpsilon(exp, exp_sign);
    int32_t e = exp_sign;
    for (int k = 0; k < kMaxExponentDigits; ++k) {
      const int32_t next = node();
      b_.AddBytes(e, '0', '9', next);
      b_.SetAccepting(next);
      e = next;
    }
    return rule;
  }

  // Decimal integers in [lo, hi], canonical (no leading zeros, no "-0").
  int32_t IntegerRule(int64_t lo, int64_t hi) {
    const auto key = std::make_pair(lo, hi);
    if (auto it = integer_rules_.find(key); it != integer_rules_.end()) return it->second;
    const int32_t rule = b_.AddRule(absl::StrCat("integer[", lo, ",", hi, "]"));
    integer_rules_[key] = rule;
    const int32_t start = b_.start(rule);
    const int32_t end = b_.AddNode(rule);
    b_.SetAccepting(end);
    if (lo <= std::min<int64_t>(hi, -1)) {
      const int32_t neg = b_.AddNode(rule);
      b_.AddByte(start, '-', neg);
      NonNegativeRange(rule, neg, std::max<int64_t>(1, -std::min<int64_t>(hi, -1)), -lo, end);
    }
    if (hi >= 0) NonNegativeRange(rule, start, std::max<int64_t>(lo, 0), hi, end);
    return rule;
  }

  void NonNegativeRange(int32_t rule, int32_t from, int64_t a, int64_t b, int32_t end) {
    if (a > b) return;
    const int len_a = static_cast<int>(std::to_string(a).size());
    const int len_b = static_cast<int>(std::to_string(b).size());
    int64_t pow = 1;
    for (int k = 1; k < len_a; ++k) pow *= 10;
    for (int len = len_a; len <= len_b; ++len, pow *= 10) {
      const int64_t lo = std::max(a, len == 1 ? 0 : pow);
      const int64_t hi = std::min(b, pow * 10 - 1);
      if (lo > hi) continue;
      FixedLengthRange(rule, from, std::to_string(lo), std::to_string(hi), end);
    }
  }

  // Digit strings of one length between x and y (same length).
  void FixedLengthRange(int32_t rule, int32_t from, const std::string& x, const std::string& y,
                        int32_t end) {
    const int len = static_cast<int>(x.size());
    std::map<std::tuple<int, bool, bool>, int32_t> nodes;
    std::vector<std::tuple<int32_t, int, bool, bool>> todo = {{from, 0, true, true}};
    while (!todo.empty()) {
      auto [node, i, tl, th] = todo.back();
      todo.pop_back();
      const char lo = tl ? x[i] : '0';
      const char hi = th ? y[i] : '9';
      int32_t run_target = -1;
      char run_lo = 0;
      for (char c = lo; c <= hi + 1; ++c) {
        int32_t target = -1;
        if (c <= hi) {
          const bool ntl = tl && c == x[i];
          const bool nth = th && c == y[i];
          if (i + 1 == len) {
            target = end;
          } else {
            auto [it, inserted] = nodes.try_emplace({i + 1, ntl, nth}, -1);
            if (inserted) {
              it->second = b_.AddNode(rule);
              todo.push_back({it->second, i + 1, ntl, nth});
            }
            target = it->second;
          }
        }
        if (target != run_target) {
          if (run_target >= 0) b_.AddBytes(node, run_lo, c - 1, run_target);
          run_target = target;
          run_lo = c;
        }
      }
    }
  }

  // Strings of [min, max] code points (max unset: unbounded), see the header for the alphabet.
  int32_t StringRule(int64_t min, std::optional<int64_t> max, Dialect d) {
    const auto key = std::make_tuple(min, max.value_or(-1), d);
    if (auto it = string_rules_.find(key); it != string_rules_.end()) return it->second;
    const int32_t rule = b_.AddRule(absl::StrCat("string[", min, ",",
                                                 max.has_value() ? absl::StrCat(*max) : "inf", "]"));
    string_rules_[key] = rule;
    const int32_t start = b_.start(rule);
    const int32_t end = b_.AddNode(rule);
    b_.SetAccepting(end);
    const bool json = d == Dialect::kJson;
    const int64_t last = max.has_value() ? *max : min;  // positions 0..last
    if (b_.num_nodes() + (last + 1) * 16 > kMaxGrammarNodes) {
      too_large_ = true;
      return rule;
    }
    std::vector<int32_t> plain(last + 1), after_lt(last + 1);
    const int32_t classes = b_.NewMaskClasses(kCharacterRoles);
    constexpr int64_t kUnbounded = std::numeric_limits<int32_t>::max();
    // Position k still requires max(0, min - k) characters and allows max - k more.
    auto bounds = [&](int64_t k) {
      return std::make_pair(std::max<int64_t>(0, min - k),
                            max.has_value() ? *max - k : kUnbounded);
    };
    for (int64_t k = 0; k <= last; ++k) {
      plain[k] = b_.AddNode(rule);
      after_lt[k] = b_.AddNode(rule);
      const auto [rmin, rmax] = bounds(k);
      b_.SetMaskClass(plain[k], classes, rmin, rmax);
      b_.SetMaskClass(after_lt[k], classes + 1, rmin, rmax);
    }
    if (json) {
      b_.AddByte(start, '"', plain[0]);
    } else {
      b_.AddMarker(start, kGemmaQuote, plain[0]);
    }
    for (int64_t k = 0; k <= last; ++k) {
      if (k >= min) {
        for (int32_t from : {plain[k], after_lt[k]}) {
          if (json) {
            b_.AddByte(from, '"', end);
          } else {
            b_.AddMarker(from, kGemmaQuote, end);
          }
        }
      }
      const int64_t next = k < last ? k + 1 : (max.has_value() ? -1 : last);
      if (next < 0) continue;
      const int32_t first = b_.num_nodes();
      Character(rule, plain[k], after_lt[k], plain[next], after_lt[next], json);
      // The character's intermediate nodes, in creation order, are roles 2, 3, ...
      const auto [rmin, rmax] = bounds(k);
      for (int32_t node = first; node < b_.num_nodes(); ++node) {
        b_.SetMaskClass(node, classes + 2 + (node - first), rmin, rmax);
      }
    }
    return rule;
  }

  // Nodes of a string position: plain, after "<", and Character's 7 UTF-8 + 6 escape nodes.
  static constexpr int32_t kCharacterRoles = 2 + 13;

  // One character from `from` (or `from_lt`, after a "<") to `to` (or `to_lt` for "<").
  void Character(int32_t rule, int32_t from, int32_t from_lt, int32_t to, int32_t to_lt,
                 bool json) {
    for (int32_t src : {from, from_lt}) {
      const bool after_lt = src == from_lt;
      int32_t run_target = -1;
      int run_lo = 0;
      for (int c = 0; c <= 0x80; ++c) {
        int32_t target = -1;
        if (c < 0x80) {
          bool ok = c >= 0x20 || (!json && (c == '\t' || c == '\n' || c == '\r'));
          if (json && (c == '"' || c == '\\')) ok = false;
          if (after_lt && (c == '|' || c == 'c' || c == 't' || c == 'e')) ok = false;
          if (ok) target = c == '<' ? to_lt : to;
        }
        if (target != run_target) {
          if (run_target >= 0) {
            b_.AddBytes(src, static_cast<uint8_t>(run_lo), static_cast<uint8_t>(c - 1),
                        run_target);
          }
          run_target = target;
          run_lo = c;
        }
      }
    }
    // Multi-byte UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
    auto node = [&] { return b_.AddNode(rule); };
    const int32_t c1 = node(), c2 = node(), c3 = node();
    b_.AddBytes(c1, 0x80, 0xBF, to);
    b_.AddBytes(c2, 0x80, 0xBF, c1);
    b_.AddBytes(c3, 0x80, 0xBF, c2);
    const int32_t e0 = node(), ed = node(), f0 = node(), f4 = node();
    b_.AddBytes(e0, 0xA0, 0xBF, c1);
    b_.AddBytes(ed, 0x80, 0x9F, c1);
    b_.AddBytes(f0, 0x90, 0xBF, c2);
    b_.AddBytes(f4, 0x80, 0x8F, c2);
    int32_t esc = -1;
    if (json) {
      esc = node();
      const int32_t u1 = node(), ud = node(), u2 = node(), u3 = node(), u4 = node();
      for (char c : std::string("\"\\/bfnrt")) b_.AddByte(esc, c, to);
      b_.AddByte(esc, 'u', u1);
      auto hex = [&](int32_t from_node, int32_t to_node) {
        b_.AddBytes(from_node, '0', '9', to_node);
        b_.AddBytes(from_node, 'A', 'F', to_node);
        b_.AddBytes(from_node, 'a', 'f', to_node);
      };
      b_.AddBytes(u1, '0', '9', u2);
      b_.AddBytes(u1, 'A', 'C', u2);
      b_.AddBytes(u1, 'a', 'c', u2);
      b_.AddBytes(u1, 'E', 'F', u2);
      b_.AddBytes(u1, 'e', 'f', u2);
      b_.AddByte(u1, 'D', ud);
      b_.AddByte(u1, 'd', ud);
      b_.AddBytes(ud, '0', '7', u3);
      hex(u2, u3);
      hex(u3, u4);
      hex(u4, to);
    }
    for (int32_t src : {from, from_lt}) {
      b_.AddBytes(src, 0xC2, 0xDF, c1);
      b_.AddByte(src, 0xE0, e0);
      b_.AddBytes(src, 0xE1, 0xEC, c2);
      b_.AddByte(src, 0xED, ed);
      b_.AddBytes(src, 0xEE, 0xEF, c2);
      b_.AddByte(src, 0xF0, f0);
      b_.AddBytes(src, 0xF1, 0xF3, c3);
      b_.AddByte(src, 0xF4, f4);
      if (esc >= 0) b_.AddByte(src, '\\', esc);
    }
  }

  // Object members in schema order; optional ones may be skipped. State (i, any): before
  // property i, whether a member was written (the next one needs a separator).
  absl::Status Object(const JsonSchema& schema, const SchemaNode& n, Dialect d, int32_t start,
                      int32_t end) {
    if (!n.has_properties) {
      if (n.additional_properties) {
        b_.AddCall(start, AnyObjectRule(d), end);
      } else {
        b_.AddLiteral(start, "{}", end);
      }
      return absl::OkStatus();
    }
    const int32_t rule = b_.rule_of(start);
    const bool json = d == Dialect::kJson;
    const size_t count = n.properties.size();
    std::vector<std::array<int32_t, 2>> state(count + 1);
    for (auto& s : state) s = {b_.AddNode(rule), b_.AddNode(rule)};
    b_.AddByte(start, '{', state[0][0]);
    for (size_t i = 0; i < count; ++i) {
      const auto& [key, child] = n.properties[i];
      bool required = false;
      for (const std::string& r : n.required) required |= r == key;
      if (!required) {
        b_.AddEpsilon(state[i][0], state[i + 1][0]);
        b_.AddEpsilon(state[i][1], state[i + 1][1]);
      }
      if (child < 0) continue;  // `false`: never written
      G4_ASSIGN_OR_RETURN(int32_t value, ValueRule(schema, child, d));
      const std::string key_text =
          absl::StrCat((!json && IsBareKey(key)) ? key : JsonStringLiteral(key), json ? ": " : ":");
      for (int any = 0; any < 2; ++any) {
        const int32_t before_value = b_.AddNode(rule);
        b_.AddLiteral(state[i][any], absl::StrCat(any ? (json ? ", " : ",") : "", key_text),
                      before_value);
        b_.AddCall(before_value, value, state[i + 1][1]);
      }
    }
    b_.AddByte(state[count][0], '}', end);
    b_.AddByte(state[count][1], '}', end);
    return absl::OkStatus();
  }

  // {} or {member, member, ...} with any keys and values.
  void GenericObject(Dialect d, int32_t start, int32_t end) {
    const int32_t rule = b_.rule_of(start);
    const bool json = d == Dialect::kJson;
    const int32_t open = b_.AddNode(rule), member = b_.AddNode(rule), key_done = b_.AddNode(rule),
                  value_start = b_.AddNode(rule), after = b_.AddNode(rule);
    b_.AddByte(start, '{', open);
    b_.AddByte(open, '}', end);
    b_.AddEpsilon(open, member);
    if (json) {
      b_.AddCall(member, StringRule(0, std::nullopt, d), key_done);
      b_.AddLiteral(key_done, ": ", value_start);
    } else {
      // Bare keys [A-Za-z0-9_-]+.
      const int32_t more = b_.AddNode(rule);
      for (int32_t src : {member, more}) {
        b_.AddBytes(src, 'a', 'z', more);
        b_.AddBytes(src, 'A', 'Z', more);
        b_.AddBytes(src, '0', '9', more);
        b_.AddByte(src, '_', more);
        b_.AddByte(src, '-', more);
      }
      b_.AddEpsilon(more, key_done);
      b_.AddByte(key_done, ':', value_start);
    }
    b_.AddCall(value_start, AnyValueRule(d), after);
    b_.AddLiteral(after, json ? ", " : ",", member);
    b_.AddByte(after, '}', end);
  }

  // [item, item, ...] with [min, max] items (max unset: unbounded).
  void Array(int32_t items, int64_t min, std::optional<int64_t> max, Dialect d, int32_t start,
             int32_t end) {
    const int32_t rule = b_.rule_of(start);
    const char* sep = d == Dialect::kJson ? ", " : ",";
    const int32_t open = b_.AddNode(rule);
    b_.AddByte(start, '[', open);
    if (min == 0) b_.AddByte(open, ']', end);
    if (max.has_value() && *max == 0) return;
    // after[k]: k >= 1 items written.
    const int64_t last = max.has_value() ? *max : std::max<int64_t>(min, 1);
    if (b_.num_nodes() + last * 2 > kMaxGrammarNodes) {
      too_large_ = true;
      return;
    }
    std::vector<int32_t> after(last + 1, -1);
    for (int64_t k = 1; k <= last; ++k) after[k] = b_.AddNode(rule);
    b_.AddCall(open, items, after[1]);
    for (int64_t k = 1; k <= last; ++k) {
      if (k >= min) b_.AddByte(after[k], ']', end);
      const int64_t next = k < last ? k + 1 : (max.has_value() ? -1 : last);
      if (next < 0) continue;
      const int32_t sep_done = b_.AddNode(rule);
      b_.AddLiteral(after[k], sep, sep_done);
      b_.AddCall(sep_done, items, after[next]);
    }
  }

  GrammarBuilder& b_;
  std::map<std::tuple<const JsonSchema*, int32_t, Dialect>, int32_t> value_rules_;
  std::map<std::tuple<int64_t, int64_t, Dialect>, int32_t> string_rules_;
  std::map<std::pair<int64_t, int64_t>, int32_t> integer_rules_;
  std::map<Dialect, int32_t> any_object_, any_value_;
  int32_t number_rule_ = -1;
  bool too_large_ = false;
};

}  // namespace

absl::Status RenameGrammarFields(const absl::Status& status, const GrammarFieldNames& names) {
  if (status.ok()) return status;
  std::string m(status.message());
  if (absl::StartsWith(m, "schema: ")) {
    m = absl::StrCat(names.schema, ": ", m.substr(8));
  } else if (absl::StartsWith(m, "tools[")) {
    const size_t close = m.find(']');
    const size_t index = std::stoul(m.substr(6, close - 6));
    std::string rest = m.substr(close + 1);
    if (absl::StartsWith(rest, ".parameters")) {
      rest = absl::StrCat(".", names.parameters, rest.substr(11));
    } else if (absl::StartsWith(rest, ".name")) {
      rest = absl::StrCat(".", names.name, rest.substr(5));
    }
    m = absl::StrCat(names.tool(index), rest);
  } else if (absl::StartsWith(m, "tools: ")) {
    m = absl::StrCat(names.tools, ": ", m.substr(7));
  }
  return absl::Status(status.code(), m);
}

bool IsValidToolName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) {
      return false;
    }
  }
  return true;
}

std::string StructuredOutputSpec::CacheKey() const {
  std::string key;
  switch (kind) {
    case Kind::kJsonSchema:
      key = absl::StrCat("schema\x1f",
                         schema.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
      break;
    case Kind::kJsonObject:
      key = "object";
      break;
    case Kind::kToolCalls:
      key = absl::StrCat("tools\x1f", allow_multiple_calls ? "n" : "1");
      for (const ToolSpec& t : tools) {
        absl::StrAppend(&key, "\x1f", t.name, "\x1e",
                        t.parameters.dump(-1, ' ', false,
                                          nlohmann::ordered_json::error_handler_t::replace));
      }
      break;
  }
  return key;
}

absl::StatusOr<Grammar> BuildGrammar(const StructuredOutputSpec& spec,
                                     const absl::flat_hash_set<std::string>& special_tokens) {
  GrammarBuilder builder(special_tokens);
  GrammarWriter writer(&builder);
  int32_t root = -1;
  // Parsed schemas must outlive the writer's memo (keyed by their address).
  std::vector<std::unique_ptr<JsonSchema>> schemas;
  switch (spec.kind) {
    case StructuredOutputSpec::Kind::kJsonSchema: {
      absl::StatusOr<JsonSchema> schema = JsonSchema::Parse(spec.schema);
      if (!schema.ok()) return Annotate(schema.status(), "schema");
      schemas.push_back(std::make_unique<JsonSchema>(*std::move(schema)));
      absl::StatusOr<int32_t> rule = writer.ValueRule(*schemas.back(), 0, Dialect::kJson);
      if (!rule.ok()) return Annotate(rule.status(), "schema");
      root = *rule;
      break;
    }
    case StructuredOutputSpec::Kind::kJsonObject:
      root = writer.AnyObjectRule(Dialect::kJson);
      break;
    case StructuredOutputSpec::Kind::kToolCalls: {
      if (spec.tools.empty()) return absl::InvalidArgumentError("tools: no tool to call");
      root = builder.AddRule("tool_calls");
      const int32_t start = builder.start(root);
      const int32_t open = builder.AddNode(root), name = builder.AddNode(root),
                    args_done = builder.AddNode(root), end = builder.AddNode(root);
      builder.SetAccepting(end);
      builder.AddMarker(start, kToolCallOpen, open);
      builder.AddLiteral(open, "call:", name);
      for (size_t i = 0; i < spec.tools.size(); ++i) {
        const ToolSpec& tool = spec.tools[i];
        const std::string field = absl::StrCat("tools[", i, "]");
        if (!IsValidToolName(tool.name)) {
          return absl::InvalidArgumentError(absl::StrCat(
              field, ".name: \"", tool.name, "\" is not a valid function name ([A-Za-z0-9_.-]+)"));
        }
        int32_t args = -1;
        if (tool.parameters.is_null()) {
          args = writer.AnyObjectRule(Dialect::kGemma);
        } else {
          absl::StatusOr<JsonSchema> schema = JsonSchema::Parse(tool.parameters);
          if (!schema.ok()) return Annotate(schema.status(), field + ".parameters");
          schemas.push_back(std::make_unique<JsonSchema>(*std::move(schema)));
          absl::StatusOr<int32_t> rule = writer.ObjectRule(*schemas.back(), 0, Dialect::kGemma);
          if (!rule.ok()) return Annotate(rule.status(), field + ".parameters");
          args = *rule;
        }
        const int32_t named = builder.AddNode(root);
        builder.AddLiteral(name, tool.name, named);
        builder.AddCall(named, args, args_done);
      }
      builder.AddMarker(args_done, kToolCallClose, end);
      if (spec.allow_multiple_calls) builder.AddMarker(end, kToolCallOpen, open);
      break;
    }
  }
  if (writer.too_large() || builder.num_nodes() > kMaxGrammarNodes) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.kind == StructuredOutputSpec::Kind::kToolCalls ? "tools" : "schema",
        ": too large: more than ", kMaxGrammarNodes,
        " automaton states (lower maxLength / maxItems or simplify the schema)"));
  }
  absl::StatusOr<Grammar> grammar = std::move(builder).Build(root);
  if (!grammar.ok() && spec.kind == StructuredOutputSpec::Kind::kJsonSchema) {
    return Annotate(grammar.status(), "schema");
  }
  return grammar;
}

}  // namespace g4::grammar
