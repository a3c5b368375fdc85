#!/usr/bin/env bash
# Set up, build, and run every test with ctest. Tests labelled `gpu` skip without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh
# Python test clients (openai, grpcio, pytest) in build/pyvenv; reinstalled only when
# tests/integration/requirements.txt changed.
venv=build/pyvenv
req=tests/integration/requirements.txt
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
if ! cmp -s "$req" "$venv/.requirements.installed"; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  cp "$req" "$venv/.requirements.installed"
fi
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 600
