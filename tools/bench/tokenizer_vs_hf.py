#!/usr/bin/env python3
"""Encode throughput of g4-bench-tokenizer against Hugging Face `tokenizers` on the same text.

Usage: tokenizer_vs_hf.py --bench BUILD/tools/g4_tokenize/g4-bench-tokenizer \
           --tokenizer tokenizer.json[.xz] --text FILE [--threads N] [--seconds S]

Rows: HF `Tokenizer.encode` (single thread), HF `encode_batch` over N newline-aligned chunks
(rayon, RAYON_NUM_THREADS=N), g4 with 1 thread and with N threads (same chunks). Both sides
encode without special tokens; token counts must agree. Load time is for the uncompressed JSON
(g4: LoadFromJson on the text in memory; HF: Tokenizer.from_str).
"""
import argparse
import json
import lzma
import os
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--bench", required=True)
ap.add_argument("--tokenizer", required=True)
ap.add_argument("--text", required=True)
ap.add_argument("--threads", type=int, default=os.cpu_count())
ap.add_argument("--seconds", type=float, default=3.0)
args = ap.parse_args()
os.environ["RAYON_NUM_THREADS"] = str(args.threads)
from tokenizers import Tokenizer  # noqa: E402  (after RAYON_NUM_THREADS)

raw = (lzma.open(args.tokenizer).read() if args.tokenizer.endswith(".xz")
       else open(args.tokenizer, "rb").read()).decode()
t0 = time.perf_counter()
tok = Tokenizer.from_str(raw)
hf_load = time.perf_counter() - t0
text = open(args.text, encoding="utf-8").read()
nbytes = len(text.encode())


def chunks(n):
    out, begin = [], 0
    for p in range(1, n + 1):
        end = len(text) if p == n else text.find("\n", len(text) * p // n)
        end = len(text) if end < 0 or p == n else end + 1
        end = max(end, begin)
        out.append(text[begin:end])
        begin = end
    return out


def timed(fn):
    it, t0 = 0, time.perf_counter()
    while True:
        r = fn()
        it += 1
        el = time.perf_counter() - t0
        if el >= args.seconds:
            return r, nbytes * it / el / 1e6


ids, hf_single = timed(lambda: tok.encode(text, add_special_tokens=False).ids)
parts = chunks(args.threads)
batch, hf_batch = timed(lambda: tok.encode_batch(parts, add_special_tokens=False))
assert sum(len(e.ids) for e in batch) == len(ids), "HF batch and single disagree"


def g4(threads):
    out = subprocess.run([args.bench, "--tokenizer", args.tokenizer, "--text", args.text,
                          "--seconds", str(args.seconds), "--threads", str(threads)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


g1, gn = g4(1), g4(args.threads)
assert g1["tokens"] == len(ids), f"token counts differ: g4 {g1['tokens']} vs HF {len(ids)}"
print(f"text: {args.text} ({nbytes} bytes, {len(ids)} tokens); threads={args.threads}")
print(f"{'implementation':<40}{'MB/s':>10}{'vs HF encode':>14}")
rows = [("HF tokenizers encode (1 thread)", hf_single),
        (f"HF tokenizers encode_batch ({args.threads} threads)", hf_batch),
        ("g4 Tokenizer::Encode (1 thread)", g1["mb_per_s"]),
        (f"g4 Tokenizer::Encode ({args.threads} threads)", gn["mb_per_s"])]
for name, v in rows:
    print(f"{name:<40}{v:>10.2f}{v / hf_single:>13.2f}x")
print(f"load uncompressed tokenizer.json: g4 {g1['load_json_s']:.3f} s, HF {hf_load:.3f} s "
      f"(g4 .xz read+decompress {g1['read_s']:.3f} s)")
