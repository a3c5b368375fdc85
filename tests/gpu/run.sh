#!/usr/bin/env bash
# The GPU check, in one call on a machine with an NVIDIA GPU (H100/H200): builds with CUDA, runs
# every ctest test labelled `gpu` and the GPU benchmarks, and writes a summary table and the logs
# under $OUT (default: ./gpu-out). Budget: under 8 minutes on one H100.
#
#   OUT=/some/dir bash tests/gpu/run.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
summary="$OUT/summary.md"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }

note "# g4serve GPU check ($(date -u +%FT%TZ))"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | sed 's/^/- gpu: /' | tee -a "$summary"
nvcc --version | tail -1 | sed 's/^/- nvcc: /' | tee -a "$summary"

# Build: the same tree as CI, plus the CUDA kernels (sm_90a), into build-gpu/.
start=$(date +%s)
if ! { cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON \
         -DG4_ENABLE_CUDA=ON && cmake --build build-gpu -j "$(nproc)"; } >"$OUT/build.log" 2>&1; then
  note "- build: FAILED (see build.log)"; tail -50 "$OUT/build.log"; exit 1
fi
note "- build: ok in $(( $(date +%s) - start )) s"

# Every gpu-labelled test (kernels vs the CPU reference, NCCL, the tiny model on GPU).
ctest --test-dir build-gpu -L gpu --output-on-failure --timeout 300 >"$OUT/ctest-gpu.log" 2>&1
rc=$?
note "- ctest -L gpu: $(grep -E 'tests passed|tests failed' "$OUT/ctest-gpu.log" | tail -1) (exit $rc)"
grep -E "Skipped|\*\*\*Failed|Passed" "$OUT/ctest-gpu.log" | sed 's/^/    /' >>"$summary"

# GPU benchmarks: each tools/bench binary named g4-bench-gpu-* prints its own table.
for bench in build-gpu/tools/bench/g4-bench-gpu-*; do
  [[ -x $bench ]] || continue
  name=$(basename "$bench")
  timeout 240 "$bench" >"$OUT/$name.txt" 2>&1
  note "- $name: exit $?"
  sed 's/^/    /' "$OUT/$name.txt" >>"$summary"
done
exit $rc
