// Greedy sampling: arg-max of each logits row (lowest id on ties; NaN never wins), one
// 1024-thread block per row. float4 loads; each thread keeps its best (value, id), then a warp
// shuffle and a shared-memory round reduce with the same tie rule. A 262144-wide fp32 row is
// 1 MiB: a single block streams it in a few microseconds; a split-row two-pass variant would
// only matter for batch-1 latency at the microsecond level.
#include <math_constants.h>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/launch_internal.h"

namespace g4::cuda::internal {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ void Better(float v, int64_t i, float* best, int64_t* best_i) {
  // v > best is false for NaN v; ties go to the lower index.
  if (v > *best || (v == *best && i < *best_i)) {
    *best = v;
    *best_i = i;
  }
}

__global__ void ArgMaxKernel(int32_t* ids, const float* logits, int64_t n) {
  const float* row = logits + blockIdx.x * n;
  float best = -CUDART_INF_F;
  int64_t best_i = n;  // sentinel: larger than any index
  const bool aligned = (n % 4) == 0;
  if (aligned) {
    const float4* r4 = reinterpret_cast<const float4*>(row);
    for (int64_t i = threadIdx.x; i < n / 4; i += kThreads) {
      const float4 a = r4[i];
      Better(a.x, 4 * i, &best, &best_i);
      Better(a.y, 4 * i + 1, &best, &best_i);
      Better(a.z, 4 * i + 2, &best, &best_i);
      Better(a.w, 4 * i + 3, &best, &best_i);
    }
  } else {
    for (int64_t i = threadIdx.x; i < n; i += kThreads) Better(row[i], i, &best, &best_i);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, o);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, best_i, o);
    Better(ob, oi, &best, &best_i);
  }
  __shared__ float sv[kThreads / 32];
  __shared__ int64_t si[kThreads / 32];
  if ((threadIdx.x & 31) == 0) {
    sv[threadIdx.x / 32] = best;
    si[threadIdx.x / 32] = best_i;
  }
  __syncthreads();
  if (threadIdx.x < 32) {
    best = sv[threadIdx.x];
    best_i = si[threadIdx.x];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ob = __shfl_xor_sync(0xffffffffu, best, o);
      const int64_t oi = __shfl_xor_sync(0xffffffffu, best_i, o);
      Better(ob, oi, &best, &best_i);
    }
    // An all-NaN (or all -inf) row: best_i stays n for NaN; report id 0 then.
    if (threadIdx.x == 0) ids[blockIdx.x] = static_cast<int32_t>(best_i < n ? best_i : 0);
  }
}

}  // namespace

int LaunchArgMax(int32_t* ids, const float* logits, int64_t rows, int64_t n, void* stream) {
  if (rows == 0) return 0;
  ArgMaxKernel<<<static_cast<unsigned>(rows), kThreads, 0, AsStream(stream)>>>(ids, logits, n);
  return LaunchResult();
}

}  // namespace g4::cuda::internal
