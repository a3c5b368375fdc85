#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/jinja/interpreter.h"
#include "common/jinja/lexer.h"
#include "common/jinja/value.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/run_with_stack.h"

namespace g4::jinja {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;

absl::StatusOr<std::string> RenderStr(const std::string& src, const Json& ctx = Json::object()) {
  auto t = Template::Parse(src);
  if (!t.ok()) return t.status();
  return t->Render(Value::FromJson(ctx));
}

std::string MustRender(const std::string& src, const Json& ctx = Json::object()) {
  auto r = RenderStr(src, ctx);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : "";
}

// Every case in jinja_features.jsonl was rendered by Python jinja2 configured like transformers
// (tools/chat_template/gen_cases.py).
TEST(JinjaGoldenTest, FeaturesMatchJinja2) {
  std::ifstream in("tests/data/chat_templates/jinja_features.jsonl");
  ASSERT_TRUE(in) << "run from the repository root";
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    Json c = Json::parse(line);
    SCOPED_TRACE(c["name"].get<std::string>());
    auto r = RenderStr(c["template"].get<std::string>(), c["context"]);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, c["rendered"].get<std::string>());
    ++n;
  }
  EXPECT_GE(n, 50);
}

TEST(LexerTest, TrimBlocksAndLstrip) {
  EXPECT_EQ(MustRender("{% if true %}\nA\n{% endif %}\nB"), "A\nB");
  EXPECT_EQ(MustRender("  {% if true %}\n  A\n  {% endif %}\n"), "  A\n");
  EXPECT_EQ(MustRender("x  {% if true %}y{% endif %}"), "x  y");  // not at line start
  EXPECT_EQ(MustRender("  {{ 'v' }}"), "  v");                    // lstrip only for blocks
  EXPECT_EQ(MustRender("a\n\n"), "a\n");                           // one trailing newline dropped
}

TEST(LexerTest, DashAndPlusMarkers) {
  EXPECT_EQ(MustRender("a \n {%- if true -%} \n b {%- endif %}"), "ab");
  EXPECT_EQ(MustRender("a {{- 1 -}} b"), "a1b");
  EXPECT_EQ(MustRender("  {%+ if true %}x{% endif %}"), "  x");
  EXPECT_EQ(MustRender("{% if true +%}\nx{% endif %}"), "\nx");
  EXPECT_EQ(MustRender("a {#- c -#} b"), "ab");
}

TEST(LexerTest, TokensCarryLines) {
  auto toks = Tokenize("a\n{{ x }}\n{% if y %}");
  ASSERT_TRUE(toks.ok());
  bool saw_y = false;
  for (const Token& t : *toks) {
    if (t.type == TokenType::kName && t.value == "y") {
      EXPECT_EQ(t.line, 3);
      saw_y = true;
    }
  }
  EXPECT_TRUE(saw_y);
}

TEST(InterpreterTest, LoopsAndScopes) {
  EXPECT_EQ(MustRender("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{{ ',' if not loop.last }}"
                       "{% endfor %}"),
            "3,7");
  EXPECT_EQ(MustRender("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(MustRender("{% set ns = namespace(x=1) %}{% for i in [1] %}{% set ns.x = 2 %}"
                       "{% endfor %}{{ ns.x }}"),
            "2");
  EXPECT_EQ(MustRender("{% for k, v in {'b': 1, 'a': 2}.items() %}{{ k }}{{ v }}{% endfor %}"),
            "b1a2");
}

TEST(InterpreterTest, MacrosWithRecursionAndDefaults) {
  const std::string src =
      "{% macro fmt(v, q=True) %}{% if v is mapping %}{{ '{' }}{% for k, x in v | dictsort %}"
      "{{ k }}:{{ fmt(x, q=q) }}{% if not loop.last %},{% endif %}{% endfor %}{{ '}' }}"
      "{% elif v is string %}{{ '\"' + v + '\"' if q else v }}{% else %}{{ v }}{% endif %}"
      "{% endmacro %}{{ fmt(d) }}|{{ fmt(d, q=False) }}";
  EXPECT_EQ(MustRender(src, Json{{"d", {{"b", {{"c", "x"}}}, {"a", 1}}}}),
            "{a:1,b:{c:\"x\"}}|{a:1,b:{c:x}}");
}

TEST(InterpreterTest, PythonValueFormatting) {
  EXPECT_EQ(MustRender("{{ none }}|{{ true }}|{{ 1.0 }}|{{ 10 / 4 }}|{{ [1, 'a'] }}"),
            "None|True|1.0|2.5|[1, 'a']");
  EXPECT_EQ(FormatPythonFloat(1e16), "1e+16");
  EXPECT_EQ(FormatPythonFloat(123456789012345.0), "123456789012345.0");
  EXPECT_EQ(FormatPythonFloat(0.0001), "0.0001");
  EXPECT_EQ(FormatPythonFloat(0.00001), "1e-05");
  EXPECT_EQ(FormatPythonFloat(-2.5e-7), "-2.5e-07");
}

TEST(InterpreterTest, FiltersAndTests) {
  EXPECT_EQ(MustRender("{{ ['a','b'] | map('upper') | list }}"), "['A', 'B']");
  EXPECT_EQ(MustRender("{{ x | default('d') }}{{ 'STRING' == ('string' | upper) }}"), "dTrue");
  EXPECT_EQ(MustRender("{{ {'a': 1} | tojson }}"), "{\"a\": 1}");
  EXPECT_EQ(MustRender("{{ 1 is number and 'x' is not number and none is none }}"), "True");
}

TEST(InterpreterErrorTest, SyntaxErrorsNameTheLine) {
  auto r = RenderStr("line1\n{% if x %}\nunterminated");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("endif"));

  r = RenderStr("a\n\n{{ 1 + }}");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("template line 3"));

  r = RenderStr("{% frobnicate %}");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("frobnicate"));

  r = RenderStr("{{ 'unterminated }}");
  ASSERT_FALSE(r.ok());
  r = RenderStr("{# never closed");
  ASSERT_FALSE(r.ok());
  r = RenderStr("{{ x ");
  ASSERT_FALSE(r.ok());
  r = RenderStr("{{ x ! y }}");
  ASSERT_FALSE(r.ok());
}

TEST(InterpreterErrorTest, RuntimeErrorsNameTheLine) {
  auto r = RenderStr("ok\n{{ undefined_macro(1) }}");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("template line 2"));
  EXPECT_THAT(r.status().message(), HasSubstr("undefined_macro"));

  r = RenderStr("{{ missing.attr }}");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("missing"));

  r = RenderStr("\n\n{{ raise_exception('bad role') }}");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("bad role"));
  EXPECT_THAT(r.status().message(), HasSubstr("template line 3"));

  r = RenderStr("{{ 'a' + 1 }}");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("unsupported operand"));

  r = RenderStr("{{ 1 | nosuchfilter }}");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("nosuchfilter"));

  r = RenderStr("{{ 1 is nosuchtest }}");
  ASSERT_FALSE(r.ok());

  r = RenderStr("{% set s = 'x' %}{% set s.a = 1 %}");
  ASSERT_FALSE(r.ok());

  r = RenderStr("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);

  r = RenderStr("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}");
  ASSERT_FALSE(r.ok());

  r = RenderStr("{{ 1 / 0 }}");
  ASSERT_FALSE(r.ok());
  r = RenderStr("{% for x in 3 %}{% endfor %}");
  ASSERT_FALSE(r.ok());
}

// Recursion driven by the data (a macro walking nested lists) or by the template is bounded with
// a clear error, on a 1 MiB stack (an eighth of a default thread's).
constexpr size_t kSmallStack = 1 << 20;

Value NestedList(int depth) {
  Value v = Value::Int(7);
  for (int i = 0; i < depth; ++i) v = Value::MakeList({v});
  return v;
}

constexpr char kWalk[] =
    "{% macro walk(x) %}{% if x is sequence and x is not string %}[{% for i in x %}"
    "{{ walk(i) }}{% endfor %}]{% else %}{{ x }}{% endif %}{% endmacro %}{{ walk(data) }}";

TEST(RecursionBoundTest, DataDrivenMacroRecursionIsBounded) {
  g4::testing::RunWithStack(kSmallStack, [] {
    auto t = Template::Parse(kWalk);
    ASSERT_TRUE(t.ok()) << t.status();
    Dict ctx;
    ctx.Set("data", NestedList(64));
    auto r = t->Render(Value::MakeDict(ctx));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, std::string(64, '[') + "7" + std::string(64, ']'));
    ctx.Set("data", NestedList(1000));  // (a Value this deep from JSON is refused earlier)
    r = t->Render(Value::MakeDict(ctx));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("recursion"));
  });
}

TEST(RecursionBoundTest, EndlessRecursionIsAnErrorNotACrash) {
  g4::testing::RunWithStack(kSmallStack, [] {
    // Call blocks re-entering their caller, the deepest per-level native recursion a template
    // can build.
    auto r = RenderStr(
        "{% macro m(n) %}{% call m(n + 1) %}{{ caller() }}{% endcall %}{% endmacro %}{{ m(0) }}");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("recursion"));
    r = RenderStr("{% macro m(n) %}{{ m(n + 1) if n >= 0 else '' }}{% endmacro %}{{ m(0) }}");
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.status().message(), HasSubstr("recursion"));
    // Found by tests/fuzz/jinja_fuzz.cc: in a sanitizer build (larger frames) this overflowed
    // the stack before the macro depth bound.
    r = RenderStr(
        "{% macro fact(n) %}{% if n <= 0 %}1{% else %}{{ n * fact(n - 0) | int }}{% endif %}"
        "{% endmacro %}{{ fact(6) }}");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("recursion"));
  });
}

TEST(RecursionBoundTest, DeeplyNestedTemplateIsASyntaxError) {
  g4::testing::RunWithStack(kSmallStack, [] {
    for (const std::string& src :
         {"{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}",
          "{{ " + std::string(100000, '[') + std::string(100000, ']') + " }}",
          "{{ " + std::string(100000, '-') + "1 }}",
          [] {
            std::string s;
            for (int i = 0; i < 100000; ++i) s += "{% if true %}";
            return s;
          }(),
          [] {
            std::string s = "{{ x";
            for (int i = 0; i < 100000; ++i) s += " and not x";
            return s + " }}";
          }()}) {
      auto t = Template::Parse(src);
      ASSERT_FALSE(t.ok());
      EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(t.status().message(), HasSubstr("nested deeper than 256 levels"));
    }
  });
}

// Found by tests/fuzz/jinja_fuzz.cc: 64-bit integer overflow was undefined behaviour (and
// `2 ** 10**12` looped 10**12 times); repetition could allocate without bound.
TEST(InterpreterTest, IntegerOverflowAndHugeRepetitionAreErrors) {
  for (const char* tmpl : {"{{ 2 ** 102 }}", "{{ 9223372036854775807 + 1 }}",
                           "{{ -9223372036854775807 - 2 }}", "{{ 4611686018427387904 * 2 }}",
                           "{{ 3 ** 1000000000000 }}", "{{ (-9223372036854775807 - 1) // -1 }}",
                           "{{ -(-9223372036854775807 - 1) }}"}) {
    absl::StatusOr<std::string> r = RenderStr(tmpl);
    ASSERT_FALSE(r.ok()) << tmpl;
    EXPECT_THAT(r.status().message(), HasSubstr("integer overflow")) << tmpl;
  }
  EXPECT_EQ(*RenderStr("{{ 2 ** 62 }} {{ (-2) ** 63 }} {{ 1 ** 1000000000000 }}"),
            "4611686018427387904 -9223372036854775808 1");
  EXPECT_EQ(*RenderStr("{{ (-9223372036854775807 - 1) % -1 }}"), "0");
  EXPECT_EQ(*RenderStr("{{ '' * 1000000000000 }}|{{ 'ab' * 3 }}"), "|ababab");
  absl::StatusOr<std::string> r = RenderStr("{{ 'ab' * 1000000000000 }}");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("repetition result too large"));
  EXPECT_EQ(RenderStr("{{ range(9223372036854775806, 9223372036854775807, 1000)|list }}")->size(),
            std::string("[9223372036854775806]").size());
}

// Found by the jinja fuzz target: `indent` with a huge width allocated without bound (bad_alloc).
TEST(InterpreterTest, HugeIndentIsAnErrorNotAnAllocation) {
  EXPECT_EQ(*RenderStr("{{ 'a\nb'|indent(2) }}"), "a\n  b");
  absl::StatusOr<std::string> r = RenderStr("{{ 'a\nb'|indent(9223372036854775807) }}");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("over the limit"));
  r = RenderStr("{{ ('x\n' * 100000)|indent(1000) }}");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("limit 16 MiB"));
}

TEST(ValueTest, JsonRoundTripKeepsOrder) {
  Json j = Json::parse(R"({"z": 1, "a": [true, null, 2.5, "s"], "m": {"y": {}, "b": []}})");
  Value v = Value::FromJson(j);
  auto back = v.ToJson();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->dump(), j.dump());
  EXPECT_FALSE(Value::Undefined("x").ToJson().ok());
}

}  // namespace
}  // namespace g4::jinja
