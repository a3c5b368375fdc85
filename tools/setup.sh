#!/usr/bin/env bash
# Installs everything g4serve needs to build and test on Debian bookworm. Idempotent: when every
# package is already installed it only checks (about a second).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git
  libabsl-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  prometheus-cpp-dev libgloo-dev nlohmann-json3-dev libopenblas-dev
  libgtest-dev libgmock-dev libbenchmark-dev liblzma-dev libcpp-httplib-dev
  libssl-dev openssl  # API keys' SHA-256 (libcrypto); test certificates (docs/security.md)
  prometheus  # promtool + server for the metrics tests; its service is not needed (docs/metrics.md)
  python3 python3-venv
  python3-yaml yamllint  # tests/deploy/validate.sh (kubectl, when present, renders the overlays too)
  # tools/fuzz.sh: clang with libFuzzer and the sanitizer runtimes; llvm-symbolizer (llvm-14)
  # gives sanitizer reports file:line (tools/test.sh's ASan run too). docs/fuzzing.md.
  clang-14 libclang-rt-14-dev llvm-14
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
else
  echo "setup: all ${#packages[@]} packages present"
fi
