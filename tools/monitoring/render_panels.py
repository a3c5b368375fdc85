#!/usr/bin/env python3
"""Draws Grafana panels of the g4serve dashboard from a live Prometheus, as SVG files.

For each panel named with --panel (default: the latency and capacity panels operators watch),
every target is fetched with /api/v1/query_range over the last --minutes (dashboard variables
substituted as in tests/integration/check_monitoring_queries.py) and drawn as one line per
series, labelled with the target's legendFormat. No plotting library: the SVG is written
directly. tests/integration/dashboard_test.cc runs this with G4_DASHBOARD_RENDER_DIR set; the
images in docs/images/ came from such a run (docs/dashboards.md).

Usage: render_panels.py --prometheus HOST:PORT --dashboard FILE --out DIR [--minutes 2]
                        [--panel TITLE ...]
"""
import argparse
import json
import math
import os
import re
import sys
import time
import urllib.parse
import urllib.request

DEFAULT_PANELS = ["Time To First Token", "Inter Token Latency", "Sequences That Fit Now",
                  "KV Cache Pages per Pool", "Replicas Ready", "Token Throughput"]
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]
W, H, L, R, T, B = 760, 360, 70, 20, 40, 110  # size and margins


def query_range(prometheus, expr, start, end, step):
    q = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"http://{prometheus}/api/v1/query_range?{q}", timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(body.get("error", "query_range failed"))
    return body["data"]["result"]


def legend(fmt, metric):
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt or "")
    return text or json.dumps(metric)


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def nice_max(v):
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * e:
            return m * e
    return 10 * e


def fmt_value(v, unit):
    if unit == "s":
        return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"
    return f"{v:g}"


def svg(title, unit, lines, start, end):
    ys = [y for _, pts in lines for _, y in pts]
    top = nice_max(max(ys) if ys else 1)
    pw, ph = W - L - R, H - T - B
    sx = lambda t: L + (t - start) / max(end - start, 1e-9) * pw
    sy = lambda v: T + ph - v / top * ph
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
           f'<text x="{L}" y="22" font-size="14" font-weight="bold">{esc(title)}</text>']
    for i in range(5):
        v = top * i / 4
        y = sy(v)
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{esc(fmt_value(v, unit))}</text>')
    for i in range(5):
        t = start + (end - start) * i / 4
        out.append(f'<text x="{sx(t):.1f}" y="{T + ph + 16}" text-anchor="middle">'
                   f'{time.strftime("%H:%M:%S", time.gmtime(t))}</text>')
    out.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    for k, (name, pts) in enumerate(lines):
        color = COLORS[k % len(COLORS)]
        if pts:
            d = " ".join(f"{'M' if j == 0 else 'L'}{sx(t):.1f},{sy(v):.1f}" for j, (t, v) in enumerate(pts))
            out.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.8"/>')
        lx, ly = L + (k % 2) * (pw // 2), T + ph + 34 + (k // 2) * 15
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="4" fill="{color}"/>')
        out.append(f'<text x="{lx + 16}" y="{ly - 4}">{esc(name[:60])}</text>')
    if not lines:
        out.append(f'<text x="{L + pw / 2}" y="{T + ph / 2}" text-anchor="middle">no data</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=2)
    ap.add_argument("--rate-interval", default="30s")
    ap.add_argument("--panel", action="append")
    args = ap.parse_args()
    with open(args.dashboard) as f:
        dash = json.load(f)
    wanted = args.panel or DEFAULT_PANELS
    end = time.time()
    start = end - args.minutes * 60
    step = max(1, int(args.minutes * 60 / 150))
    os.makedirs(args.out, exist_ok=True)
    for title in wanted:
        panel = next((p for p in dash["panels"] if p.get("title") == title), None)
        if panel is None:
            print(f"no panel '{title}'", file=sys.stderr)
            return 1
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        lines = []
        for target in panel["targets"]:
            expr = target["expr"]
            for var in ("$namespace", "$model_name", "$rank"):
                expr = expr.replace(var, ".*")
            expr = expr.replace("$__rate_interval", args.rate_interval)
            for s in query_range(args.prometheus, expr, start, end, step):
                pts = [(float(t), float(v)) for t, v in s["values"]
                       if v not in ("NaN", "+Inf", "-Inf")]
                lines.append((legend(target.get("legendFormat"), s["metric"]), pts))
        name = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") + ".svg"
        with open(os.path.join(args.out, name), "w") as f:
            f.write(svg(title, unit, lines, start, end))
        print(f"{name}: {len(lines)} series")
    return 0


if __name__ == "__main__":
    sys.exit(main())
