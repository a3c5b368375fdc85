#!/usr/bin/env bash
# Offline validation of deploy/ (ctest: deploy_manifests). Renders every overlay with
# `kubectl kustomize` when kubectl is installed, runs the structural checks of
# check_manifests.py (also on its own minimal renderer, so a machine without kubectl checks the
# same things), yamllint (relaxed) when installed, and `promtool check rules` on the alert rules.
# Needs python3 + python3-yaml (tools/setup.sh); exits non-zero with FAIL lines on any problem.
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail=0
note() { echo "validate: $*"; }
bad() { echo "FAIL $*" >&2; fail=1; }

python3 -c 'import yaml' 2>/dev/null || { bad "python3 with PyYAML (python3-yaml) is required"; exit 1; }

rendered=()
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  for o in deploy/overlays/*/ deploy/base/ deploy/monitoring/; do
    name="$(basename "$o")"
    if kubectl kustomize "$o" >"$tmp/$name.yaml" 2>"$tmp/$name.err"; then
      note "kubectl kustomize $o: $(grep -c '^kind:' "$tmp/$name.yaml") objects"
      [[ $o == deploy/overlays/* ]] && rendered+=(--rendered "$name=$tmp/$name.yaml")
    else
      bad "kubectl kustomize $o: $(cat "$tmp/$name.err")"
    fi
  done
else
  note "kubectl not installed: overlays rendered by check_manifests.py's minimal kustomize only"
fi

if ((${#rendered[@]})); then
  note "structural checks on kubectl's rendering"
  python3 tests/deploy/check_manifests.py --repo "$repo" "${rendered[@]}" || bad "check_manifests.py (kubectl rendering)"
fi
note "structural checks on the built-in rendering"
python3 tests/deploy/check_manifests.py --repo "$repo" --rules-out "$tmp/rules.yaml" || bad "check_manifests.py"

if command -v yamllint >/dev/null 2>&1; then
  mapfile -t yamls < <(find deploy -name '*.yaml' -o -name '*.yml' | sort)
  if out="$(yamllint -f parsable -d '{extends: relaxed, rules: {line-length: {max: 120}}}' "${yamls[@]}" 2>&1)"; then
    note "yamllint (relaxed): ${#yamls[@]} files clean"
  elif grep -q '\[error\]' <<<"$out"; then
    bad "yamllint: $out"
  else
    note "yamllint warnings:"; echo "$out"
  fi
else
  note "yamllint not installed: skipped (tools/setup.sh installs it)"
fi

if [[ -s $tmp/rules.yaml ]]; then
  if command -v promtool >/dev/null 2>&1; then
    if out="$(promtool check rules "$tmp/rules.yaml" 2>&1)"; then
      note "promtool check rules: $(grep -o '[0-9]* rules found' <<<"$out")"
    else
      bad "promtool check rules: $out"
    fi
    # Unit tests: when each alert fires and when not (rule_files: rules.yaml, beside it).
    cp tests/deploy/alerts_test.yaml "$tmp/alerts_test.yaml"
    if out="$(promtool test rules "$tmp/alerts_test.yaml" 2>&1)"; then
      note "promtool test rules: $(grep -c '^  name:\|^  - name:' tests/deploy/alerts_test.yaml) alert tests pass"
    else
      bad "promtool test rules: $out"
    fi
  else
    note "promtool not installed: alert rules not checked (tools/setup.sh installs prometheus)"
  fi
fi

if ((fail)); then echo "validate: FAILED" >&2; exit 1; fi
note "all checks passed"
