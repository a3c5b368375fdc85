#!/usr/bin/env python3
"""Generates golden cases for g4serve's Jinja-subset interpreter and chat templates.

Renders with Python jinja2 configured as Hugging Face transformers configures it for chat
templates (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, transformers'
tojson and raise_exception) and writes:
  tests/data/chat_templates/jinja_features.jsonl   {name, template, context, rendered}
  tests/data/chat_templates/cases-extra-<template>.jsonl  (same shape as the shipped case files)
Run from the repository root: python3 tools/chat_template/gen_cases.py  (needs jinja2 >= 3.1).
"""
import json
import os

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

DATA = "tests/data/chat_templates"


def make_env():
    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


ENV = make_env()

FEATURES = [
    # whitespace control
    ("text_only", "hello\nworld\n", {}),
    ("trailing_newline_kept_once", "a\n\n", {}),
    ("trim_blocks", "{% if true %}\nyes\n{% endif %}\nafter", {}),
    ("lstrip_blocks", "  {% if true %}\n  x\n  {% endif %}\n", {}),
    ("lstrip_not_var", "  {{ 1 }}\n  {% if 1 %}y{% endif %}", {}),
    ("lstrip_mid_line", "a  {% if 1 %}b{% endif %}  c", {}),
    ("dash_both", "a   \n  {%- if true -%}  \n  b  {%- endif -%}\n  c", {}),
    ("dash_var", "x  {{- 'y' -}}  z", {}),
    ("plus_disables", "  {%+ if true %}a{% endif +%}\nb", {}),
    ("comment_trim", "a\n{# note #}\nb\n  {#- x -#}  c", {}),
    ("crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\n", {}),
    ("tabs_lstrip", "\t\t{% for i in [1,2] %}\n\t{{ i }}\n\t\t{% endfor %}\n", {}),
    # literals and printing
    ("print_values", "{{ none }} {{ true }} {{ false }} {{ 3 }} {{ 2.50 }} {{ 1e20 }} {{ 1e-5 }} {{ 0.1 + 0.2 }}", {}),
    ("print_list_dict", "{{ [1, 'a', none, true, 1.5] }} {{ {'k': 'v', 'n': [1]} }} {{ (1,) }}", {}),
    ("print_context", "{{ d }} {{ l }}", {"d": {"b": 1, "a": "x'y"}, "l": [1.0, -2, "q\"z"]}),
    ("undefined_prints_empty", "[{{ nope }}][{{ d.missing }}][{{ d['missing'] }}]", {"d": {}}),
    ("string_escapes", "{{ 'a\\nb\\t\\'c\\'' }}|{{ \"\\u00e9\\x41\" }}|{{ 'x' 'y' }}", {}),
    # operators
    ("arith", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 / 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 4 / 2 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7.5 // 2 }}", {}),
    ("concat", "{{ 'a' ~ 1 ~ none ~ true }} {{ 'ab' + 'cd' }} {{ [1] + [2, 3] }} {{ 'ab' * 3 }}", {}),
    ("compare", "{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 'abc' < 'abd' }} {{ [1, 2] < [1, 3] }} {{ true == 1 }}", {}),
    ("in_ops", "{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }}", {}),
    ("logic", "{{ 0 or 'x' }} {{ 1 and 'y' }} {{ not 0 }} {{ none or [] }} {{ 'a' if false }}|{{ 'a' if 0 else 'b' }}", {}),
    ("unary", "{{ -3 }} {{ -(2 + 1) }} {{ +4 }} {{ -1.5 }}", {}),
    # subscripts / slices / attributes
    ("subscripts", "{{ l[0] }} {{ l[-1] }} {{ l[1:] }} {{ l[:2] }} {{ l[::-1] }} {{ s[1:3] }} {{ s[-1] }} {{ d.a }} {{ d['a'] }}",
     {"l": [1, 2, 3], "s": "h\u00e9llo", "d": {"a": 5}}),
    ("dict_method_wins_attr", "{{ d.items() | list }} {{ d['items'] }}", {"d": {"items": 1, "b": 2}}),
    # statements
    ("for_loop_vars", "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ x }};{% endfor %}", {}),
    ("for_else", "{% for x in [] %}x{% else %}empty{% endfor %}", {}),
    ("for_filter", "{% for x in range(10) if x is odd %}{{ x }}{{ loop.length }} {% endfor %}", {}),
    ("for_dict_items", "{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}|{% for k in d %}{{ k }}{% endfor %}", {"d": {"z": 1, "a": 2}}),
    ("for_unpack_dictsort", "{% for k, v in d | dictsort %}{{ k }}:{{ v }} {% endfor %}", {"d": {"b": 1, "A": 2, "a": 3, "C": 0}}),
    ("loop_controls", "{% for i in range(6) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("loop_cycle_prev", "{% for i in [1, 2, 3] %}{{ loop.cycle('o', 'e') }}{{ loop.previtem }}-{{ loop.nextitem }} {% endfor %}", {}),
    ("nested_loops", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ a }}{{ b }}{{ loop.index }}{% endfor %};{% endfor %}", {}),
    ("set_scoping", "{% set x = 0 %}{% for i in [1, 2] %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}{% if true %}{% set y = 5 %}{% endif %}{{ y }}", {}),
    ("namespace", "{% set ns = namespace(n=0, s='') %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }}", {}),
    ("set_tuple_block", "{% set a, b = [1, 2] %}{{ b }}{{ a }}{% set blk %}  inner {{ a }}  {% endset %}[{{ blk }}]", {}),
    ("if_elif_else", "{% for v in [1, 2, 3] %}{% if v == 1 %}one{% elif v == 2 %}two{% else %}other{% endif %} {% endfor %}", {}),
    ("macro_defaults_kwargs", "{% macro f(a, b=2, c='x') %}{{ a }}-{{ b }}-{{ c }}{% endmacro %}{{ f(1) }} {{ f(1, 3) }} {{ f(1, c='y') }} {{ f(a=0) }}", {}),
    ("macro_recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}{% endif %}{% endmacro %}{{ fact(6) }}", {}),
    ("macro_recursive_tree", "{% macro show(v) %}{% if v is mapping %}{{ '{' }}{% for k, x in v | dictsort %}{{ k }}:{{ show(x) }}{% if not loop.last %},{% endif %}{% endfor %}{{ '}' }}{% elif v is sequence and v is not string %}[{% for x in v %}{{ show(x) }}{{ ',' if not loop.last }}{% endfor %}]{% else %}{{ v }}{% endif %}{% endmacro %}{{ show(d) }}",
     {"d": {"b": [1, {"c": None, "a": True}], "a": "s", "f": 1.5}}),
    ("macro_scope", "{% set g = 'global' %}{% macro m() %}{% set g = 'local' %}{{ g }}{% endmacro %}{{ m() }} {{ g }}", {}),
    ("macro_filter_output", "{% macro m() %}  padded  {% endmacro %}[{{ m() | trim }}]", {}),
    ("call_block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold{% endcall %}", {}),
    ("filter_block", "{% filter upper %}shout {{ 'this' }}{% endfilter %}", {}),
    # filters
    ("filters_strings", "{{ '  a b  ' | trim }}|{{ 'abc' | upper }}|{{ 'ABC' | lower }}|{{ 'hello world' | capitalize }}|{{ 'hello world-x' | title }}|{{ 'aXa' | replace('a', 'b') }}|{{ 'xxTxx' | trim('x') }}", {}),
    ("filters_lists", "{{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ [1, 2] | first }} {{ [1, 2] | last }} {{ [1, 2, 3] | length }} {{ 'h\u00e9' | length }} {{ [1, 2] | join('-') }} {{ 'abc' | list }} {{ [1, 2, 2, 'a', 'A'] | unique | list }} {{ [1, 2] | reverse | list }} {{ [1, 2, 3] | sum }} {{ [4, 2, 9] | min }} {{ [4, 2, 9] | max }}", {}),
    ("filters_map_select", "{{ ['a', 'b'] | map('upper') | list }} {{ users | map(attribute='name') | join(',') }} {{ users | selectattr('admin') | map(attribute='name') | list }} {{ users | rejectattr('admin') | list | length }} {{ [1, 2, 3, 4] | select('even') | list }} {{ [1, 2, 3] | reject('odd') | list }} {{ users | selectattr('name', 'equalto', 'bo') | list | length }}",
     {"users": [{"name": "al", "admin": True}, {"name": "bo", "admin": False}]}),
    ("filters_default", "{{ nope | default('d') }} {{ '' | default('e') }} {{ '' | default('e', true) }} {{ none | d('n') }} {{ nope | d }}|", {}),
    ("filters_dictsort", "{{ d | dictsort }} {{ d | dictsort(true) }} {{ d | dictsort(by='value') }} {{ d | dictsort(reverse=true) }} {{ d | items | list }}", {"d": {"b": 3, "A": 2, "a": 1}}),
    ("filters_tojson", "{{ d | tojson }} {{ d | tojson(indent=2) }} {{ 'é\"\\n' | tojson }} {{ [1.0, none, true] | tojson }} {{ {} | tojson(indent=2) }} {{ d | tojson(sort_keys=true) }}",
     {"d": {"z": [1, {"y": "\u00fc"}], "a": None, "m": 2.5}}),
    ("filters_numbers", "{{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ -3 | abs }} {{ 3 | string }}{{ 4 | string | length }}", {}),
    ("filters_count_wordcount_indent", "{{ 'a b  c' | wordcount }} {{ [1, 2] | count }}|{{ 'l1\nl2\n\nl3' | indent(2) }}|{{ 'x\ny' | indent(2, true) }}", {}),
    # tests
    ("tests", "{{ x is defined }} {{ y is undefined }} {{ n is none }} {{ 's' is string }} {{ d is mapping }} {{ l is sequence }} {{ 's' is sequence }} {{ d is sequence }} {{ 1 is number }} {{ true is boolean }} {{ 1 is boolean }} {{ l is iterable }} {{ 1.5 is float }} {{ 2 is integer }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 2 is in [1, 2] }} {{ 'a' is eq 'a' }} {{ n is not none }} {{ 'AB' is upper }} {{ range is callable }}",
     {"x": 1, "n": None, "d": {}, "l": [1]}),
    # methods
    ("string_methods", "{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'xhix'.strip('x') }} {{ '  y '.lstrip() }}| {{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'Ab'.upper() }}{{ 'Ab'.lower() }} {{ 'aaa'.replace('a', 'b', 2) }} {{ 'abcb'.find('b') }} {{ 'abcb'.count('b') }} {{ '-'.join(['x', 'y']) }} {{ 'hi there'.title() }} {{ '12'.isdigit() }}", {}),
    ("dict_methods", "{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 'dflt') }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }}", {"d": {"a": 1, "b": [2]}}),
    ("strip_thinking_like", "{% set ns = namespace(result='') %}{% for part in text.split('<channel|>') %}{% if '<|channel>' in part %}{% set ns.result = ns.result + part.split('<|channel>')[0] %}{% else %}{% set ns.result = ns.result + part %}{% endif %}{% endfor %}{{ ns.result | trim }}",
     {"text": " pre <|channel>thought\nx<channel|>mid<|channel>y<channel|> post "}),
    ("unicode_trim_upper", "[{{ '\u3000\u00a0x\u2003' | trim }}] {{ '\u00e9t\u00e9' | upper }} {{ '\u0414\u0430' | lower }}", {}),
]

TOOLS_RICH = [
    {"type": "function", "function": {
        "name": "book", "description": "Book a table",
        "parameters": {"type": "object", "properties": {
            "party": {"type": "integer", "description": "People"},
            "time": {"type": ["string", "null"], "description": "When"},
            "prefs": {"type": "array", "description": "Preferences",
                      "items": {"type": "object", "properties": {"k": {"type": "string"}}, "required": ["k"]}},
            "tags": {"type": "array", "items": {"type": ["string", "number"]}},
            "mode": {"type": "string", "enum": ["a", "b"], "nullable": True},
            "meta": {"type": "object", "properties": {"x": {"type": "number", "description": "X"}}},
        }, "required": ["party", "time"]},
        "response": {"type": "object", "description": "Booking"}}},
]

CHAT_EXTRA = [
    {"name": "parallel_tool_calls_on_assistant", "tools": TOOLS_RICH, "messages": [
        {"role": "user", "content": "Book for 2 and 3"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"type": "function", "function": {"name": "book", "arguments": {"party": 2, "time": "7pm", "prefs": [{"k": "window"}], "ok": True, "ratio": 0.5, "none": None}}},
            {"type": "function", "function": {"name": "book", "arguments": {"party": 3, "time": None}}}],
         "tool_responses": [{"name": "book", "response": {"id": 1, "ok": True}}, {"name": "book", "response": [1, "two"]}]},
    ]},
    {"name": "tool_turn_then_answer", "tools": TOOLS_RICH, "enable_thinking": True, "messages": [
        {"role": "system", "content": "Sys"},
        {"role": "user", "content": "Q"},
        {"role": "assistant", "reasoning_content": "think 1", "tool_calls": [
            {"type": "function", "function": {"name": "book", "arguments": {"party": 1}}}],
         "tool_responses": [{"name": "book", "response": "done"}]},
        {"role": "assistant", "reasoning_content": "think 2", "content": "<|channel>thought\nold<channel|>Booked."},
        {"role": "user", "content": "thanks"},
    ], "add_generation_prompt": True},
    {"name": "reasoning_after_last_user", "enable_thinking": True, "messages": [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "reasoning_content": "r1", "tool_calls": [
            {"type": "function", "function": {"name": "f", "arguments": {"raw": 1, "nested": {"b": [True, None], "a": "s"}}}}],
         "tool_responses": [{"name": "f", "response": {"v": 1.25}}]},
        {"role": "assistant", "reasoning_content": "r2", "tool_calls": [
            {"type": "function", "function": {"name": "g", "arguments": {}}}],
         "tool_responses": [{"response": 7}]},
    ]},
    {"name": "media_parts", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "see "}, {"type": "image"}, {"type": "audio"}, {"type": "video"}, {"type": "text", "text": " end"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "<|channel>x<channel|> ok "}]},
    ], "add_generation_prompt": False},
    {"name": "thinking_false_explicit", "enable_thinking": False, "messages": [
        {"role": "developer", "content": "dev"}, {"role": "user", "content": "u"}]},
    {"name": "multiline_whitespace", "messages": [
        {"role": "user", "content": "\n\n  line1\n line2\t\n"},
        {"role": "assistant", "content": "  a\n\nb  "},
        {"role": "user", "content": "\u3000wide\u3000"}]},
]


def render(source, ctx):
    return ENV.from_string(source).render(**ctx)


def main():
    with open(os.path.join(DATA, "jinja_features.jsonl"), "w", encoding="utf-8") as f:
        for name, tmpl, ctx in FEATURES:
            ctx = dict(ctx)
            rendered = render(tmpl, ctx)
            f.write(json.dumps({"name": name, "template": tmpl, "context": ctx,
                                "rendered": rendered}, ensure_ascii=False) + "\n")
    for tname in ["gemma-4", "gemma-4-31B-it-interleaved"]:
        with open(os.path.join(DATA, f"{tname}.jinja"), encoding="utf-8") as f:
            source = f.read()
        with open(os.path.join(DATA, f"cases-extra-{tname}.jsonl"), "w", encoding="utf-8") as f:
            for case in CHAT_EXTRA:
                ctx = {k: v for k, v in case.items() if k != "name"}
                ctx.setdefault("add_generation_prompt", True)
                ctx["bos_token"] = "<bos>"
                out = dict(case)
                out["rendered"] = render(source, ctx)
                f.write(json.dumps(out, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
