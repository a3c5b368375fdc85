#!/usr/bin/env python3
"""Builds the tokenizer of the embedded tiny Gemma 4 model (vocab 512).

The pipeline is exactly the shape of Gemma's tokenizer.json (normalizer Replace ' '→'▁',
pre-tokenizer Split ' ' MergedWithPrevious, BPE with byte_fallback, decoder Replace/ByteFallback/
Fuse, <bos> template), the special tokens sit at Gemma 4's ids (<eos> 1, <bos> 2, <|tool_call> 48,
<|tool_response> 50, <|"|> 52, <|think|> 98, <|channel> 100, <|turn> 105, <turn|> 106, "\\n" 107),
then the 256 byte-fallback tokens, then BPE pieces learned from a small English corpus.

    python3 tools/golden/make_tiny_tokenizer.py --template /path/to/gemma/tokenizer.json \\
        --out tests/data/golden/dense/tokenizer.json

The template supplies the pipeline sections (copied verbatim); the vocabulary is new. The result
is checked with Hugging Face `tokenizers` when it is installed.
"""
import argparse
import collections
import json
import lzma

VOCAB_SIZE = 512
SPECIAL = {
    0: "<pad>", 1: "<eos>", 2: "<bos>", 3: "<unk>", 4: "<mask>",
    46: "<|tool>", 47: "<tool|>", 48: "<|tool_call>", 49: "<tool_call|>",
    50: "<|tool_response>", 51: "<tool_response|>", 52: '<|"|>',
    98: "<|think|>", 100: "<|channel>", 101: "<channel|>", 105: "<|turn>", 106: "<turn|>",
}
NEWLINE_ID = 107
FIRST_BYTE_ID = 108

CORPUS = """
The quick brown fox jumps over the lazy dog. Gemma is a family of open models built from the
same research and technology used to create the Gemini models. A serving system accepts
requests, schedules them on replicas of the model, and streams tokens back to the user.
The coordinator routes each request to the least loaded replica. Every worker holds one shard
of the weights and exchanges activations with its peers. Hello, how are you today? I am fine,
thank you. What is the capital of France? The capital of France is Paris. Tell me a story about
a robot who learns to paint. Once upon a time there was a little robot that loved colors.
def add(a, b):
    return a + b
The weather is sunny and warm. Please write a short poem about the sea and the sky.
user model system assistant tool call response thought answer question
"""


def train_bpe(text, num_merges, alphabet):
    words = collections.Counter(line.replace(" ", "\u2581") for line in text.split("\n") if line)
    seqs = {w: list(w) for w in words}
    merges = []
    for _ in range(num_merges):
        pairs = collections.Counter()
        for w, count in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += count
        if not pairs:
            break
        (a, b), n = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        if n < 2:
            break
        merges.append((a, b))
        for w in words:
            s, out, i = seqs[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--template", required=True, help="a Gemma tokenizer.json (or .xz)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    opener = lzma.open if args.template.endswith(".xz") else open
    with opener(args.template, "rt", encoding="utf-8") as f:
        template = json.load(f)

    vocab = {}
    for i in range(FIRST_BYTE_ID):
        vocab[SPECIAL.get(i, f"<unused{i}>")] = i
    del vocab[f"<unused{NEWLINE_ID}>"]
    vocab["\n"] = NEWLINE_ID
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = FIRST_BYTE_ID + b
    alphabet = sorted(set(CORPUS.replace(" ", "\u2581").replace("\n", "")))
    for ch in alphabet:
        if ch not in vocab:
            vocab[ch] = len(vocab)
    merges = []
    for a, b in train_bpe(CORPUS, VOCAB_SIZE, alphabet):
        if len(vocab) >= VOCAB_SIZE:
            break
        if a + b in vocab:
            continue
        vocab[a + b] = len(vocab)
        merges.append([a, b])
    assert len(vocab) == VOCAB_SIZE, len(vocab)
    assert sorted(vocab.values()) == list(range(VOCAB_SIZE))

    added = []
    for i in range(FIRST_BYTE_ID):
        if i == NEWLINE_ID:
            continue
        content = SPECIAL.get(i, f"<unused{i}>")
        added.append({"id": i, "content": content, "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True})
    out = dict(template)
    out["added_tokens"] = added
    out["model"] = dict(template["model"])
    out["model"]["vocab"] = vocab
    out["model"]["merges"] = merges
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")

    try:
        from tokenizers import Tokenizer
    except ImportError:
        return
    tok = Tokenizer.from_file(args.out)
    for text in ["Hello, how are you today?", "The capital of France is Paris.\n", "héllo 🤖 <|turn>user"]:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert max(ids) < VOCAB_SIZE
        assert tok.decode(ids, skip_special_tokens=False) == text, (text, tok.decode(ids))
        print(repr(text), ids)


if __name__ == "__main__":
    main()
