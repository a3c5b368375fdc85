// GeGLU: out = gelu_tanh(gate) · up, the reference's formula 0.5·z·(1 + tanh(u))·up with
// u = √(2/π)·(z + 0.044715·z³); tanhf is the accurate libdevice tanh.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/launch_internal.h"

namespace g4::cuda::internal {
namespace {

__global__ void GeluTanhMulKernel(float* out, const float* gate, const float* up, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float z = gate[i];
    const float u = kSqrt2OverPi * (z + 0.044715f * z * z * z);
    out[i] = 0.5f * z * (1.0f + tanhf(u)) * up[i];
  }
}

}  // namespace

int LaunchGeluTanhMul(float* out, const float* gate, const float* up, int64_t n, void* stream) {
  if (n == 0) return 0;
  GeluTanhMulKernel<<<GridFor(n, 256), 256, 0, AsStream(stream)>>>(out, gate, up, n);
  return LaunchResult();
}

}  // namespace g4::cuda::internal
