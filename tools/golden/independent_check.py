#!/usr/bin/env python3
"""Independent float64 NumPy re-implementation of the Gemma 4 text decoder (no transformers), used to
cross-check tests/data/golden/*/reference.json ("prefill" and "batch" cases, full-sequence forward).
Mirrors what a C++ engine must do; see tests/data/golden/README.md.

    $VENV/bin/python tools/golden/independent_check.py tests/data/golden
"""
import json, math, os, sys
import numpy as np
import torch  # only to read bf16 safetensors
from safetensors.torch import load_file as load_torch


def load(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    tc = cfg.get("text_config", cfg)
    prefix = "model.language_model." if "text_config" in cfg else "model."
    W = {k[len(prefix):]: v.to(torch.float64).numpy() for k, v in load_torch(os.path.join(d, "model.safetensors")).items()
         if k.startswith(prefix)}
    return tc, W


def rms(x, w=None, eps=1e-6):
    y = x / np.sqrt(np.mean(x * x, -1, keepdims=True) + eps)
    return y * w if w is not None else y


def gelu(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def rope(x, pos, D, theta, frac):  # x [T, h, D], NeoX half-split
    n_rot = int(frac * D // 2)
    inv = np.zeros(D // 2)
    inv[:n_rot] = 1.0 / theta ** (np.arange(0, 2 * n_rot, 2) / D)   # exponent denominator = full D
    ang = pos[:, None] * inv[None, :]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
    x1, x2 = x[..., :D // 2], x[..., D // 2:]
    rot = np.concatenate([-x2, x1], -1)
    return x * cos[:, None, :] + rot * sin[:, None, :]


def forward(tc, W, ids):
    T = len(ids); H = tc["hidden_size"]; L = tc["num_hidden_layers"]; Hq = tc["num_attention_heads"]
    pos = np.arange(T, dtype=np.float64)
    x = W["embed_tokens.weight"][ids] * math.sqrt(H)  # bf16(sqrt(H)) == sqrt(H) exactly for H=64
    P = tc.get("hidden_size_per_layer_input") or 0
    if P:
        tok = W["embed_tokens_per_layer.weight"][ids].reshape(T, L, P) * math.sqrt(P)
        ctx = (x @ W["per_layer_model_projection.weight"].T) * H ** -0.5
        ctx = rms(ctx.reshape(T, L, P), W["per_layer_projection_norm.weight"])
        ple = (ctx + tok) * 2 ** -0.5
    first_shared = L - (tc.get("num_kv_shared_layers") or 0)
    kv_store = {}
    for i in range(L):
        p = f"layers.{i}."
        lt = tc["layer_types"][i]; sliding = lt == "sliding_attention"
        D = tc["head_dim"] if sliding else tc["global_head_dim"]
        rp = tc["rope_parameters"][lt]
        frac = rp.get("partial_rotary_factor", 1.0)
        a = rms(x, W[p + "input_layernorm.weight"])
        q = (a @ W[p + "self_attn.q_proj.weight"].T).reshape(T, Hq, D)
        q = rope(rms(q, W[p + "self_attn.q_norm.weight"]), pos, D, rp["rope_theta"], frac)
        if i >= first_shared:
            k, v = kv_store[lt]  # donor = last non-shared layer of the same type
        else:
            k_raw = a @ W[p + "self_attn.k_proj.weight"].T
            v_raw = a @ W[p + "self_attn.v_proj.weight"].T if (p + "self_attn.v_proj.weight") in W else k_raw
            k = rope(rms(k_raw.reshape(T, -1, D), W[p + "self_attn.k_norm.weight"]), pos, D, rp["rope_theta"], frac)
            v = rms(v_raw.reshape(T, -1, D))
            kv_store[lt] = (k, v)
        g = Hq // k.shape[1]
        qi, kj = np.arange(T)[:, None], np.arange(T)[None, :]
        allowed = (kj <= qi) & ((qi - kj < tc["sliding_window"]) if sliding else True)
        out = np.zeros((T, Hq, D))
        for h in range(Hq):
            s = q[:, h, :] @ k[:, h // g, :].T  # scale 1.0
            s = np.where(allowed, s, -np.inf)
            s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
            out[:, h, :] = s @ v[:, h // g, :]
        o = out.reshape(T, Hq * D) @ W[p + "self_attn.o_proj.weight"].T
        x = x + rms(o, W[p + "post_attention_layernorm.weight"])
        r = x
        hmlp = rms(r, W[p + "pre_feedforward_layernorm.weight"])
        hmlp = (gelu(hmlp @ W[p + "mlp.gate_proj.weight"].T) * (hmlp @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
        if tc.get("enable_moe_block"):
            f1 = rms(hmlp, W[p + "post_feedforward_layernorm_1.weight"])
            rr = rms(r) * W[p + "router.scale"] * H ** -0.5
            logits = rr @ W[p + "router.proj.weight"].T
            pr = np.exp(logits - logits.max(-1, keepdims=True)); pr /= pr.sum(-1, keepdims=True)
            K = tc["top_k_experts"]; Ie = tc["moe_intermediate_size"]
            u = rms(r, W[p + "pre_feedforward_layernorm_2.weight"])
            f2 = np.zeros_like(r)
            for t in range(T):
                top = np.argsort(-pr[t])[:K]
                w = pr[t, top] / pr[t, top].sum() * W[p + "router.per_expert_scale"][top]
                for e, we in zip(top, w):
                    gu = W[p + "experts.gate_up_proj"][e] @ u[t]
                    f2[t] += we * (W[p + "experts.down_proj"][e] @ (gelu(gu[:Ie]) * gu[Ie:]))
            f2 = rms(f2, W[p + "post_feedforward_layernorm_2.weight"])
            hmlp = f1 + f2
        x = r + rms(hmlp, W[p + "post_feedforward_layernorm.weight"])
        if P:
            gte = gelu(x @ W[p + "per_layer_input_gate.weight"].T) * ple[:, i, :]
            x = x + rms(gte @ W[p + "per_layer_projection.weight"].T, W[p + "post_per_layer_input_norm.weight"])
        x = x * W[p + "layer_scalar"][0]
    x = rms(x, W["norm.weight"])
    z = x @ W["embed_tokens.weight"].T
    c = tc["final_logit_softcapping"]
    return c * np.tanh(z / c)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "tests/data/golden"
    worst = 0.0
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if not os.path.isfile(os.path.join(d, "reference.json")):
            continue
        tc, W = load(d)
        ref = json.load(open(os.path.join(d, "reference.json")))["cases"]
        seqs = [ref["prefill"]] + ref["batch"]["sequences"]
        errs = []
        for s in seqs:
            z = forward(tc, W, s["tokens"])
            errs.append(float(np.abs(z - np.array(s["logits"])).max()))
        pd = ref["prefill_decode"]
        z = forward(tc, W, pd["tokens"])[pd["prefill_len"]:]
        errs.append(float(np.abs(z - np.array(pd["logits"])).max()))
        g = ref["greedy"]
        z = forward(tc, W, g["prompt"] + g["tokens"][:-1])[len(g["prompt"]) - 1:]
        errs.append(float(np.abs(z - np.array(g["logits"])).max()))
        assert list(np.argmax(z, -1)) == g["tokens"], name
        print(f"{name:15s} max |numpy_f64 - reference| per case: {['%.2e' % e for e in errs]}")
        worst = max(worst, max(errs))
    print(f"worst {worst:.2e}")
    if worst > 1e-4:
        sys.exit("MISMATCH")


if __name__ == "__main__":
    main()
