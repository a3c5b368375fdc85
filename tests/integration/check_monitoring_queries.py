#!/usr/bin/env python3
"""Evaluates every PromQL expression of deploy/monitoring against a live Prometheus.

Used by tests/integration/dashboard_test.cc: each Grafana panel target (the dashboard's
variables substituted: $namespace, $model_name, $rank -> ".*", $__rate_interval -> RATE) and each
alert rule's expression (its final comparison with a number removed, so the series it compares
must exist while the alert does not fire) must return at least one series through
/api/v1/query. Each expression is retried until it does or the deadline passes.

Usage: check_monitoring_queries.py --prometheus HOST:PORT [--monitoring deploy/monitoring]
                                   [--rate-interval 30s] [--deadline-seconds 60]
Prints one line per expression; exits 1 if any returned no series.
"""
import argparse
import json
import os
import re
import sys
import time
import urllib.parse
import urllib.request

import yaml

COMPARISON = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*-?[0-9.]+(e[+-]?[0-9]+)?\s*$")


def expressions(monitoring, rate_interval):
    out = []
    with open(os.path.join(monitoring, "g4serve-dashboard.json")) as f:
        dash = json.load(f)
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var in ("$namespace", "$model_name", "$rank"):
                expr = expr.replace(var, ".*")
            expr = expr.replace("$__rate_interval", rate_interval)
            out.append((f"panel '{panel['title']}' {target['refId']}", expr))
    with open(os.path.join(monitoring, "prometheusrule.yaml")) as f:
        rules = yaml.safe_load(f)
    for group in rules["spec"]["groups"]:
        for rule in group["rules"]:
            expr = COMPARISON.sub("", " ".join(rule["expr"].split()))
            out.append((f"alert {rule.get('alert', rule.get('record'))}", expr))
    return out


def series(prometheus, expr):
    url = f"http://{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
    except Exception as e:  # not up yet, or a bad expression (reported at the deadline)
        return None, str(e)
    if body.get("status") != "success":
        return None, body.get("error", "query failed")
    return len(body["data"]["result"]), ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--monitoring", default="deploy/monitoring")
    ap.add_argument("--rate-interval", default="30s")
    ap.add_argument("--deadline-seconds", type=float, default=60)
    args = ap.parse_args()
    pending = expressions(args.monitoring, args.rate_interval)
    deadline = time.time() + args.deadline_seconds
    results = {}
    while pending and time.time() < deadline:
        still = []
        for name, expr in pending:
            n, err = series(args.prometheus, expr)
            results[name] = (expr, n, err)
            if not n:
                still.append((name, expr))
        pending = still
        if pending:
            time.sleep(1)
    failed = 0
    for name, (expr, n, err) in results.items():
        ok = bool(n)
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {n or 0} series  {expr}" + (f"  ({err})" if err else ""))
    print(f"{len(results) - failed} of {len(results)} expressions return series")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
