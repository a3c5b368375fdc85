"""The official `openai` client against a running g4serve cluster (coordinator + 2 workers).

Run by python_clients_test (ctest), which starts the cluster and sets G4_HTTP_URL / G4_GRPC_ADDR.
The model's weights are random: text is gibberish, so the tests check shapes, not content.
"""
import json
import os

import urllib.request
import openai
import pytest

BASE = os.environ["G4_HTTP_URL"]
MODEL = os.environ.get("G4_MODEL", "dense")


@pytest.fixture(scope="module")
def client():
    return openai.OpenAI(base_url=BASE + "/v1", api_key="none", timeout=60, max_retries=0)


def test_models(client):
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]


def test_completion(client):
    r = client.completions.create(model=MODEL, prompt="Hello", max_tokens=5, temperature=0)
    assert r.object == "text_completion"
    assert r.choices[0].finish_reason in ("stop", "length")
    assert isinstance(r.choices[0].text, str)
    assert r.usage.completion_tokens <= 5
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.usage.prompt_tokens_details.cached_tokens >= 0


def test_completion_streaming_with_usage(client):
    stream = client.completions.create(model=MODEL, prompt="Hello", max_tokens=6, stream=True,
                                       stream_options={"include_usage": True}, seed=1)
    chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    finishes = [c.choices[0].finish_reason for c in chunks[:-1] if c.choices[0].finish_reason]
    assert finishes and finishes[-1] in ("stop", "length")
    assert chunks[-1].usage.completion_tokens <= 6


def test_greedy_streaming_matches_non_streaming(client):
    whole = client.completions.create(model=MODEL, prompt="The", max_tokens=8, temperature=0,
                                      extra_body={"ignore_eos": True})
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=MODEL, prompt="The", max_tokens=8, temperature=0, stream=True,
        extra_body={"ignore_eos": True}))
    assert streamed == whole.choices[0].text
    assert whole.usage.completion_tokens == 8


def test_chat(client):
    r = client.chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": "Hi"}], max_tokens=5, temperature=0)
    assert r.object == "chat.completion"
    m = r.choices[0].message
    assert m.role == "assistant"
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")
    assert r.usage.completion_tokens <= 5


def test_chat_streaming(client):
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=5, stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].usage is not None
    assert any(c.choices and c.choices[0].finish_reason for c in chunks)


def test_chat_with_tools_and_logprobs(client):
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]
    r = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=tools,
        tool_choice="auto", max_tokens=4, logprobs=True, top_logprobs=2,
        extra_body={"chat_template_kwargs": {"enable_thinking": True}})
    choice = r.choices[0]
    assert choice.finish_reason in ("stop", "length", "tool_calls")
    assert choice.logprobs is not None and len(choice.logprobs.content) == r.usage.completion_tokens
    assert all(len(t.top_logprobs) == 2 for t in choice.logprobs.content)
    # A conversation with a tool call and its result renders too.
    r = client.chat.completions.create(model=MODEL, max_tokens=3, tools=tools, messages=[
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}])
    assert r.choices[0].message.role == "assistant"


def test_errors(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=MODEL, prompt="Hi", max_tokens=0)
    assert "max_tokens" in str(e.value)
    body = e.value.body
    body = body.get("error", body) if isinstance(body, dict) else {}
    assert body.get("param") == "max_tokens"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}],
                                       temperature=-1)
    assert "temperature" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=MODEL, prompt="Hi", extra_body={"frobnicate": 1})
    assert "frobnicate" in str(e.value)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="no-such-model", prompt="Hi")
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=MODEL, prompt=[5] * 600)
    assert "prompt" in str(e.value)


def test_health():
    with urllib.request.urlopen(BASE + "/health", timeout=10) as r:
        assert r.status == 200
        assert json.loads(r.read())["replicas_ready"] >= 1
