// Device helpers shared by the kernels in this directory (CUDA code only).
#ifndef G4SERVE_KERNELS_CUDA_COMMON_CUH_
#define G4SERVE_KERNELS_CUDA_COMMON_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace g4::cuda::internal {

inline cudaStream_t AsStream(void* s) { return static_cast<cudaStream_t>(s); }

// Launch status: the launch-configuration error, if any (0 = success).
inline int LaunchResult() { return static_cast<int>(cudaGetLastError()); }

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Weight loads: fp32 or bf16 (widened exactly to fp32).
__device__ __forceinline__ float LoadWeight(const float* w, int64_t i) { return w[i]; }
__device__ __forceinline__ float LoadWeight(const __nv_bfloat16* w, int64_t i) {
  return __bfloat162float(w[i]);
}

// Grid size for a grid-stride loop over n items with `threads` per block.
inline int GridFor(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks > 132 * 16) blocks = 132 * 16;  // 16 blocks per SM on an H100 is plenty
  return blocks < 1 ? 1 : static_cast<int>(blocks);
}

}  // namespace g4::cuda::internal

#endif  // G4SERVE_KERNELS_CUDA_COMMON_CUH_
