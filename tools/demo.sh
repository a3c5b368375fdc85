#!/usr/bin/env bash
# The main job: set up, build, and run g4-generate (greedy, CPU) on the embedded tiny Gemma 4
# checkpoint (tests/data/golden/dense, made by tools/golden/generate.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh
set -x
./build/tools/g4_generate/g4-generate --model tests/data/golden/dense \
  --prompt-tokens 2,17,99,251,7 --max-new-tokens 12
