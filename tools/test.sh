#!/usr/bin/env bash
# Set up, build, and run every test with ctest; then the same ctest suite under ASan + UBSan
# (build-asan/), then every fuzz target for 30 s (build-fuzz/). Tests labelled `gpu` skip without
# a GPU. The CI time budget of these stages is in docs/build.md. G4_SKIP_ASAN=1 / G4_SKIP_FUZZ=1
# leave a stage out (for local runs; CI runs all three).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh
# Python test clients (openai, grpcio, pytest) in build/pyvenv; reinstalled only when
# tests/integration/requirements.txt changed. The ASan build's tests use the same venv.
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

if [[ ${G4_SKIP_ASAN:-0} != 1 ]]; then
  bash tools/build.sh asan
  # Every finding fails its test: UBSan aborts (-fno-sanitize-recover), ASan and LeakSanitizer
  # exit non-zero. The coordinator and worker processes the integration tests start inherit
  # these options; the Python clients they run are not instrumented.
  ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions="$PWD/tools/lsan.supp" \
    ctest --test-dir build-asan --output-on-failure -j "$(nproc)" --timeout 900
fi

if [[ ${G4_SKIP_FUZZ:-0} != 1 ]]; then
  bash tools/fuzz.sh all 30
fi
