#!/usr/bin/env python3
"""CPU prefill/decode tokens/s: g4serve's CPU reference model vs transformers, one run, one config.

Run with the venv that has torch + transformers (Gemma 4):

    ninja -C build g4-bench-cpu
    $VENV/bin/python tools/bench/cpu_vs_transformers.py \
        [--threads 2] [--prompt-len 512] [--decode-steps 64] [--repeats 3] \
        [--bench build/tools/bench/g4-bench-cpu] [--cache-dir DIR] [--eager] [--json-out FILE]

What it does:
  1. Builds a random mid-size Gemma 4 text checkpoint (Gemma4ForCausalLM, fp32: hidden 1024,
     intermediate 4096, 8 layers S,S,S,F,S,S,S,F, 8 heads, 4 KV heads (2 global, K=V), head_dim
     128 / global 256, sliding window 512, vocab 32768, softcap 30) and saves it as
     config.json + generation_config.json + model.safetensors under --cache-dir (default
     $XDG_CACHE_HOME/g4serve/bench/mid-1024x8); reused when already there.
  2. transformers: torch.set_num_threads(T), torch.inference_mode(), attn_implementation "sdpa"
     (and "eager" with --eager): one warmup, then R runs of {prefill P tokens (batch 1, same
     deterministic pseudo-random ids in [3, vocab) as the C++ bench), then N greedy decode steps
     with the KV cache (model(ids, past_key_values=..., use_cache=True), argmax)}; median.
  3. g4serve: `g4-bench-cpu --json` on the same checkpoint with --threads T, in the same
     environment (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left as they are: the tests use them).
  4. Prints machine info and one table: metric | transformers | g4serve | ratio (g4/HF).

A benchmark, never a test. Results: docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings

import torch
import transformers
from transformers import Gemma4ForCausalLM, Gemma4TextConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MID_CONFIG = {
    "vocab_size": 32768,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 8,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "num_global_key_value_heads": 2,
    "head_dim": 128,
    "global_head_dim": 256,
    "attention_k_eq_v": True,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-06,
    "sliding_window": 512,
    "layer_types": ["sliding_attention"] * 3 + ["full_attention"] + ["sliding_attention"] * 3
                   + ["full_attention"],
    "rope_parameters": {
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25,
                           "rope_theta": 1000000.0},
    },
    "final_logit_softcapping": 30.0,
    "tie_word_embeddings": True,
    "hidden_size_per_layer_input": 0,
    "vocab_size_per_layer_input": 32768,
    "num_kv_shared_layers": 0,
    "use_double_wide_mlp": False,
    "enable_moe_block": False,
    "num_experts": None,
    "top_k_experts": None,
    "moe_intermediate_size": None,
    "use_bidirectional_attention": None,
    "initializer_range": 0.02,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "bos_token_id": 2,
    "dtype": "float32",
}
GENERATION_CONFIG = {"bos_token_id": 2, "eos_token_id": [1, 106, 50], "pad_token_id": 0,
                     "do_sample": False}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "g4serve", "bench", "mid-1024x8")


def build_checkpoint(out_dir: str) -> None:
    """Random fp32 checkpoint in the released layout (as tools/golden/generate.py writes it)."""
    stamp = os.path.join(out_dir, "bench_config.json")
    if os.path.exists(stamp):
        with open(stamp) as f:
            if json.load(f) == MID_CONFIG and os.path.exists(os.path.join(out_dir, "model.safetensors")):
                log(f"reusing checkpoint {out_dir}")
                return
    log(f"building checkpoint {out_dir} ...")
    os.makedirs(out_dir, exist_ok=True)
    kwargs = {k: v for k, v in MID_CONFIG.items()}
    tc = Gemma4TextConfig(**kwargs)
    torch.manual_seed(1234)
    model = Gemma4ForCausalLM._from_config(tc, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    # Non-trivial norm weights / layer scalars (HF initializes them to 1.0).
    g = torch.Generator().manual_seed(1235)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("layer_scalar"):
                p.copy_(torch.rand(p.shape, generator=g) * 0.6 + 0.7)
        for name, b in model.named_buffers():
            if name.endswith("layer_scalar"):
                b.copy_(torch.rand(b.shape, generator=g) * 0.6 + 0.7)
    model.save_pretrained(out_dir)
    with open(os.path.join(out_dir, "config.json")) as f:
        saved = json.load(f)
    # transformers 5.24 folds these two into per_layer_config; released checkpoints carry them.
    saved.pop("per_layer_config", None)
    saved["global_head_dim"] = MID_CONFIG["global_head_dim"]
    saved["num_global_key_value_heads"] = MID_CONFIG["num_global_key_value_heads"]
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(saved, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(GENERATION_CONFIG, f, indent=2)
        f.write("\n")
    with open(stamp, "w") as f:
        json.dump(MID_CONFIG, f, indent=2)


def prompt_tokens(n: int, vocab: int) -> list[int]:
    """Same LCG as tools/bench/cpu_model_bench.cc."""
    mask = (1 << 64) - 1
    s = 0x9E3779B97F4A7C15
    out = []
    for _ in range(n):
        s = (s * 6364136223846793005 + 1442695040888963407) & mask
        out.append(3 + (s >> 33) % (vocab - 3))
    return out


def hf_run_once(model, ids: torch.Tensor, steps: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    past = out.past_key_values
    t1 = time.perf_counter()
    gen = [int(nxt)]
    for _ in range(steps):
        out = model(input_ids=nxt, past_key_values=past, use_cache=True)
        past = out.past_key_values
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        gen.append(int(nxt))
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, gen


def hf_bench(ckpt: str, attn: str, prompt: list[int], steps: int, repeats: int) -> dict:
    model = Gemma4ForCausalLM.from_pretrained(ckpt, dtype=torch.float32, attn_implementation=attn)
    model.eval()
    ids = torch.tensor([prompt], dtype=torch.long)
    with torch.inference_mode():
        hf_run_once(model, ids[:, :64], min(steps, 4))  # warmup
        hf_run_once(model, ids, min(steps, 4))
        pre, dec = [], []
        for _ in range(repeats):
            p, d, gen = hf_run_once(model, ids, steps)
            pre.append(p)
            dec.append(d)
    p, d = statistics.median(pre), statistics.median(dec)
    return {"prefill_tok_s": len(prompt) / p, "decode_tok_s": steps / d if steps else 0.0,
            "decode_ms_per_token": 1e3 * d / steps if steps else 0.0, "generated": gen}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-len", type=int, default=512)
    ap.add_argument("--decode-steps", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bench", default=os.path.join(REPO, "build/tools/bench/g4-bench-cpu"))
    ap.add_argument("--cache-dir", default=default_cache_dir())
    ap.add_argument("--eager", action="store_true", help="also time attn_implementation='eager'")
    ap.add_argument("--json-out", help="write all numbers to this file as JSON")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    transformers.logging.set_verbosity_error()

    if not os.access(args.bench, os.X_OK):
        log(f"cpu_vs_transformers: {args.bench} not found (ninja -C build g4-bench-cpu)")
        return 2
    build_checkpoint(args.cache_dir)
    torch.set_num_threads(args.threads)
    prompt = prompt_tokens(args.prompt_len, MID_CONFIG["vocab_size"])

    hf = {}
    for attn in ["sdpa"] + (["eager"] if args.eager else []):
        log(f"transformers ({attn}) ...")
        hf[attn] = hf_bench(args.cache_dir, attn, prompt, args.decode_steps, args.repeats)

    log("g4serve ...")
    cmd = [args.bench, "--model", args.cache_dir, "--prompt-len", str(args.prompt_len),
           "--decode-steps", str(args.decode_steps), "--threads", str(args.threads),
           "--repeats", str(args.repeats), "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True)  # same environment as ours
    if res.returncode != 0:
        log(f"cpu_vs_transformers: {' '.join(cmd)} failed: {res.stderr.strip()}")
        return 2
    g4 = json.loads(res.stdout.strip().splitlines()[-1])

    print(f"machine: {cpu_model()}, nproc {os.cpu_count()}, {platform.machine()}")
    print(f"torch {torch.__version__} (intra-op threads {torch.get_num_threads()}), "
          f"transformers {transformers.__version__}")
    print(f"g4serve OpenBLAS: {g4.get('openblas_config')} (threads {g4.get('threads')})")
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}")
    print(f"config: hidden 1024, 8 layers, vocab 32768, fp32; prompt {args.prompt_len}, "
          f"decode {args.decode_steps}, threads {args.threads}, median of {args.repeats}")
    rows = [("prefill tok/s", "prefill_tok_s"), ("decode tok/s", "decode_tok_s")]
    head = "| metric | " + " | ".join(f"transformers ({a})" for a in hf) + " | g4serve | ratio (g4/HF sdpa) |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for label, key in rows:
        cells = " | ".join(f"{hf[a][key]:.1f}" for a in hf)
        print(f"| {label} | {cells} | {g4[key]:.1f} | {g4[key] / hf['sdpa'][key]:.2f}x |")
    for a in hf:
        same = sum(x == y for x, y in zip(hf[a]["generated"], g4["generated"]))
        print(f"greedy tokens, g4serve vs transformers ({a}): {same}/{len(g4['generated'])} equal "
              f"(first {hf[a]['generated'][:6]} vs {g4['generated'][:6]})")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"transformers": hf, "g4serve": g4, "cpu": cpu_model(),
                       "threads": args.threads, "torch": torch.__version__,
                       "transformers_version": transformers.__version__}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
