// NeoX RoPE in place: one block per token; thread i of the half-width handles pair (i, i + D/2)
// for every head, computing cos/sin of float(p)·inv_freq[i] once (accurate sincosf, not the
// fast intrinsic: positions reach 10^5+ and the angle must match the fp32 reference).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/launch_internal.h"

namespace g4::cuda::internal {
namespace {

__global__ void RopeKernel(float* x, const int64_t* __restrict__ positions,
                           const float* __restrict__ inv_freq, int heads, int head_dim,
                           int64_t stride) {
  const int64_t t = blockIdx.x;
  const int half = head_dim / 2;
  const float p = static_cast<float>(positions[t]);
  float* xt = x + t * stride;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float angle = __fmul_rn(p, inv_freq[i]);  // no FMA contraction: the fp32 product
    float s, c;
    sincosf(angle, &s, &c);
    for (int h = 0; h < heads; ++h) {
      float* u = xt + static_cast<int64_t>(h) * head_dim;
      const float a = u[i];
      const float b = u[i + half];
      u[i] = a * c - b * s;
      u[i + half] = b * c + a * s;
    }
  }
}

}  // namespace

int LaunchRope(float* x, const int64_t* positions, const float* inv_freq, int64_t tokens,
               int heads, int head_dim, int64_t stride, void* stream) {
  if (tokens == 0) return 0;
  const int threads = head_dim / 2 < 256 ? ((head_dim / 2 + 31) / 32) * 32 : 256;
  RopeKernel<<<static_cast<unsigned>(tokens), threads, 0, AsStream(stream)>>>(
      x, positions, inv_freq, heads, head_dim, stride);
  return LaunchResult();
}

}  // namespace g4::cuda::internal
