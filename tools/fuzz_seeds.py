#!/usr/bin/env python3
"""Writes the seed corpus of one fuzz target (tests/fuzz) from tests/data into a folder.

    python3 tools/fuzz_seeds.py TARGET OUT_DIR

Run from the repository root (tools/fuzz.sh does). Targets whose inputs are binary formats with no
example in tests/data (step_descriptor, sampling_proto) write their own seeds from
LLVMFuzzerInitialize; for them this writes nothing.
"""
import glob
import json
import os
import struct
import sys


def write(out_dir, name, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(data)


def safetensors_file(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes) -> a .safetensors file's bytes."""
    header, buf = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(buf), len(buf) + len(raw)]}
        buf += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + buf


def seeds_safetensors(out):
    write(out, "small", safetensors_file([
        ("a", "F32", [2, 3], struct.pack("<6f", 1, 2, 3, 4, 5, 6)),
        ("b", "BF16", [4], b"\x80\x3f\x00\xc0\x00\x3f\x40\x40"),
        ("c", "F16", [1, 2], b"\x00\x3c\x00\xc0"),
        ("e", "F32", [2, 1, 2], struct.pack("<4f", 1, 2, 3, 4)),
    ], {"format": "pt"}))
    write(out, "empty_tensor", safetensors_file([("z", "F32", [0, 4], b"")]))
    write(out, "scalar", safetensors_file([("s", "F32", [], struct.pack("<f", 2.5))]))
    # The golden checkpoints' real headers, keeping the tensors whose bytes come first (the file
    # is cut after them, so the seed stays small and valid).
    for path in sorted(glob.glob("tests/data/golden/*/model.safetensors")):
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        meta = header.pop("__metadata__", None)
        kept = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
        tensors, end = [], 0
        with open(path, "rb") as f:
            f.seek(8 + n)
            data = f.read(4096)
        for name, info in kept:
            b, e = info["data_offsets"]
            if b != end or e > len(data):
                break
            tensors.append((name, info["dtype"], info["shape"], data[b:e]))
            end = e
        write(out, "golden-" + path.split("/")[-2], safetensors_file(tensors, meta))


def seeds_model_config(out):
    paths = sorted(glob.glob("tests/data/**/config.json", recursive=True) +
                   glob.glob("tests/data/**/generation_config.json", recursive=True) +
                   glob.glob("tests/data/configs/*.json") + glob.glob("tools/golden/configs/*.json"))
    for i, path in enumerate(paths):
        with open(path, "rb") as f:
            write(out, f"{i}-{os.path.basename(path)}", f.read())


def seeds_tokenizer_json(out):
    with open("tests/data/golden/dense/tokenizer.json", "rb") as f:
        write(out, "tiny-tokenizer.json", f.read())


def seeds_tokenizer_codec(out):
    n = 0
    for path in ("tests/data/tokenizer/vectors.jsonl", "tests/data/tokenizer/gemma3_hf_vectors.jsonl"):
        with open(path, encoding="utf-8") as f:
            for line in f:
                text = json.loads(line).get("text")
                if isinstance(text, str) and len(text.encode()) <= 4096:
                    write(out, f"vec-{n}", text)
                    n += 1
                if n >= 400:
                    return


def jinja_sources():
    with open("tests/data/chat_templates/jinja_features.jsonl", encoding="utf-8") as f:
        for line in f:
            case = json.loads(line)
            if isinstance(case.get("template"), str):
                yield case["template"]


def seeds_jinja(out):
    for i, src in enumerate(jinja_sources()):
        write(out, f"feature-{i}", src)
    for path in sorted(glob.glob("tests/data/chat_templates/*.jinja")):
        with open(path, "rb") as f:
            write(out, os.path.basename(path), f.read())


def chat_cases():
    for path in sorted(glob.glob("tests/data/chat_templates/cases-*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                case = json.loads(line)
                yield {k: v for k, v in case.items() if k not in ("name", "rendered")}


def seeds_chat_template(out):
    for i, case in enumerate(chat_cases()):
        write(out, f"case-{i}", json.dumps(case))


def seeds_openai_request(out):
    for i, case in enumerate(chat_cases()):
        body = {"model": "gemma", "messages": case["messages"]}
        if "tools" in case:
            body["tools"] = case["tools"]
        if "enable_thinking" in case:
            body["chat_template_kwargs"] = {"enable_thinking": case["enable_thinking"]}
        write(out, f"chat-{i}", json.dumps(body))
    write(out, "chat-sampling", json.dumps({
        "model": "gemma", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.7,
        "top_p": 0.9, "max_tokens": 16, "stop": ["\n\n"], "seed": 3, "stream": True,
        "stream_options": {"include_usage": True}, "logprobs": True, "top_logprobs": 2,
        "tool_choice": "auto", "n": 1}))
    write(out, "completion-text", json.dumps({
        "model": "gemma", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0,
        "logprobs": 3, "echo": False, "stop": "END"}))
    write(out, "completion-ids", json.dumps({"prompt": [2, 651, 1234], "max_tokens": 4}))


def seeds_output_parser(out):
    # Byte 0 picks where the output starts (content / reasoning / reasoning header), byte 1 the
    # split points; the rest is model output. The rendered prompts of the chat cases hold every
    # marker (channels, tool calls, tool responses, turns).
    n = 0
    for path in sorted(glob.glob("tests/data/chat_templates/cases-*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                rendered = json.loads(line)["rendered"]
                for start in range(3):
                    write(out, f"rendered-{n}-{start}", bytes([start, n % 256]) + rendered.encode())
                n += 1
    for i, text in enumerate([
        "<|channel>thought\nLet me think.<channel|>The answer is 4.",
        "<|tool_call>call:get_weather{location:<|\"|>Paris<|\"|>,days:3}<tool_call|>",
        "Sure.<|tool_call>call:f{a:[1,2,{b:true}],c:null}<tool_call|><|tool_response>",
        "<|channel>thought\nstill <chan",
        "plain text<turn|>ignored",
    ]):
        write(out, f"output-{i}", bytes([i % 3, i]) + text.encode())


def seeds_json_schema_grammar(out):
    """Schemas from the structured-output tests' subset, each followed by a walk."""
    schemas = [
        {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
         "required": ["name", "age"]},
        {"type": "array", "items": {"type": "integer", "minimum": -5, "maximum": 120},
         "minItems": 1, "maxItems": 3},
        {"enum": ["Paris", 12, True, None]},
        {"type": "object", "properties": {"city": {"type": "string", "maxLength": 4},
                                          "ok": {"type": "boolean"}}},
        {"anyOf": [{"type": "number"}, {"type": "array", "items": {"const": "ab"}}]},
        {"type": "string", "minLength": 2, "maxLength": 5},
    ]
    for i, schema in enumerate(schemas):
        write(out, f"schema{i}", json.dumps(schema).encode() + b"\0" + bytes(range(i, 64 + i)))


def seeds_http_request_parser(out):
    """Requests as clients send them, each after the piece-size byte the target reads first."""
    body = json.dumps({"model": "m", "prompt": "hello", "max_tokens": 4})
    requests = {
        "get": "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        "post": f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                f"\r\nContent-Length: {len(body)}\r\n\r\n{body}",
        "chunked": "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                   "\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: y\r\n\r\n",
        "pipelined": "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "continue": "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue"
                    "\r\nContent-Length: 2\r\n\r\n{}",
    }
    for name, text in requests.items():
        for piece in (0, 6, 255):
            write(out, f"{name}_{piece}", bytes([piece]) + text.encode())


SEEDS = {
    "safetensors": seeds_safetensors,
    "model_config": seeds_model_config,
    "tokenizer_json": seeds_tokenizer_json,
    "tokenizer_codec": seeds_tokenizer_codec,
    "jinja": seeds_jinja,
    "chat_template": seeds_chat_template,
    "openai_request": seeds_openai_request,
    "output_parser": seeds_output_parser,
    "step_descriptor": lambda out: None,  # LLVMFuzzerInitialize writes them
    "sampling_proto": lambda out: None,   # likewise
    "json_schema_grammar": seeds_json_schema_grammar,
    "http_request_parser": seeds_http_request_parser,
}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in SEEDS:
        sys.exit(f"usage: {sys.argv[0]} ({'|'.join(SEEDS)}) OUT_DIR")
    os.makedirs(sys.argv[2], exist_ok=True)
    SEEDS[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    main()
