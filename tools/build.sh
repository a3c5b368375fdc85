#!/usr/bin/env bash
# Configures and builds g4serve with Ninja:
#   tools/build.sh        build/       Release (CUDA kernels too when nvcc is found)
#   tools/build.sh asan   build-asan/  RelWithDebInfo with ASan + UBSan on every object, no CUDA
#                                      (tools/test.sh runs the whole ctest suite there too)
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache (when installed) hashes paths relative to the checkout, so clones share the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
case "${1:-release}" in
  release)
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON >/dev/null
    cmake --build build -j "$(nproc)"
    ;;
  asan)
    # kernels/cuda is skipped: nvcc objects cannot carry the sanitizers, and the CUDA code never
    # runs without a GPU anyway.
    # -O1 with line tables only (-g1): the usual sanitizer setting, and much less to compile and
    # link than RelWithDebInfo's full -g on 2 CI cores; reports still carry file:line.
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON \
      -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -fno-omit-frame-pointer" \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -fno-omit-frame-pointer" \
      -DG4_ENABLE_CUDA=OFF -DG4_SANITIZE=address,undefined >/dev/null
    cmake --build build-asan -j "$(nproc)"
    ;;
  *)
    echo "usage: tools/build.sh [release|asan]" >&2
    exit 2
    ;;
esac
