#!/usr/bin/env bash
# The HTTP front door under 1,000 slow/idle connections: starts a g4-coordinator and one
# g4-worker serving the tiny test model on loopback, then runs g4-bench-http-slow-clients, which
# prints p50/p99/max latency of /health and of a small completion, unloaded and with the slow and
# idle connections open, in the same run (docs/performance.md).
#
#   bash tools/bench/http_slow_clients_bench.sh [SLOW] [IDLE] [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/../.."
SLOW=${1:-500}
IDLE=${2:-500}
REQUESTS=${3:-100}
MODEL=tests/data/golden/dense
B=build
RUN=$(mktemp -d /tmp/g4serve-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$RUN"
}
trap cleanup EXIT

$B/coordinator/g4-coordinator --model "$MODEL" --host 127.0.0.1 --port 0 --port-file "$RUN/port" \
  --http-port 0 --http-port-file "$RUN/http_port" 2>"$RUN/coordinator.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s "$RUN/port" && -s "$RUN/http_port" ]] && break; sleep 0.1; done
$B/worker/service/g4-worker --coordinator "127.0.0.1:$(cat "$RUN/port")" --host 127.0.0.1 \
  --port 0 --threads 1 2>"$RUN/worker.log" &
pids+=($!)
HTTP_PORT=$(cat "$RUN/http_port")
for _ in $(seq 300); do
  curl -sf "http://127.0.0.1:$HTTP_PORT/health" >/dev/null 2>&1 && break
  sleep 0.2
done
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
$B/tools/bench/g4-bench-http-slow-clients --port="$HTTP_PORT" --slow="$SLOW" --idle="$IDLE" \
  --requests="$REQUESTS" --model=dense
