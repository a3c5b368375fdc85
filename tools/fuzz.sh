#!/usr/bin/env bash
# Builds and runs one libFuzzer target (tests/fuzz, docs/fuzzing.md):
#
#   tools/fuzz.sh TARGET SECONDS [libFuzzer flags...]   e.g. tools/fuzz.sh jinja 600
#   tools/fuzz.sh all SECONDS                            every target in turn (CI: 30 s each)
#   tools/fuzz.sh list                                   the targets
#
# The targets are built with clang-14 (-fsanitize=fuzzer,address,undefined) in their own folder,
# build-fuzz/, which holds only the fuzz targets and what they link. The corpus grows in
# build-fuzz/corpus/TARGET (seeded from tests/data by tools/fuzz_seeds.py, and by the targets
# themselves for binary formats); crashes, leaks and timeouts are written to
# build-fuzz/artifacts/TARGET/ and make this script exit 1. The last line of each run is
# libFuzzer's summary (executions, coverage).
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(safetensors model_config tokenizer_json tokenizer_codec jinja chat_template
         openai_request output_parser step_descriptor sampling_proto json_schema_grammar
         http_request_parser)

usage() {
  echo "usage: tools/fuzz.sh (TARGET|all) SECONDS [libFuzzer flags...] | tools/fuzz.sh list" >&2
  echo "targets: ${targets[*]}" >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
if [[ $1 == list ]]; then
  printf '%s\n' "${targets[@]}"
  exit 0
fi
[[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || usage
target=$1
seconds=$2
shift 2
if [[ $target != all ]] && ! printf '%s\n' "${targets[@]}" | grep -qx "$target"; then
  echo "tools/fuzz.sh: unknown target '$target'" >&2
  usage
fi

build=build-fuzz
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
if [[ ! -f $build/CMakeCache.txt ]]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBUILD_TESTING=OFF -DG4_ENABLE_CUDA=OFF -DG4_FUZZ=ON >/dev/null
fi

run_one() {
  local t=$1
  shift
  cmake --build "$build" -j "$(nproc)" --target "fuzz_$t"
  local corpus=$build/corpus/$t seeds=$build/seeds/$t artifacts=$build/artifacts/$t
  rm -rf "$seeds"
  mkdir -p "$corpus" "$seeds" "$artifacts"
  python3 tools/fuzz_seeds.py "$t" "$seeds"
  # -timeout: one input taking longer is a finding (a hang). -rss_limit_mb: likewise memory.
  # Leak checking is on (ASan's default); the targets keep their fixtures in leaked statics,
  # which LeakSanitizer reports only when they become unreachable, and they never do.
  G4_FUZZ_SEED_DIR="$seeds" "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" \
    -timeout=10 -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$@" "$corpus" "$seeds"
}

if [[ $target == all ]]; then
  failed=()
  for t in "${targets[@]}"; do
    echo "=== fuzz $t (${seconds}s)"
    run_one "$t" "$@" || failed+=("$t")
  done
  if ((${#failed[@]})); then
    echo "tools/fuzz.sh: findings in: ${failed[*]} (see $build/artifacts/)" >&2
    exit 1
  fi
else
  run_one "$target" "$@"
fi
