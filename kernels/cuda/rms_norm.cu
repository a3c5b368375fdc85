// RMSNorm, one 256-thread block per row: float4 loads, fp32 sum of squares reduced by warp
// shuffles then across the 8 warps through shared memory. The fused variant adds x into the
// residual stream first and normalizes the sum (the pre-norm of the next sublayer).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/launch_internal.h"

namespace g4::cuda::internal {
namespace {

constexpr int kThreads = 256;

template <typename W>
__global__ void RmsNormKernel(float* y, float* __restrict__ residual,
                              const float* x, const W* __restrict__ w, int64_t n, float eps) {
  const int64_t row = blockIdx.x;
  const float4* xr = reinterpret_cast<const float4*>(x + row * n);
  float4* rr = residual ? reinterpret_cast<float4*>(residual + row * n) : nullptr;
  const float4* src = rr ? rr : xr;
  const int64_t n4 = n / 4;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < n4; i += kThreads) {
    float4 a = xr[i];
    if (rr != nullptr) {
      const float4 r = rr[i];
      a = make_float4(a.x + r.x, a.y + r.y, a.z + r.z, a.w + r.w);
      rr[i] = a;  // each element is read and written by the same thread: no race
    }
    ss += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w;
  }
  __shared__ float partial[kThreads / 32];
  ss = WarpSum(ss);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x / 32] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float t = threadIdx.x < kThreads / 32 ? partial[threadIdx.x] : 0.0f;
    t = WarpSum(t);
    if (threadIdx.x == 0) partial[0] = t;
  }
  __syncthreads();
  const float inv = powf(partial[0] / static_cast<float>(n) + eps, -0.5f);
  float4* yr = reinterpret_cast<float4*>(y + row * n);
  for (int64_t i = threadIdx.x; i < n4; i += kThreads) {
    const float4 a = src[i];
    float4 o = make_float4(a.x * inv, a.y * inv, a.z * inv, a.w * inv);
    if (w != nullptr) {
      o.x *= LoadWeight(w, 4 * i);
      o.y *= LoadWeight(w, 4 * i + 1);
      o.z *= LoadWeight(w, 4 * i + 2);
      o.w *= LoadWeight(w, 4 * i + 3);
    }
    yr[i] = o;
  }
}

}  // namespace

int LaunchRmsNorm(float* y, float* residual, const float* x, const void* w, bool w_bf16,
                  int64_t rows, int64_t n, float eps, void* stream) {
  if (rows == 0) return 0;
  const dim3 grid(static_cast<unsigned>(rows));
  if (w_bf16) {
    RmsNormKernel<__nv_bfloat16><<<grid, kThreads, 0, AsStream(stream)>>>(
        y, residual, x, static_cast<const __nv_bfloat16*>(w), n, eps);
  } else {
    RmsNormKernel<float><<<grid, kThreads, 0, AsStream(stream)>>>(
        y, residual, x, static_cast<const float*>(w), n, eps);
  }
  return LaunchResult();
}

}  // namespace g4::cuda::internal
