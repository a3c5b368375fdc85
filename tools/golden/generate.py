#!/usr/bin/env python3
"""Golden-reference generator for g4serve (Gemma 4 text decoder).

Builds tiny random Gemma 4 models with Hugging Face transformers (fp32, eager
attention), randomizes every weight that HF initialises to a constant (norm
weights, layer_scalar, router scales), saves them as HF checkpoints and records
reference logits computed by *reloading the saved checkpoint from disk*.

    cd <repo> && $VENV/bin/python tools/golden/generate.py --out tests/data/golden

See tests/data/golden/README.md for the output format.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch

import transformers
from transformers import (
    Gemma4Config,
    Gemma4ForCausalLM,
    Gemma4ForConditionalGeneration,
    Gemma4TextConfig,
    Gemma4VisionConfig,
)
from transformers.models.gemma4.modeling_gemma4 import (
    Gemma4RMSNorm,
    Gemma4TextDecoderLayer,
    Gemma4TextRouter,
)
from safetensors import safe_open

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG_DIR = os.path.join(HERE, "configs")

GENERATION_CONFIG = {"bos_token_id": 2, "eos_token_id": [1, 106, 50], "pad_token_id": 0, "do_sample": False}
# Tokens a greedy reference must never produce: a C++ test that honours generation_config would stop early.
FORBIDDEN_GREEDY = {0, 1, 2, 50, 106}
KEEP_FILES = {"config.json", "generation_config.json", "model.safetensors"}

# Consistency checks (decode vs prefill, batch vs single, greedy vs full, generate vs manual).
# Two metrics must both pass: max|a-b| / max|b| <= REL_TOL_MAX and ||a-b||_2 / ||b||_2 <= REL_TOL_L2.
# The brief asked for 1e-5; measured fp32 noise floor of these tiny models (full fp32 prefill vs the same
# checkpoint run in float64) is ~1e-5 in the max metric, so the max metric uses 5e-5 (see README).
REL_TOL_MAX = 5e-5
REL_TOL_L2 = 1e-5
# Test data must not sit on a discrete decision boundary (fp32 logit noise here is ~2e-5 absolute):
MIN_ROUTER_GAP = 2e-5   # min router-probability gap between the k-th and (k+1)-th expert, every token/layer
MIN_GREEDY_GAP = 1e-3   # min logit gap between top-1 and top-2 at each greedy step

PREFILL_LEN = 20
PD_TOTAL, PD_PREFILL = 16, 10
BATCH_LENS = (13, 7)
GREEDY_PROMPT, GREEDY_NEW = 8, 8

# name -> (config file, model seed, weight save dtype, multimodal wrapper?)
VARIANTS = [
    ("dense", "dense.json", 1001, torch.float32, False),
    ("moe", "moe.json", 1002, torch.float32, False),
    ("efeat", "efeat.json", 1003, torch.float32, False),
    ("dense-bf16", "dense.json", 1004, torch.bfloat16, False),
    ("dense-wrapper", "dense.json", 1005, torch.float32, True),
    # 262144-token context, one global layer: long-context serving tests and benchmarks
    # (docs/long_context.md). Its references cover short prompts only, like the others.
    ("long", "long.json", 1006, torch.float32, False),
]

# Smallest vision tower transformers accepts for the wrapper variant (never run; only its tensors are stored).
TINY_VISION = dict(
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=2,
    head_dim=8,
    patch_size=4,
    position_embedding_size=16,
    pooling_kernel_size=2,
)


def log(*a):
    print(*a, flush=True)


# ----------------------------------------------------------------------------- config handling

SPECIAL_KEYS = ("architectures", "model_type", "global_head_dim", "num_global_key_value_heads")


def load_json_config(fname: str) -> dict:
    with open(os.path.join(CONFIG_DIR, fname)) as f:
        return json.load(f)


def make_text_config(cfg: dict) -> Gemma4TextConfig:
    kwargs = {k: v for k, v in cfg.items() if k not in ("architectures", "model_type")}
    return Gemma4TextConfig(**kwargs)


def expected_layer_geometry(cfg: dict, i: int) -> tuple[int, int]:
    """(head_dim, num_kv_heads) that the JSON intends for layer i."""
    if cfg["layer_types"][i] == "full_attention":
        kv = cfg["num_key_value_heads"]
        if cfg.get("attention_k_eq_v") and cfg.get("num_global_key_value_heads") is not None:
            kv = cfg["num_global_key_value_heads"]
        return cfg["global_head_dim"], kv
    return cfg["head_dim"], cfg["num_key_value_heads"]


def check_config_fields(tc: Gemma4TextConfig, cfg: dict, what: str):
    """Fail if transformers rewrote any field of the intended config."""
    bad = []
    for k, v in cfg.items():
        if k in SPECIAL_KEYS or k in ("head_dim", "num_key_value_heads"):
            continue  # per-layer attributes in transformers 5.24: checked per layer below
        if k == "dtype":
            got = str(getattr(tc, "dtype", None)).replace("torch.", "")
            if got != v:
                bad.append((k, v, got))
            continue
        got = getattr(tc, k, "<missing>")
        if got != v:
            bad.append((k, v, got))
    for i in range(cfg["num_hidden_layers"]):
        lc = tc.per_layer_config[i]
        want = expected_layer_geometry(cfg, i)
        got = (lc.head_dim, lc.num_key_value_heads)
        if got != want:
            bad.append((f"layer{i}.(head_dim,kv_heads)", want, got))
    if bad:
        raise SystemExit(f"[{what}] transformers rewrote config fields: {bad}")


def restore_released_keys(d: dict, cfg: dict) -> dict:
    """transformers 5.24 pops `global_head_dim` / `num_global_key_value_heads` in Gemma4TextConfig.__post_init__
    and serializes them as `per_layer_config`. Released checkpoints carry the two explicit keys, so write them
    back (and drop per_layer_config) so the golden config.json has the released layout. Reloading is verified."""
    d = dict(d)
    d.pop("per_layer_config", None)
    d["global_head_dim"] = cfg["global_head_dim"]
    d["num_global_key_value_heads"] = cfg["num_global_key_value_heads"]
    return d


# ----------------------------------------------------------------------------- model construction


def text_model_of(model):
    return model.model.language_model if isinstance(model, Gemma4ForConditionalGeneration) else model.model


def randomize_constants(text_model, seed: int) -> dict:
    """Randomize every parameter/buffer HF initializes to a constant (1.0)."""
    g = torch.Generator().manual_seed(seed)

    def u(t, lo, hi):
        return torch.rand(t.shape, generator=g, dtype=torch.float32) * (hi - lo) + lo

    counts = {"rmsnorm_weights": 0, "layer_scalar": 0, "router.scale": 0, "router.per_expert_scale": 0}
    with torch.no_grad():
        for name, m in text_model.named_modules():
            if isinstance(m, Gemma4RMSNorm) and m.with_scale:
                m.weight.copy_(u(m.weight, 0.7, 1.3))
                counts["rmsnorm_weights"] += 1
            if isinstance(m, Gemma4TextDecoderLayer):
                m.layer_scalar.copy_(u(m.layer_scalar, 0.5, 1.5))
                counts["layer_scalar"] += 1
            if isinstance(m, Gemma4TextRouter):
                m.scale.copy_(u(m.scale, 0.5, 1.5))
                m.per_expert_scale.copy_(u(m.per_expert_scale, 0.5, 1.5))
                counts["router.scale"] += 1
                counts["router.per_expert_scale"] += 1
    # Nothing that should be random may still be all ones.
    for name, t in text_model.state_dict().items():
        if t.numel() > 0 and torch.all(t == 1.0):
            raise SystemExit(f"tensor {name} is still constant 1.0 after randomization")
    return counts


def verify_structure(text_model, cfg: dict, what: str):
    """Check that the HF module tree has the intended structure."""
    H = cfg["hidden_size"]
    Hq = cfg["num_attention_heads"]
    L = cfg["num_hidden_layers"]
    N_shared = cfg.get("num_kv_shared_layers") or 0
    first_shared = L - N_shared
    ple = cfg.get("hidden_size_per_layer_input") or 0
    facts = []
    assert len(text_model.layers) == L
    for i, layer in enumerate(text_model.layers):
        attn = layer.self_attn
        D, kv = expected_layer_geometry(cfg, i)
        sliding = cfg["layer_types"][i] == "sliding_attention"
        assert attn.is_sliding == sliding, (what, i)
        assert attn.sliding_window == (cfg["sliding_window"] if sliding else None), (what, i)
        assert attn.head_dim == D, (what, i, attn.head_dim, D)
        assert attn.scaling == 1.0
        assert attn.q_proj.weight.shape == (Hq * D, H)
        assert attn.o_proj.weight.shape == (H, Hq * D)
        assert attn.q_norm.weight.shape == (D,)
        shared = i >= first_shared
        assert attn.is_kv_shared_layer == shared, (what, i)
        if shared:
            for n in ("k_proj", "v_proj", "k_norm", "v_norm"):
                assert not hasattr(attn, n), (what, i, n)
        else:
            assert attn.k_proj.weight.shape == (kv * D, H)
            assert attn.k_norm.weight.shape == (D,)
            assert attn.v_norm.with_scale is False
            keqv = bool(cfg.get("attention_k_eq_v")) and not sliding
            if keqv:
                assert attn.v_proj is None, (what, i, "k_eq_v layer must not have v_proj")
            else:
                assert attn.v_proj is not None and attn.v_proj.weight.shape == (kv * D, H)
        I = cfg["intermediate_size"] * (2 if (cfg.get("use_double_wide_mlp") and shared) else 1)
        assert layer.mlp.gate_proj.weight.shape == (I, H), (what, i, layer.mlp.gate_proj.weight.shape)
        assert layer.mlp.down_proj.weight.shape == (H, I)
        assert layer.layer_scalar.shape == (1,)
        if cfg.get("enable_moe_block"):
            E, Ie = cfg["num_experts"], cfg["moe_intermediate_size"]
            assert layer.router.proj.weight.shape == (E, H)
            assert layer.router.scale.shape == (H,)
            assert layer.router.per_expert_scale.shape == (E,)
            assert layer.experts.gate_up_proj.shape == (E, 2 * Ie, H)
            assert layer.experts.down_proj.shape == (E, H, Ie)
            assert layer.router.norm.with_scale is False
        else:
            assert not hasattr(layer, "router") and not hasattr(layer, "experts")
        if ple:
            assert layer.per_layer_input_gate.weight.shape == (ple, H)
            assert layer.per_layer_projection.weight.shape == (H, ple)
            assert layer.post_per_layer_input_norm.weight.shape == (H,)
        else:
            assert not hasattr(layer, "per_layer_input_gate")
        facts.append(
            f"L{i}:{'S' if sliding else 'F'} D={D} kv={kv} "
            f"{'SHARED' if shared else ('k_eq_v' if attn.v_proj is None else 'v_proj')} I={I}"
            f"{' moe' if cfg.get('enable_moe_block') else ''}{' ple' if ple else ''}"
        )
    if N_shared:
        modes = text_model.config.kv_sharing_modes
        donors = {t: i for i, t in enumerate(cfg["layer_types"][:first_shared]) if modes[i] == "store"}
        facts.append(f"kv_sharing_modes={modes} donors={donors}")
        # Donor = last non-shared layer of each type.
        for t in set(cfg["layer_types"]):
            want = max(i for i in range(first_shared) if cfg["layer_types"][i] == t)
            assert donors[t] == want, (what, t, donors)
    if ple:
        assert text_model.embed_tokens_per_layer.weight.shape == (cfg["vocab_size_per_layer_input"], L * ple)
        assert text_model.per_layer_model_projection.weight.shape == (L * ple, H)
        assert text_model.per_layer_projection_norm.weight.shape == (ple,)
    # RoPE tables
    re = text_model.rotary_emb
    s_inv = re.sliding_attention_inv_freq
    f_inv = re.full_attention_inv_freq
    Ds, Dg = cfg["head_dim"], cfg["global_head_dim"]
    want_s = 1.0 / (cfg["rope_parameters"]["sliding_attention"]["rope_theta"] ** (torch.arange(0, Ds, 2).float() / Ds))
    assert torch.equal(s_inv, want_s)
    fr = cfg["rope_parameters"]["full_attention"]
    n_rot = int(fr["partial_rotary_factor"] * Dg // 2)
    want_f = torch.zeros(Dg // 2)
    want_f[:n_rot] = 1.0 / (fr["rope_theta"] ** (torch.arange(0, 2 * n_rot, 2).float() / Dg))
    assert torch.equal(f_inv, want_f), (f_inv, want_f)
    facts.append(f"rope sliding inv_freq[{len(s_inv)}], full inv_freq[{len(f_inv)}] nonzero={int((f_inv != 0).sum())}")
    facts.append(f"embed_scale={float(text_model.embed_tokens.embed_scale)}")
    return facts


def build_model(name, cfg, seed, wrapper):
    tc = make_text_config(cfg)
    check_config_fields(tc, cfg, name)
    torch.manual_seed(seed)
    if wrapper:
        vc = Gemma4VisionConfig(**TINY_VISION)
        full = Gemma4Config(text_config=tc, vision_config=vc, audio_config=None)
        model = Gemma4ForConditionalGeneration._from_config(
            full, attn_implementation="eager", experts_implementation="eager", dtype=torch.float32)
    else:
        model = Gemma4ForCausalLM._from_config(
            tc, attn_implementation="eager", experts_implementation="eager", dtype=torch.float32)
    model.eval()
    counts = randomize_constants(text_model_of(model), seed + 1)
    facts = verify_structure(text_model_of(model), cfg, name)
    return model, counts, facts


# ----------------------------------------------------------------------------- save / reload


def save_checkpoint(model, cfg, out_dir, save_dtype, wrapper):
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    tmp = tempfile.mkdtemp(prefix="g4golden_")
    try:
        m = model.to(save_dtype) if save_dtype != torch.float32 else model
        m.save_pretrained(tmp)
        os.makedirs(out_dir)
        with open(os.path.join(tmp, "config.json")) as f:
            saved_cfg = json.load(f)
        if wrapper:
            saved_cfg["text_config"] = restore_released_keys(saved_cfg["text_config"], cfg)
        else:
            saved_cfg = restore_released_keys(saved_cfg, cfg)
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(saved_cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
            json.dump(GENERATION_CONFIG, f, indent=2)
            f.write("\n")
        shutil.copyfile(os.path.join(tmp, "model.safetensors"), os.path.join(out_dir, "model.safetensors"))
        extra = sorted(set(os.listdir(tmp)) - KEEP_FILES)
    finally:
        shutil.rmtree(tmp)
    return extra


def safetensors_listing(path):
    rows = []
    with safe_open(path, framework="pt") as f:
        for k in f.keys():
            sl = f.get_slice(k)
            rows.append((k, list(sl.get_shape()), sl.get_dtype()))
    return sorted(rows)


def reload_checkpoint(out_dir, wrapper):
    cls = Gemma4ForConditionalGeneration if wrapper else Gemma4ForCausalLM
    m = cls.from_pretrained(out_dir, dtype=torch.float32, attn_implementation="eager",
                            experts_implementation="eager")
    if m.config.get_text_config()._experts_implementation not in (None, "eager"):
        raise SystemExit("experts implementation is not eager")
    m.eval()
    return m


def compare_state(orig, reloaded, what):
    a = {k: v for k, v in orig.state_dict().items()}
    b = {k: v for k, v in reloaded.state_dict().items()}
    if set(a) != set(b):
        raise SystemExit(f"[{what}] state_dict key mismatch: {sorted(set(a) ^ set(b))}")
    for k in a:
        if not torch.equal(a[k].float(), b[k].float()):
            raise SystemExit(f"[{what}] tensor {k} differs after reload")
        if b[k].is_floating_point() and b[k].dtype != torch.float32:
            raise SystemExit(f"[{what}] tensor {k} reloaded as {b[k].dtype}, expected float32")


# ----------------------------------------------------------------------------- references


class RouterMonitor:
    """Tracks the smallest gap between the k-th and (k+1)-th router probability."""

    def __init__(self, model):
        self.enabled = True
        self.min_gap = float("inf")
        self.handles = []
        for m in model.modules():
            if isinstance(m, Gemma4TextRouter):
                self.handles.append(m.register_forward_hook(self._hook))

    def _hook(self, mod, inp, out):
        if not self.enabled:
            return
        probs = out[0].detach().float()
        k = mod.config.top_k_experts
        top = torch.topk(probs, k + 1, dim=-1).values
        gap = float((top[:, k - 1] - top[:, k]).min())
        self.min_gap = min(self.min_gap, gap)

    def close(self):
        for h in self.handles:
            h.remove()


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def check_close(a, b, what):
    e, e2 = rel_err(a, b), rel_l2(a, b)
    if not (e <= REL_TOL_MAX and e2 <= REL_TOL_L2):
        raise SystemExit(f"CONSISTENCY FAILURE {what}: max-rel err {e:.3g} (tol {REL_TOL_MAX}), "
                         f"l2-rel err {e2:.3g} (tol {REL_TOL_L2})")
    return float(f"{e:.3g}")


def get_cache(out):
    c = getattr(out, "cache", None)
    if c is None:
        c = getattr(out, "past_key_values", None)
    if c is None:
        raise SystemExit("model output carries no cache")
    return c


@torch.no_grad()
def logits_full(model, ids):
    x = torch.tensor([ids], dtype=torch.long)
    return model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False).logits[0].float()


@torch.no_grad()
def incremental(model, prefix, steps):
    """Prefill `prefix` with cache, then feed `steps` one token at a time. Returns logits of each fed token."""
    x = torch.tensor([prefix], dtype=torch.long)
    out = model(input_ids=x, use_cache=True)
    cache = get_cache(out)
    res = []
    for t in steps:
        out = model(input_ids=torch.tensor([[t]], dtype=torch.long), cache=cache, use_cache=True)
        cache = get_cache(out)
        res.append(out.logits[0, -1].float())
    return out, res, cache


@torch.no_grad()
def greedy(model, prompt, n):
    x = torch.tensor([prompt], dtype=torch.long)
    out = model(input_ids=x, use_cache=True)
    cache = get_cache(out)
    last = out.logits[0, -1].float()
    toks, lgs = [], []
    for step in range(n):
        t = int(torch.argmax(last))
        toks.append(t)
        lgs.append(last)
        if step + 1 < n:
            out = model(input_ids=torch.tensor([[t]], dtype=torch.long), cache=cache, use_cache=True)
            cache = get_cache(out)
            last = out.logits[0, -1].float()
    return toks, lgs


@torch.no_grad()
def hf_generate_check(model, prompt, n, toks, lgs):
    """Cross-check the manual loop against model.generate (raw logits via output_logits)."""
    # The reloaded model carries generation_config.json (eos [1,106,50]); data whose greedy continuation contains
    # one of those ids is rejected before this is called, so generate() runs all n steps.
    x = torch.tensor([prompt], dtype=torch.long)
    g = model.generate(
        input_ids=x,
        attention_mask=torch.ones_like(x),
        do_sample=False,
        max_new_tokens=n,
        output_logits=True,
        return_dict_in_generate=True,
    )
    gen = g.sequences[0, len(prompt):].tolist()
    if gen != toks:
        raise SystemExit(f"generate() tokens {gen} != manual greedy {toks}")
    if len(g.logits) != n:
        raise SystemExit(f"generate() returned {len(g.logits)} logits, expected {n}")
    return max(check_close(g.logits[i][0].float(), lgs[i], f"generate-logits step {i}") for i in range(n))


def compute_references(model, vocab, data_seed, has_router):
    rng = np.random.RandomState(data_seed)

    def rand_ids(n):
        return [2] + [int(v) for v in rng.randint(3, vocab, size=n - 1)]

    mon = RouterMonitor(model) if has_router else None
    checks = {}
    cases = {}

    # prefill
    toks = rand_ids(PREFILL_LEN)
    cases["prefill"] = {"tokens": toks, "logits": logits_full(model, toks)}

    # prefill + one-token decode steps
    toks = rand_ids(PD_TOTAL)
    full = logits_full(model, toks)
    _, dec, _ = incremental(model, toks[:PD_PREFILL], toks[PD_PREFILL:])
    dec = torch.stack(dec)
    checks["prefill_decode_vs_full"] = check_close(dec, full[PD_PREFILL:], "prefill_decode vs full prefill")
    cases["prefill_decode"] = {"tokens": toks, "prefill_len": PD_PREFILL, "logits": dec}

    # padded batch
    seqs = [rand_ids(n) for n in BATCH_LENS]
    T = max(BATCH_LENS)
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    am = torch.zeros(len(seqs), T, dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s)
        am[b, : len(s)] = 1
    pos = torch.arange(T).unsqueeze(0).expand(len(seqs), T)
    if mon:
        mon.enabled = False  # padded positions' routing is irrelevant
    with torch.no_grad():
        bl = model(input_ids=ids, attention_mask=am, position_ids=pos, use_cache=False).logits.float()
    if mon:
        mon.enabled = True
    seq_cases = []
    for b, s in enumerate(seqs):
        single = logits_full(model, s)
        checks[f"batch_vs_single[{b}]"] = check_close(bl[b, : len(s)], single, f"batch seq {b} vs single")
        seq_cases.append({"tokens": s, "logits": bl[b, : len(s)]})
    cases["batch"] = {"sequences": seq_cases}

    # greedy
    prompt = rand_ids(GREEDY_PROMPT)
    gtoks, glogits = greedy(model, prompt, GREEDY_NEW)
    full = logits_full(model, prompt + gtoks[:-1])
    checks["greedy_vs_full"] = check_close(torch.stack(glogits), full[GREEDY_PROMPT - 1:], "greedy vs full prefill")
    if not set(gtoks) & FORBIDDEN_GREEDY:
        checks["greedy_vs_hf_generate"] = hf_generate_check(model, prompt, GREEDY_NEW, gtoks, glogits)
    cases["greedy"] = {"prompt": prompt, "max_new_tokens": GREEDY_NEW, "tokens": gtoks, "logits": torch.stack(glogits)}

    # fp32 noise floor: the prefill case re-run in float64 on the same weights.
    m64 = copy.deepcopy(model).double()
    with torch.no_grad():
        x = torch.tensor([cases["prefill"]["tokens"]], dtype=torch.long)
        f64 = m64(input_ids=x, use_cache=False).logits[0]
    del m64
    checks["prefill_fp32_vs_fp64(info)"] = float(f"{rel_err(cases['prefill']['logits'], f64):.3g}")
    checks["prefill_fp32_vs_fp64_max_abs(info)"] = float(f"{float((cases['prefill']['logits'].double() - f64).abs().max()):.3g}")

    gaps = []
    for lg in glogits:
        top2 = torch.topk(lg, 2).values
        gaps.append(float(top2[0] - top2[1]))
    stats = {
        "checks_max_rel_err": checks,
        "greedy_min_top1_top2_gap": min(gaps),
        "greedy_forbidden_hit": sorted(set(gtoks) & FORBIDDEN_GREEDY),
    }
    if mon:
        stats["router_min_topk_gap"] = mon.min_gap
        mon.close()
    return cases, stats


def data_ok(stats):
    if stats["greedy_forbidden_hit"]:
        return False
    if stats["greedy_min_top1_top2_gap"] < MIN_GREEDY_GAP:
        return False
    if stats.get("router_min_topk_gap", 1.0) < MIN_ROUTER_GAP:
        return False
    return True


# ----------------------------------------------------------------------------- JSON output


def _fmt(x: float) -> str:
    return repr(float(f"{x:.8g}"))


def to_jsonable(o):
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, dict):
        return {k: to_jsonable(v) for k, v in o.items()}
    if isinstance(o, list):
        return [to_jsonable(v) for v in o]
    return o


def dumps(o, indent=0):
    """JSON with 8-significant-digit floats; every list of numbers on a single line."""
    pad = "  " * indent
    if isinstance(o, dict):
        items = [f'{pad}  {json.dumps(k)}: {dumps(v, indent + 1)}' for k, v in o.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(o, list):
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in o):
            return "[" + ",".join(_fmt(v) if isinstance(v, float) else str(v) for v in o) + "]"
        items = [pad + "  " + dumps(v, indent + 1) for v in o]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    if isinstance(o, float):
        return _fmt(o)
    return json.dumps(o)


# ----------------------------------------------------------------------------- main


def run_variant(name, cfg_file, seed, save_dtype, wrapper, out_root, max_data_tries):
    log(f"=== {name} ({cfg_file}, seed {seed}, weights {str(save_dtype).replace('torch.', '')}"
        f"{', Gemma4ForConditionalGeneration' if wrapper else ''})")
    cfg = load_json_config(cfg_file)
    model, counts, facts = build_model(name, cfg, seed, wrapper)
    for f in facts:
        log("   ", f)
    log("    randomized:", counts)

    if wrapper:
        # The wrapper's text path must equal a Gemma4ForCausalLM holding the same language-model weights.
        causal = Gemma4ForCausalLM._from_config(model.config.text_config, attn_implementation="eager",
                                                experts_implementation="eager", dtype=torch.float32).eval()
        sd = {"model." + k: v for k, v in model.model.language_model.state_dict().items()}
        missing, unexpected = causal.load_state_dict(sd, strict=False)
        missing = [k for k in missing if k != "lm_head.weight"]
        assert not missing and not unexpected, (missing, unexpected)
        causal.tie_weights()
        ids = [2] + list(range(3, 3 + PREFILL_LEN - 1))
        e = check_close(logits_full(model, ids), logits_full(causal, ids), "wrapper vs Gemma4ForCausalLM")
        log(f"    wrapper text path == Gemma4ForCausalLM (rel err {e:.2g})")
        del causal

    out_dir = os.path.join(out_root, name)
    extra = save_checkpoint(model, cfg, out_dir, save_dtype, wrapper)
    log(f"    save_pretrained extra files removed: {extra}")
    listing = safetensors_listing(os.path.join(out_dir, "model.safetensors"))
    names = [r[0] for r in listing]
    dtypes = sorted({r[2] for r in listing})
    lm_head_stored = any(n.endswith("lm_head.weight") for n in names)
    log(f"    safetensors: {len(names)} tensors, dtypes {dtypes}, lm_head stored: {lm_head_stored}")
    want_dtype = "BF16" if save_dtype == torch.bfloat16 else "F32"
    if dtypes != [want_dtype]:
        raise SystemExit(f"[{name}] unexpected safetensors dtypes {dtypes}")
    prefix = "model.language_model." if wrapper else "model."
    for n in names:
        ok = n.startswith(prefix) or (wrapper and (n.startswith("model.vision_tower.") or n.startswith("model.embed_vision.")))
        if not ok:
            raise SystemExit(f"[{name}] unexpected tensor name {n}")

    reloaded = reload_checkpoint(out_dir, wrapper)
    compare_state(model, reloaded, name)
    verify_structure(text_model_of(reloaded), cfg, name + " (reloaded)")
    log("    reload: all tensors identical (upcast where bf16), structure re-verified")
    del model

    vocab = cfg["vocab_size"]
    has_router = bool(cfg.get("enable_moe_block"))
    for attempt in range(max_data_tries):
        data_seed = seed * 100 + attempt
        cases, stats = compute_references(reloaded, vocab, data_seed, has_router)
        log(f"    data seed {data_seed}: {json.dumps(stats)}")
        if data_ok(stats):
            break
    else:
        raise SystemExit(f"[{name}] could not find test data with unambiguous greedy/routing choices")

    all_logits = torch.cat([cases["prefill"]["logits"].flatten(), cases["greedy"]["logits"].flatten()])
    log(f"    logits range [{float(all_logits.min()):.3f}, {float(all_logits.max()):.3f}], "
        f"|z|>1 fraction {float((all_logits.abs() > 1).float().mean()):.3f} (softcap {cfg['final_logit_softcapping']})")

    gen = (f"transformers {transformers.__version__}, torch {torch.__version__}, float32, eager attention"
           + (", weights stored as bfloat16 (loaded with dtype=float32)" if save_dtype == torch.bfloat16 else "")
           + (", Gemma4ForConditionalGeneration (text-only input)" if wrapper else ""))
    ref = {"model": name, "generator": gen, "cases": to_jsonable(cases)}
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        f.write(dumps(ref))
        f.write("\n")
    return listing


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/data/golden", help="output root (default: tests/data/golden)")
    ap.add_argument("--only", nargs="*", help="generate only these variants")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-data-tries", type=int, default=20)
    ap.add_argument("--size-limit-mb", type=float, default=9.0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    os.makedirs(args.out, exist_ok=True)

    listings = {}
    for name, cfg_file, seed, dt, wrapper in VARIANTS:
        if args.only and name not in args.only:
            continue
        listings[name] = run_variant(name, cfg_file, seed, dt, wrapper, args.out, args.max_data_tries)

    if "dense" in listings:
        log("=== dense model.safetensors tensors")
        for n, shape, dt in listings["dense"]:
            log(f"    {n:60s} {str(shape):16s} {dt}")

    total = 0
    for root, _, files in os.walk(args.out):
        for fn in files:
            total += os.path.getsize(os.path.join(root, fn))
    log(f"=== total size of {args.out}: {total / 1e6:.2f} MB")
    if total > args.size_limit_mb * 1e6:
        raise SystemExit(f"output exceeds {args.size_limit_mb} MB")


if __name__ == "__main__":
    main()
