#!/usr/bin/env bash
# Soak (not CI): a g4-coordinator and three single-rank replicas serve Poisson load (at most
# CONCURRENCY requests in flight, as clients with a connection pool) at ~80% of the capacity
# measured first, for DURATION seconds, while a worker is SIGKILLed (and restarted
# on its address after 5 s) every KILL_EVERY seconds, alternating between two of them. Prints,
# and writes to OUT/summary.txt:
#  * requests sent / failed (must be 0: a healthy replica always exists and streams migrate),
#  * migrations and replica recoveries (the coordinator's metrics), time to re-form per kill,
#  * memory of the coordinator and of the never-killed worker: the median resident set (VmRSS)
#    and its anonymous part (RssAnon: the heap and stacks, what a leak would grow; the rest is
#    shared-library pages, paged in as code runs for the first time) over the first minutes after
#    warm-up and over the last minutes (must stay within 5%),
#  * running sequences and KV usage once the load stopped (must be 0).
#
#   bash tools/bench/soak.sh [DURATION_S=1800] [KILL_EVERY_S=300] [MODEL=tests/data/golden/dense]
#                            [OUT=/tmp/g4-soak]
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-1800}
KILL_EVERY=${2:-300}
MODEL=${3:-tests/data/golden/dense}
OUT=${4:-/tmp/g4-soak}
B=${G4_BUILD_DIR:-build}  # where the binaries are (a copy keeps a rebuild from touching the soak)
PROMPT=32
OUTPUT=64
CONCURRENCY=32  # clients: requests beyond this many in flight wait (no unbounded backlog)
VOCAB=$(python3 -c "import json; c = json.load(open('$MODEL/config.json')); print(c.get('text_config', c)['vocab_size'])")
mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/*.json "$OUT"/*.csv "$OUT"/*port* "$OUT/summary.txt"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

$B/coordinator/g4-coordinator --model "$MODEL" --host 127.0.0.1 --port 0 \
  --port-file "$OUT/port" --http-port 0 --http-port-file "$OUT/http_port" --metrics-port 0 \
  --metrics-port-file "$OUT/metrics_port" --health-interval 500ms --health-timeout 2s \
  2>>"$OUT/coordinator.log" &
coord=$!
pids+=($coord)
for _ in $(seq 200); do
  [[ -s "$OUT/port" && -s "$OUT/http_port" && -s "$OUT/metrics_port" ]] && break
  sleep 0.1
done
PORT=$(cat "$OUT/port")
HTTP=$(cat "$OUT/http_port")
METRICS=$(cat "$OUT/metrics_port")

declare -A wpid wport
start_worker() {  # start_worker I PORT
  $B/worker/service/g4-worker --coordinator "127.0.0.1:$PORT" --host 127.0.0.1 --port "$2" \
    --threads 1 --heartbeat-interval 1s 2>>"$OUT/worker$1.log" &
  wpid[$1]=$!
  pids+=($!)
}
for i in 0 1 2; do start_worker $i 0; done
for i in 0 1 2; do
  for _ in $(seq 100); do
    wport[$i]=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$OUT/worker$i.log" | tail -1 | cut -d: -f2 || true)
    [[ -n "${wport[$i]}" ]] && break
    sleep 0.1
  done
done

ready() { curl -s "127.0.0.1:$HTTP/health" | python3 -c \
  'import json,sys; print(json.load(sys.stdin).get("replicas_ready", 0))' 2>/dev/null || echo 0; }
wait_ready() {  # wait_ready N TIMEOUT_S -> seconds it took
  local start=$SECONDS
  while (( $(ready) < $1 )); do
    (( SECONDS - start > $2 )) && { echo "timeout"; return; }
    sleep 0.2
  done
  echo $((SECONDS - start))
}
metric() {  # metric NAME_REGEX -> sum of the matching samples
  curl -s "127.0.0.1:$METRICS/metrics" | awk -v re="^$1" \
    '$0 ~ re && $0 !~ /^#/ { s += $NF } END { printf "%g\n", s + 0 }'
}
mem_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
mem_kbs() { echo "$(mem_kb "$1" VmRSS),$(mem_kb "$1" RssAnon)"; }

echo "soak: cluster up? $(wait_ready 3 60) s; coordinator pid $coord"

# Capacity: saturated closed loop for ~60 s.
$B/tools/load_generator/g4-load --server "127.0.0.1:$PORT" --num-requests 300 \
  --request-rate inf --concurrency $CONCURRENCY --prompt-len $PROMPT --output-len $OUTPUT --vocab "$VOCAB" \
  --json "$OUT/capacity.json" --quiet 2>>"$OUT/load.log" || true
CAP=$(python3 -c "import json; print(json.load(open('$OUT/capacity.json'))['request_throughput'])")
RATE=$(python3 -c "print(round(0.8 * $CAP, 3))")
N=$(python3 -c "print(int($RATE * $DURATION))")
echo "soak: capacity $CAP req/s ($PROMPT-token prompts, $OUTPUT tokens out); soaking at $RATE req/s, $N requests, ${DURATION} s, a worker killed every ${KILL_EVERY} s"

migrations0=$(metric 'g4serve_request_migrations_total')
$B/tools/load_generator/g4-load --server "127.0.0.1:$PORT" --num-requests "$N" \
  --request-rate "$RATE" --concurrency $CONCURRENCY --prompt-len $PROMPT --output-len $OUTPUT \
  --vocab "$VOCAB" \
  --json "$OUT/soak.json" \
  --quiet 2>>"$OUT/load.log" &
load=$!
pids+=($load)

echo "t_s,coordinator_rss_kb,coordinator_anon_kb,worker2_rss_kb,worker2_anon_kb,replicas_ready" \
  > "$OUT/rss.csv"
start=$SECONDS
next_kill=$KILL_EVERY
victim=0
: > "$OUT/kills.txt"
while kill -0 $load 2>/dev/null; do
  t=$((SECONDS - start))
  echo "$t,$(mem_kbs $coord),$(mem_kbs ${wpid[2]}),$(ready)" >> "$OUT/rss.csv"
  if (( t >= next_kill && t < DURATION - 30 )); then
    kill -9 "${wpid[$victim]}" 2>/dev/null || true
    sleep 5
    start_worker $victim "${wport[$victim]}"
    took=$(wait_ready 3 120)
    echo "t=${t}s: killed worker $victim, restarted after 5 s; 3 replicas ready ${took} s after the restart" | tee -a "$OUT/kills.txt"
    victim=$((1 - victim))
    next_kill=$((next_kill + KILL_EVERY))
  fi
  sleep 10
done
wait $load && load_rc=0 || load_rc=$?
sleep 5  # idle: the health loop refreshes the engine gauges

python3 - "$OUT" "$load_rc" "$(metric 'g4serve_request_migrations_total')" "$migrations0" \
  "$(metric 'g4serve_replica_recoveries_total')" "$(metric 'g4serve_num_requests_running')" \
  "$(metric 'g4serve_num_requests_waiting')" "$(metric 'g4serve_kv_cache_usage_perc')" <<'EOF' | tee "$OUT/summary.txt"
import csv, json, sys
out, rc, mig, mig0, rec, running, waiting, kv = sys.argv[1:9]
s = json.load(open(f"{out}/soak.json"))
rows = list(csv.DictReader(open(f"{out}/rss.csv")))
# Medians over a window after the warm-up (2 minutes) and over the last window of the run: one
# sample moves by a few hundred KiB with the requests in flight at that instant.
end_t = int(rows[-1]["t_s"])
window = max(30, min(300, (end_t - 120) // 3))
first = [r for r in rows if 120 <= int(r["t_s"]) < 120 + window] or rows[:1]
last = [r for r in rows if int(r["t_s"]) > end_t - window] or rows[-1:]
def median(rs, key):
    v = sorted(int(r[key]) for r in rs)
    return v[len(v) // 2]
def growth(key):
    a, b = median(first, key), median(last, key)
    return (f"{a / 1024:.1f} MiB (median, {first[0]['t_s']}-{first[-1]['t_s']} s) -> {b / 1024:.1f} MiB "
            f"({last[0]['t_s']}-{last[-1]['t_s']} s): {100.0 * (b - a) / max(a, 1):+.1f}%")
print(f"requests: {s['completed'] + s['failed']} sent, {s['completed']} ok, {s['failed']} failed"
      f" (g4-load exit {rc}); {s['output_throughput']:.1f} output tok/s, TTFT p99 {s['ttft_ms']['p99']:.0f} ms,"
      f" ITL p99 {s['itl_ms']['p99']:.1f} ms")
print(f"migrations: {float(mig) - float(mig0):.0f}; replica recoveries: {float(rec):.0f}")
for line in open(f"{out}/kills.txt"):
    print("  " + line.strip())
print(f"coordinator RSS: {growth('coordinator_rss_kb')}; anonymous {growth('coordinator_anon_kb')}")
print(f"worker 2 (never killed) RSS: {growth('worker2_rss_kb')}; anonymous {growth('worker2_anon_kb')}")
print(f"idle after the load: running {running}, waiting {waiting}, KV usage {kv}")
EOF
