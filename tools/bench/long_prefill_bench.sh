#!/usr/bin/env bash
# Decodes and short requests against a long prefill (docs/long_context.md): one g4-coordinator
# and two g4-workers (one TP=2 replica, --threads 1 each) serving the long-context checkpoint,
# loaded over gRPC by g4-load. Four runs, each on a fresh cluster:
#   streams        16 streams (64-token prompts, 300 output tokens) alone
#   streams+long   the same 16 streams; 2 s in, a LONG-token prompt arrives
#   short          16 short requests (64-token prompts, 8 output tokens) alone
#   short+long     the LONG-token prompt, and 1 s later the 16 short requests (during its prefill)
# and prints the streams' ITL p99 / TPOT, the short requests' TTFT and the long prompt's TTFT.
# G4_COORDINATOR / G4_WORKER select other binaries (e.g. a build of main, for "before").
#
#   bash tools/bench/long_prefill_bench.sh [LONG=32768] [MODEL=tests/data/golden/long]
set -euo pipefail
cd "$(dirname "$0")/../.."
LONG=${1:-32768}
MODEL=${2:-tests/data/golden/long}
B=build
COORDINATOR=${G4_COORDINATOR:-$B/coordinator/g4-coordinator}
WORKER=${G4_WORKER:-$B/worker/service/g4-worker}
LOAD=$B/tools/load_generator/g4-load
RUN=$(mktemp -d /tmp/g4serve-longbench.XXXXXX)
pids=()
stop_cluster() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_cluster; rm -rf "$RUN"' EXIT

start_cluster() {
  rm -f "$RUN/port"
  "$COORDINATOR" --model "$MODEL" --tensor-parallel-size 2 --host 127.0.0.1 --port 0 \
    --port-file "$RUN/port" --health-interval 200ms 2>"$RUN/coordinator.log" &
  pids+=($!)
  for _ in $(seq 200); do [[ -s "$RUN/port" ]] && break; sleep 0.1; done
  ADDR=127.0.0.1:$(cat "$RUN/port")
  for i in 0 1; do
    "$WORKER" --coordinator "$ADDR" --host 127.0.0.1 --port 0 --threads 1 \
      2>"$RUN/worker$i.log" &
    pids+=($!)
  done
  for _ in $(seq 300); do grep -q "READY" "$RUN/coordinator.log" 2>/dev/null && return; sleep 0.1; done
  echo "cluster did not become ready" >&2
  cat "$RUN"/*.log >&2
  exit 1
}

# Two different long prompts (a repeated one would hit the prefix cache).
python3 - "$LONG" "$RUN" <<'EOF'
import json, random, sys
n, run = int(sys.argv[1]), sys.argv[2]
for k in (1, 2):
    rng = random.Random(k)
    with open(f"{run}/long{k}.jsonl", "w") as f:
        f.write(json.dumps([2] + [rng.randrange(3, 512) for _ in range(n - 1)]) + "\n")
EOF

load() {  # NAME ARGS...: one g4-load run, JSON in $RUN/NAME.json
  local name=$1
  shift
  "$LOAD" --server "$ADDR" --vocab 512 --quiet --json "$RUN/$name.json" \
    --request-id-prefix "$name-" "$@" 2>>"$RUN/load.log" \
    || python3 -c "import json,sys; e=[x for x in json.load(open(sys.argv[1]))['errors'] if x]; \
print('g4-load $name: %d failed: %s' % (len(e), e[:1]))" "$RUN/$name.json" >&2
}
field() {  # FILE EXPR: a value from a g4-load JSON report
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(round($2, 1))" "$1"
}

echo "model $MODEL, long prompt $LONG tokens; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "binaries: $COORDINATOR, $WORKER"
STREAMS=(--num-requests 16 --concurrency 16 --request-rate inf --prompt-len 64 --output-len 300 --seed 1)
SHORT=(--num-requests 16 --request-rate inf --prompt-len 64 --output-len 8 --seed 2)

start_cluster
load streams "${STREAMS[@]}"
stop_cluster

start_cluster
load streams_long "${STREAMS[@]}" &
streams_pid=$!
sleep 2
load long_during_streams --prompt-file "$RUN/long1.jsonl" --num-requests 1 --output-len 4
wait "$streams_pid"
stop_cluster

start_cluster
load short "${SHORT[@]}"
stop_cluster

start_cluster
load long_with_short --prompt-file "$RUN/long2.jsonl" --num-requests 1 --output-len 4 &
long_pid=$!
sleep 1
load short_long "${SHORT[@]}"
wait "$long_pid"
stop_cluster

printf '%-44s %12s %12s\n' "" "alone" "with long"
printf '%-44s %12s %12s\n' "16 streams: ITL p99 (ms)" \
  "$(field "$RUN/streams.json" "j['itl_ms']['p99']")" "$(field "$RUN/streams_long.json" "j['itl_ms']['p99']")"
printf '%-44s %12s %12s\n' "16 streams: ITL max (ms)" \
  "$(field "$RUN/streams.json" "j['itl_ms']['max']")" "$(field "$RUN/streams_long.json" "j['itl_ms']['max']")"
printf '%-44s %12s %12s\n' "16 streams: TPOT mean (ms)" \
  "$(field "$RUN/streams.json" "j['tpot_ms']['mean']")" "$(field "$RUN/streams_long.json" "j['tpot_ms']['mean']")"
printf '%-44s %12s %12s\n' "16 short requests: TTFT median (ms)" \
  "$(field "$RUN/short.json" "j['ttft_ms']['median']")" "$(field "$RUN/short_long.json" "j['ttft_ms']['median']")"
printf '%-44s %12s %12s\n' "16 short requests: TTFT p99 (ms)" \
  "$(field "$RUN/short.json" "j['ttft_ms']['p99']")" "$(field "$RUN/short_long.json" "j['ttft_ms']['p99']")"
printf '%-44s %12s %12s\n' "long prompt: TTFT (ms) (with streams / short)" \
  "$(field "$RUN/long_during_streams.json" "j['ttft_ms']['max']")" "$(field "$RUN/long_with_short.json" "j['ttft_ms']['max']")"
