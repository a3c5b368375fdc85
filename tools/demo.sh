#!/usr/bin/env bash
# The main job: set up, build, start a g4-coordinator and two g4-workers (one tensor-parallel
# replica, TP=2) on loopback serving the embedded tiny Gemma 4 checkpoint, send real requests
# through the public gRPC API with g4-client, print the generated text, and shut down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh

MODEL=tests/data/golden/dense
RUN=$(mktemp -d /tmp/g4serve-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$RUN"
}
trap cleanup EXIT

./build/coordinator/g4-coordinator --model "$MODEL" --tensor-parallel-size 2 \
  --host 127.0.0.1 --port 0 --port-file "$RUN/port" 2>"$RUN/coordinator.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s "$RUN/port" ]] && break; sleep 0.1; done
[[ -s "$RUN/port" ]] || { cat "$RUN/coordinator.log"; exit 1; }
ADDR=127.0.0.1:$(cat "$RUN/port")
echo "coordinator on $ADDR"
for i in 0 1; do
  ./build/worker/service/g4-worker --coordinator "$ADDR" --host 127.0.0.1 --port 0 --threads 1 \
    2>"$RUN/worker$i.log" &
  pids+=($!)
done

# Wait for the replica (the coordinator answers UNAVAILABLE until it is loaded).
for _ in $(seq 100); do
  if ./build/tools/g4_client/g4-client --server "$ADDR" --prompt-tokens 2 --max-tokens 1 \
       --timeout 2s >/dev/null 2>&1; then break; fi
  sleep 0.2
done

echo "replica ready; two requests through the public gRPC API (g4serve.v1.Inference/Generate)."
echo "(The embedded model has random weights: its text is gibberish, made by the real pipeline.)"
set -x
./build/tools/g4_client/g4-client --server "$ADDR" --chat "Tell me a story about a robot." \
  --max-tokens 24 --print-tokens
./build/tools/g4_client/g4-client --server "$ADDR" --prompt "<bos>The capital of France is" \
  --max-tokens 16 --temperature 0.8 --seed 7
set +x
