#!/usr/bin/env bash
# One long request through the whole system (docs/long_context.md): g4-coordinator and two
# g4-workers (one TP=2 replica, --threads 1 each) serving tests/data/golden/long, then:
#   1. one request of TOTAL tokens (prompt TOTAL-8, 8 greedy tokens) with g4-client
#      --prompt-tokens-file: TTFT (the coordinator's time_to_first_token_seconds_sum for this one
#      request), prefill tokens/s, peak pages per pool (kv_cache_peak_pages) against
#      ceil(TOTAL/B) global pages and ceil((W-1+C)/B)+1 sliding pages, each worker's peak RSS
#      (VmHWM) against the plan (g4-plan --json for the same checkpoint, scaled to the CPU
#      backend's fp32 weights and KV);
#   2. the same prompt through g4-generate (one process): the greedy tokens must be equal;
#   3. prefix caching: a PREFIX+16-token request, then one sharing its first PREFIX tokens, over
#      HTTP: both TTFTs (max_tokens 1) and usage.prompt_tokens_details.cached_tokens.
# Not a test: at 262144 tokens this takes many minutes on 2 cores.
#
#   bash tools/bench/long_context_bench.sh [TOTAL=262144] [PREFIX=100000] [PHASES=served,generate,prefix]
#
# PHASES picks what runs after the long request is served (comma-separated): "generate" (the
# g4-generate comparison, the slowest part), "prefix" (the shared-prefix pair); "served" alone
# measures the long request only.
set -euo pipefail
cd "$(dirname "$0")/../.."
TOTAL=${1:-262144}
PREFIX=${2:-100000}
PHASES=${3:-served,generate,prefix}
phase() { [[ ",$PHASES," == *",$1,"* ]]; }
MODEL=tests/data/golden/long
BLOCK=16
CHUNK=2048
B=${G4_BUILD_DIR:-build}  # where the binaries are (a copy keeps a rebuild from touching the run)
RUN=$(mktemp -d /tmp/g4serve-longctx.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$RUN"
}
trap cleanup EXIT

GLOBAL_PAGES=$(( (TOTAL + BLOCK - 1) / BLOCK + (PREFIX + 64) / BLOCK + 64 ))
$B/coordinator/g4-coordinator --model "$MODEL" --tensor-parallel-size 2 --host 127.0.0.1 \
  --port 0 --port-file "$RUN/port" --http-port 0 --http-port-file "$RUN/http_port" \
  --metrics-port 0 --metrics-port-file "$RUN/metrics_port" --max-num-seqs 4 \
  --max-num-batched-tokens $CHUNK --num-global-pages $GLOBAL_PAGES --max-model-len "$TOTAL" \
  --health-interval 500ms 2>"$RUN/coordinator.log" &
pids+=($!)
for _ in $(seq 200); do [[ -s "$RUN/metrics_port" ]] && break; sleep 0.1; done
ADDR=127.0.0.1:$(cat "$RUN/port")
HTTP=127.0.0.1:$(cat "$RUN/http_port")
METRICS=127.0.0.1:$(cat "$RUN/metrics_port")
workers=()
for i in 0 1; do
  $B/worker/service/g4-worker --coordinator "$ADDR" --host 127.0.0.1 --port 0 --threads 1 \
    2>"$RUN/worker$i.log" &
  pids+=($!)
  workers+=($!)
done
for _ in $(seq 600); do grep -q ": READY" "$RUN/coordinator.log" && break; sleep 0.1; done
metric() {  # NAME [LABEL]: the first sample of NAME (with LABEL) on the coordinator
  curl -s "http://$METRICS/metrics" | grep "^$1{" | grep -- "${2:-}" | head -1 | awk '{print $NF}'
}
rss() { awk '/VmHWM/ {print $2 * 1024}' "/proc/$1/status"; }
echo "model $MODEL, $TOTAL tokens (prompt $((TOTAL - 8)) + 8), B=$BLOCK, C=$CHUNK"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
idle0=$(rss "${workers[0]}")
idle1=$(rss "${workers[1]}")
echo "worker RSS before the request: $idle0 / $idle1 B"

python3 - "$TOTAL" "$PREFIX" "$RUN" <<'EOF'
import json, random, sys
total, prefix, run = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(11)
ids = [2] + [rng.randrange(3, 512) for _ in range(total - 9)]
open(f"{run}/long.ids", "w").write(",".join(map(str, ids)) + "\n")
p = [2] + [rng.randrange(3, 512) for _ in range(prefix - 1)]
for name, tail in (("first", [rng.randrange(3, 512) for _ in range(16)]),
                   ("second", [rng.randrange(3, 512) for _ in range(16)])):
    json.dump({"model": "long", "prompt": p + tail, "max_tokens": 1, "temperature": 0},
              open(f"{run}/{name}.json", "w"))
EOF

start=$(date +%s.%N)
$B/tools/g4_client/g4-client --server "$ADDR" --prompt-tokens-file "$RUN/long.ids" \
  --max-tokens 8 --temperature 0 --timeout 7200s --print-tokens >"$RUN/served.out" 2>"$RUN/served.err"
end=$(date +%s.%N)
served=$(grep '^tokens:' "$RUN/served.out" | sed 's/tokens: //; s/[][ ]//g')
sleep 1.5  # a health round after the request: peak pages
ttft=$(metric g4serve_time_to_first_token_seconds_sum)
gpeak=$(metric g4serve_kv_cache_peak_pages 'pool="full"')
speak=$(metric g4serve_kv_cache_peak_pages 'pool="sliding"')
rss0=$(rss "${workers[0]}")
rss1=$(rss "${workers[1]}")
echo "request: $(cat "$RUN/served.err")"
python3 - "$TOTAL" "$ttft" "$start" "$end" "$gpeak" "$speak" "$BLOCK" "$CHUNK" <<'EOF'
import math, sys
total, ttft, start, end, g, s, B, C = sys.argv[1:9]
total, ttft, B, C = int(total), float(ttft), int(B), int(C)
prompt = total - 8
print(f"TTFT {ttft:.1f} s, prefill {prompt / ttft:.0f} tokens/s, whole request {float(end) - float(start):.1f} s")
print(f"peak global pages {float(g):.0f}, plan ceil(({total}-1)/{B}) = {math.ceil((total - 1) / B)} (ceil({total}/{B}) = {math.ceil(total / B)})")
print(f"peak sliding pages {float(s):.0f}, bound ceil((1024-1+{C})/{B})+1 = {math.ceil((1023 + C) / B) + 1}")
EOF
$B/tools/g4_plan/g4-plan --model "$MODEL" --cpu-ranks 2 --tensor-parallel-size 2 \
  --max-context "$TOTAL" --max-num-seqs 1 --max-num-batched-tokens $CHUNK --json >"$RUN/plan.json"
python3 - "$RUN/plan.json" "$rss0" "$rss1" "$GLOBAL_PAGES" "$BLOCK" "$idle0" "$idle1" <<'EOF'
import json, sys
plan = json.load(open(sys.argv[1]))
rss = [int(sys.argv[2]), int(sys.argv[3])]
pages, block = int(sys.argv[4]), int(sys.argv[5])
idle = [int(sys.argv[6]), int(sys.argv[7])]
for r, got, base in zip(plan["ranks"], rss, idle):
    m = r["memory"]
    weights, work = int(m["weights_bytes"]), int(m["activation_workspace_bytes"])
    kv_seq = int(r["kv_bytes_per_sequence_at_max_context"])
    reserve, dt = int(plan["runtime_reserve_bytes"]), int(plan["kv_dtype_bytes"])
    # The CPU backend holds weights and KV in fp32: scale the plan's 2-byte figures by 4/2. The
    # workspace includes the runtime reserve.
    predicted = weights * 4 // dt + work + kv_seq * 4 // dt
    print(f"rank {r.get('rank', 0)}: peak RSS {got / 2**20:.1f} MiB; plan (fp32) "
          f"{predicted / 2**20:.1f} MiB = weights {weights * 4 // dt / 2**20:.1f} + workspace "
          f"{(work - reserve) / 2**20:.1f} + KV of one {plan['max_context']}-token sequence "
          f"{kv_seq * 4 // dt / 2**20:.1f} + runtime reserve {reserve / 2**20:.1f}; "
          f"RSS / plan {got / predicted:.3f}; what the request added, RSS - idle RSS "
          f"{(got - base) / 2**20:.1f} MiB against the plan without the reserve "
          f"{(predicted - reserve) / 2**20:.1f} MiB: {(got - base) / (predicted - reserve):.3f}")
EOF

if phase generate; then
gstart=$(date +%s.%N)
local_out=$($B/tools/g4_generate/g4-generate --model "$MODEL" --prompt-tokens-file "$RUN/long.ids" \
  --max-new-tokens 8 --threads 2 | tail -1)
echo "g4-generate (one process, 2 threads): $(python3 -c "print(round($(date +%s.%N) - $gstart, 1))") s"
echo "served tokens     [$served]"
echo "g4-generate tokens $local_out"
[[ "[$served]" == "$(tr -d ' ' <<<"$local_out")" ]] && echo "greedy tokens: EQUAL" || echo "greedy tokens: DIFFERENT"
fi
phase prefix || exit 0

for name in first second; do
  t=$(curl -s -o "$RUN/$name.out" -w '%{time_total}' -H 'Content-Type: application/json' \
    --data @"$RUN/$name.json" "http://$HTTP/v1/completions")
  cached=$(python3 -c "import json; print(json.load(open('$RUN/$name.out'))['usage']['prompt_tokens_details']['cached_tokens'])")
  echo "prefix $PREFIX + 16: $name request ${t}s (max_tokens 1), cached_tokens $cached"
  eval "t_$name=$t"
done
python3 -c "print('second / first TTFT: %.4f' % ($t_second / $t_first))"
