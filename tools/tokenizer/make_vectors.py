#!/usr/bin/env python3
"""Generates tests/data/tokenizer/gemma3_hf_vectors.jsonl with Hugging Face `tokenizers` (Rust).

Usage: python3 tools/tokenizer/make_vectors.py [TOKENIZER_JSON[.xz]] [OUT]

Each line is one of:
  {"text": str, "ids": [...], "ids_with_bos": [...], "decoded": str}       encode + decode
  {"bytes_hex": str, "ids": [...]}   encode of raw (possibly invalid UTF-8) bytes; HF gets
                                      bytes.decode("utf-8", "replace"), the documented g4 behaviour
  {"decode_ids": [...], "decoded": str, "decoded_skip": str}   decode of arbitrary ids
Deterministic (fixed seed, text from this script and the Python standard library sources).
"""
import glob
import json
import lzma
import os
import random
import sys
import sysconfig

from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests/data/tokenizer/tokenizer.json.xz")
out_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
    ROOT, "tests/data/tokenizer/gemma3_hf_vectors.jsonl")
data = lzma.open(src).read().decode() if src.endswith(".xz") else open(src).read()
tok = Tokenizer.from_str(data)
rng = random.Random(20261128)

MULTI = [
    "The quick brown fox jumps over the lazy dog.",
    "Größenwahn: Über-Ökonomie für Äpfel — straße.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "我能吞下玻璃而不伤身体。東京都の天気は晴れです。",
    "나는 유리를 먹을 수 있어요. 그래도 아프지 않아요",
    "أنا قادر على أكل الزجاج و هذا لا يؤلمني.",
    "אני יכול לאכול זכוכית וזה לא מזיק לי.",
    "मैं काँच खा सकता हूँ और मुझे उससे कोई चोट नहीं पहुंचती.",
    "ฉันกินกระจกได้ แต่มันไม่ทำให้ฉันเจ็บ",
    "Τὴ γλῶσσα μοῦ ἔδωσαν ἑλληνικὴ",
    "Tôi có thể ăn thủy tinh mà không hại gì.",
    "Կրնամ ապակի ուտել և ինծի անհանգիստ չըներ։",
    "ᚠᛇᚻ᛫ᛒᛦᚦ᛫ᚠᚱᚩᚠᚢᚱ᛫ᚠᛁᚱᚪ᛫ᚷᛖᚻᚹᛦᛚᚳᚢᛗ",
    "👋🏽 family: 👨‍👩‍👧‍👦, flags 🇯🇵🇩🇪, keycap 1️⃣, heart ❤️‍🔥",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙: ∀x∈ℝ, ∃y: x²+y²≥0 ∑∫∂√∞",
    "zero\u200bwidth\u200cjoin\u200dand\ufeffbom\u00adsoft",
    "ctrl\x00\x01\x07\x1b[31mred\x1b[0m\x7f",
    "e\u0301 vs \u00e9, n\u0303, Å vs A\u030a",
]
SPECIAL = ["<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>",
           "<start_of_image>", "<image_soft_token>", "<unused0>", "<unused99>", "[multimodal]",
           "\n", "\n\n", "\t\t", "▁▁", "<start_of_turn", "<bos", "bos>", "< bos>", "<BOS>"]
WS = [" ", "  ", "   ", "\t", "\n", "\r\n", "\u3000", "\u00a0", " \n ", "\n\n\n\n", "\t \t"]


def stdlib_text():
    files = sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py")))
    for f in files[:200]:
        try:
            yield open(f, encoding="utf-8").read()
        except Exception:
            pass


def random_unicode(n):
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x2190, 0x23FF),
              (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xE000, 0xE0FF),
              (0xFFF0, 0xFFFD), (0x1F300, 0x1FAFF), (0x10000, 0x1007F), (0x20000, 0x2A6DF),
              (0xE0000, 0xE007F), (0xF0000, 0xF00FF), (0x0, 0x1F)]
    out = []
    for _ in range(n):
        a, b = rng.choice(ranges)
        out.append(chr(rng.randint(a, b)))
    return "".join(out)


texts = ["", " ", "\n", "a", "▁", "▁a", " ▁ ", "<0x41>", "<0xFF>"]
texts += MULTI
texts += [rng.choice(MULTI) + s + rng.choice(MULTI) for s in SPECIAL]
texts += ["".join(rng.choice(WS + ["x", "ab", "if"]) for _ in range(rng.randint(1, 30)))
          for _ in range(150)]
texts += ["".join(rng.choice(SPECIAL + MULTI + WS) for _ in range(rng.randint(2, 12)))
          for _ in range(150)]
texts += [random_unicode(rng.randint(1, 60)) for _ in range(400)]
texts += [s + w * rng.randint(1, 40) + s for s in ("word", "") for w in WS]
code = "\n".join(stdlib_text())
lines = code.split("\n")
for _ in range(250):  # code snippets, 1..20 lines
    i = rng.randrange(len(lines))
    texts.append("\n".join(lines[i:i + rng.randint(1, 20)]))
for _ in range(4):  # long strings
    i = rng.randrange(len(code) - 20000)
    texts.append(code[i:i + rng.randint(3000, 8000)])
texts.append("".join(MULTI) * 3)
texts.append("a" * 3000)
texts.append(" " * 500 + "\n" * 40 + "\t" * 70)

with open(out_path, "w", encoding="utf-8") as f:
    for t in texts:
        ids = tok.encode(t, add_special_tokens=False).ids
        ids_bos = tok.encode(t, add_special_tokens=True).ids
        dec = tok.decode(ids, skip_special_tokens=False)
        f.write(json.dumps({"text": t, "ids": ids, "ids_with_bos": ids_bos, "decoded": dec},
                           ensure_ascii=False) + "\n")
    raw = [b"\xff", b"\xc3", b"a\x80b", b"\xe2\x82", b"\xe2\x82\xac", b"\xe2\x82x\xac",
           b"\xed\xa0\x80", b"\xf0\x9f\x98", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80",
           b"ok\xfe\xffok", "héllo".encode("latin-1"), b"<bos>\xff<eos>"]
    raw += [bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))) for _ in range(80)]
    raw += [bytes(b ^ (0x80 if rng.random() < 0.05 else 0) for b in rng.choice(MULTI).encode())
            for _ in range(40)]
    for b in raw:
        ids = tok.encode(b.decode("utf-8", "replace"), add_special_tokens=False).ids
        f.write(json.dumps({"bytes_hex": b.hex(), "ids": ids}) + "\n")
    vs = tok.get_vocab_size()
    byte_ids = [tok.token_to_id(f"<0x{b:02X}>") for b in range(256)]
    for _ in range(300):
        ids = []
        for _ in range(rng.randint(1, 25)):
            r = rng.random()
            if r < 0.4:
                ids.append(rng.choice(byte_ids))
            elif r < 0.5:
                ids.append(rng.randrange(0, 110))
            else:
                ids.append(rng.randrange(vs))
        f.write(json.dumps({"decode_ids": ids,
                            "decoded": tok.decode(ids, skip_special_tokens=False),
                            "decoded_skip": tok.decode(ids, skip_special_tokens=True)},
                           ensure_ascii=False) + "\n")
print(f"wrote {out_path}: {os.path.getsize(out_path)} bytes", file=sys.stderr)
