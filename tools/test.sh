#!/usr/bin/env bash
# Set up, build, and run every test with ctest. Tests labelled `gpu` skip without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 600
