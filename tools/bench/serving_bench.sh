#!/usr/bin/env bash
# End-to-end serving benchmark on one machine: a g4-coordinator and two g4-workers (one TP=2
# replica) serving a checkpoint, loaded by g4-load over gRPC and over the OpenAI HTTP API with
# Poisson arrivals. Prints g4-load's tables and the workers' mean step time (from their
# Prometheus metrics), so the per-token overhead of the coordinator and the hops can be read
# off as ITL minus step time.
#
#   bash tools/bench/serving_bench.sh [MODEL_DIR] [NUM_REQUESTS] [RATE] [PROMPT_LEN] [OUTPUT_LEN]
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-tests/data/golden/dense}
N=${2:-64}
RATE=${3:-8}
PROMPT=${4:-64}
OUTPUT=${5:-32}
B=build
RUN=$(mktemp -d /tmp/g4serve-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$RUN"
}
trap cleanup EXIT

$B/coordinator/g4-coordinator --model "$MODEL" --tensor-parallel-size 2 --host 127.0.0.1 \
  --port 0 --port-file "$RUN/port" --http-port 0 --http-port-file "$RUN/http_port" \
  2>"$RUN/coordinator.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s "$RUN/port" && -s "$RUN/http_port" ]] && break; sleep 0.1; done
ADDR=127.0.0.1:$(cat "$RUN/port")
HTTP=127.0.0.1:$(cat "$RUN/http_port")
for i in 0 1; do
  $B/worker/service/g4-worker --coordinator "$ADDR" --host 127.0.0.1 --port 0 --threads 1 \
    --metrics-port 0 2>"$RUN/worker$i.log" &
  pids+=($!)
done
for _ in $(seq 100); do
  curl -sf "http://$HTTP/health" >/dev/null 2>&1 && break
  sleep 0.2
done
VOCAB=$(python3 -c "import json,sys; c=json.load(open('$MODEL/config.json')); print(c.get('text_config', c)['vocab_size'])")
NAME=$(basename "$MODEL")
echo "model $MODEL (vocab $VOCAB), $N requests at $RATE req/s, prompt $PROMPT, output $OUTPUT tokens"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
for backend in grpc http; do
  server=$ADDR
  [[ $backend == http ]] && server=$HTTP
  echo "== $backend =="
  $B/tools/load_generator/g4-load --backend "$backend" --server "$server" --model "$NAME" \
    --num-requests "$N" --request-rate "$RATE" --prompt-len "$PROMPT" --output-len "$OUTPUT" \
    --vocab "$VOCAB" --seed 1
done
echo "== worker step time (Prometheus) =="
for i in 0 1; do
  port=$(grep -o 'metrics on [0-9.]*:[0-9]*' "$RUN/worker$i.log" | head -1 | awk -F: '{print $NF}')
  [[ -n $port ]] || continue
  curl -s "http://127.0.0.1:$port/metrics" | awk -v w="$i" '
    /^g4serve_worker_step_duration_seconds_sum/ {s=$2} /^g4serve_worker_step_duration_seconds_count/ {c=$2}
    END { if (c > 0) printf "worker %s: %d steps, mean %.3f ms\n", w, c, 1000*s/c }'
done
