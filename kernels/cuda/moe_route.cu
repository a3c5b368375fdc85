// MoE routing, one warp per token (E <= 256: each lane holds up to 8 logits in registers):
// softmax over all experts in fp32, then k rounds of a warp arg-max (ties: lower expert id,
// as the reference), renormalize the chosen k to sum 1 (summed in selection order, as the
// reference) and multiply by per_expert_scale.
#include <math_constants.h>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/launch_internal.h"

namespace g4::cuda::internal {
namespace {

constexpr int kMaxPerLane = 8;  // 256 experts / 32 lanes
constexpr int kWarpsPerBlock = 4;

__global__ void RouteTopKKernel(int32_t* experts, float* weights, const float* logits,
                                const float* __restrict__ per_expert_scale, int64_t tokens,
                                int num_experts, int k) {
  const int lane = threadIdx.x & 31;
  const int64_t t = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + threadIdx.x / 32;
  if (t >= tokens) return;  // whole warps exit together
  const float* z = logits + t * num_experts;
  float p[kMaxPerLane];
  float mx = -CUDART_INF_F;
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) {
    const int e = lane + 32 * j;
    p[j] = e < num_experts ? z[e] : -CUDART_INF_F;
    mx = fmaxf(mx, p[j]);
  }
  mx = WarpMax(mx);
  float sum = 0.0f;
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) {
    const int e = lane + 32 * j;
    p[j] = e < num_experts ? expf(p[j] - mx) : 0.0f;
    sum += p[j];
  }
  sum = WarpSum(sum);
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) {
    const int e = lane + 32 * j;
    p[j] = e < num_experts ? p[j] / sum : -1.0f;  // -1: never chosen (probabilities are >= 0)
  }
  float top_sum = 0.0f;
  float chosen_p = 0.0f;  // lane j < k keeps the j-th choice
  int chosen_e = 0;
  for (int r = 0; r < k; ++r) {
    float best = -2.0f;
    int best_e = 0x7fffffff;
#pragma unroll
    for (int j = 0; j < kMaxPerLane; ++j) {
      const int e = lane + 32 * j;
      if (p[j] > best) {  // ascending e within a lane: strict > keeps the lower id on ties
        best = p[j];
        best_e = e;
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ob = __shfl_xor_sync(0xffffffffu, best, o);
      const int oe = __shfl_xor_sync(0xffffffffu, best_e, o);
      if (ob > best || (ob == best && oe < best_e)) {
        best = ob;
        best_e = oe;
      }
    }
    top_sum += best;  // same value and order in every lane
    if (lane == r) {
      chosen_p = best;
      chosen_e = best_e;
    }
    if ((best_e & 31) == lane) p[best_e / 32] = -1.0f;  // dynamic index: local memory, tiny
  }
  if (lane < k) {
    experts[t * k + lane] = chosen_e;
    weights[t * k + lane] = chosen_p / top_sum * per_expert_scale[chosen_e];
  }
}

}  // namespace

int LaunchRouteTopK(int32_t* experts, float* weights, const float* logits,
                    const float* per_expert_scale, int64_t tokens, int num_experts, int k,
                    void* stream) {
  if (tokens == 0) return 0;
  const int64_t blocks = (tokens + kWarpsPerBlock - 1) / kWarpsPerBlock;
  RouteTopKKernel<<<static_cast<unsigned>(blocks), 32 * kWarpsPerBlock, 0, AsStream(stream)>>>(
      experts, weights, logits, per_expert_scale, tokens, num_experts, k);
  return LaunchResult();
}

}  // namespace g4::cuda::internal
