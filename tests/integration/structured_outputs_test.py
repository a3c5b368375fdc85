"""Structured outputs end to end: the official `openai` client against a running cluster
(coordinator + 2 workers, TP=2) serving the tiny random-weight model with its 512-token
tokenizer (byte fallback does most of the spelling).

Run by python_clients_test (ctest). The weights are random and sampling uses temperature 1.0 with
several seeds, so every output is whatever the constraint let a noise generator write: each one
must still parse and validate against its schema with Python's `jsonschema`.
"""
import json
import os

import jsonschema
import openai
import pytest

BASE = os.environ["G4_HTTP_URL"]
MODEL = os.environ.get("G4_MODEL", "dense")
SEEDS = range(6)
MESSAGES = [{"role": "user", "content": "Describe a person as JSON."}]

# Bounded strings, numbers and arrays keep every output short, so max_tokens never cuts one.
# (Tool parameters give every property a "type" string: Gemma 4's chat template requires it.)
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 8},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "tags": {"type": "array", "items": {"enum": ["a", "b<t", 3]}, "maxItems": 3},
        "where": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/point"}]},
        "ok": {"type": "boolean"},
    },
    "required": ["name", "age", "ok"],
    "additionalProperties": False,
    "$defs": {"point": {"type": "object",
                        "properties": {"x": {"type": "number"}, "y": {"type": "integer"}},
                        "required": ["x", "y"]}},
}

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "maxLength": 10},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"]}}},
    {"type": "function", "function": {
        "name": "add", "parameters": {"type": "object", "properties": {
            "a": {"type": "integer"}, "b": {"type": "number"},
            "note": {"type": "string", "maxLength": 5}},
            "required": ["a", "b"]}}},
]
TOOL_SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}


@pytest.fixture(scope="module")
def client():
    return openai.OpenAI(base_url=BASE + "/v1", api_key="none", timeout=120, max_retries=0)


def json_schema_format(schema, name="person"):
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


@pytest.mark.parametrize("seed", SEEDS)
def test_json_schema_outputs_validate(client, seed):
    r = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, temperature=1.0, seed=seed, max_tokens=600,
        response_format=json_schema_format(PERSON))
    choice = r.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    value = json.loads(choice.message.content)
    jsonschema.validate(value, PERSON)
    assert not choice.message.tool_calls


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_json_schema_streaming(client, seed):
    stream = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, temperature=1.0, seed=seed, max_tokens=600, stream=True,
        response_format=json_schema_format(PERSON), top_p=0.9, extra_body={"top_k": 20},
        presence_penalty=0.5, logprobs=True, top_logprobs=3)
    text, finish = "", None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
        if chunk.choices and chunk.choices[0].logprobs and chunk.choices[0].logprobs.content:
            for lp in chunk.choices[0].logprobs.content:
                # Logprobs are of the masked distribution: finite, alternatives allowed tokens.
                assert lp.logprob <= 0 and all(t.logprob > -1e30 for t in lp.top_logprobs)
    assert finish == "stop"
    jsonschema.validate(json.loads(text), PERSON)


def test_greedy_recursive_schema(client):
    tree = {"$defs": {"node": {"type": "object", "properties": {
        "v": {"type": "integer", "minimum": 0, "maximum": 9},
        "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
        "required": ["v"], "additionalProperties": False}}, "$ref": "#/$defs/node"}
    for temperature in (0, 1.0):
        r = client.chat.completions.create(
            model=MODEL, messages=MESSAGES, temperature=temperature, seed=3, max_tokens=800,
            response_format=json_schema_format(tree, "tree"))
        content = r.choices[0].message.content
        if r.choices[0].finish_reason == "stop":
            jsonschema.validate(json.loads(content), tree)
        else:  # a deep random tree may hit max_tokens; it is still a valid prefix
            assert r.choices[0].finish_reason == "length" and content.startswith("{\"v\": ")


def test_json_object(client):
    for seed in SEEDS[:3]:
        r = client.chat.completions.create(
            model=MODEL, messages=MESSAGES, temperature=1.0, seed=seed, max_tokens=300,
            response_format={"type": "json_object"})
        content = r.choices[0].message.content
        assert content.startswith("{")
        if r.choices[0].finish_reason == "stop":
            assert isinstance(json.loads(content), dict)


def check_tool_calls(message, allowed):
    assert message.tool_calls, message.content
    for call in message.tool_calls:
        assert call.type == "function"
        assert call.function.name in allowed
        jsonschema.validate(json.loads(call.function.arguments),
                            TOOL_SCHEMAS[call.function.name])


@pytest.mark.parametrize("seed", SEEDS)
def test_tool_choice_required(client, seed):
    r = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=TOOLS,
        tool_choice="required", temperature=1.0, seed=seed, max_tokens=400)
    assert r.choices[0].finish_reason == "tool_calls"
    check_tool_calls(r.choices[0].message, set(TOOL_SCHEMAS))
    assert len(r.choices[0].message.tool_calls) == 1  # parallel_tool_calls not requested


@pytest.mark.parametrize("seed", SEEDS[:4])
def test_named_function(client, seed):
    for name in TOOL_SCHEMAS:
        r = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Go"}], tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": name}}, temperature=1.0,
            seed=seed, max_tokens=400)
        assert r.choices[0].finish_reason == "tool_calls"
        check_tool_calls(r.choices[0].message, {name})


def test_tool_choice_required_streaming(client):
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Add 1 and 2"}], tools=TOOLS,
        tool_choice="required", temperature=1.0, seed=11, max_tokens=400, stream=True)
    calls, finish = [], None
    for chunk in stream:
        if not chunk.choices:
            continue
        if chunk.choices[0].delta.tool_calls:
            calls.extend(chunk.choices[0].delta.tool_calls)
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and calls
    for call in calls:
        jsonschema.validate(json.loads(call.function.arguments), TOOL_SCHEMAS[call.function.name])


@pytest.mark.parametrize("body,param,keyword", [
    ({"response_format": json_schema_format({"type": "string", "pattern": "^a"})},
     "response_format.json_schema.schema", "pattern"),
    ({"response_format": json_schema_format({"type": "object", "properties": {
        "a": {"oneOf": [{"type": "string"}]}}})},
     "response_format.json_schema.schema", "oneOf"),
    ({"response_format": json_schema_format({"type": "number", "minimum": 0.5})},
     "response_format.json_schema.schema", "minimum"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"d": {"type": "string", "format": "date"}}}}}],
      "tool_choice": "required"}, "tools[0].function.parameters", "format"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "tool_choice.function.name", "nope"),
])
def test_unsupported_is_400(client, body, param, keyword):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5,
                                       extra_body=body)
    error = e.value.body
    assert error["param"] == param, error
    assert keyword in error["message"], error
