// Prefill attention (many queries of one sequence), flash-attention style, fp32 compute.
//
// Grid (ceil(num_queries / 16), num_heads), 256 threads, dynamic shared memory:
//   Q tile [16][D+4], K tile [32][D+4], V tile [32][D], P [16][32] (+ m, l, alpha per row)
//   = 166,848 bytes for D = 512 (fits the 227 KB opt-in limit), 84,928 bytes for D = 256.
// The +4 float pad makes the float4 K-row reads of a quarter warp hit 32 distinct banks.
// Per key tile (only tiles inside the block's visible span are visited: causal and sliding
// window both skip whole tiles):
//   S = Q·Kᵀ: thread t computes rows t/32 and t/32 + 8 for key t%32, masks by position;
//   online softmax in registers: warp w owns rows w and w+8 (a row of 32 keys = one warp);
//   O += P·V: thread t owns row t/16 and columns t%16 + 16·i.
//
// K derived from V (AttentionShape::k_derive): the K tile is loaded from the V rows, multiplied
// by k_norm on the way into shared memory, then its rotated pairs are rotated in place (one
// thread per (key, pair)) before the scores; the V tile is loaded as usual.
//
// Where the tensor cores go (next slice): Q·Kᵀ and P·V become bf16 mma — wgmma.mma_async
// m64nNk16 with a 64-row query tile per warpgroup (FA3 layout), K/V tiles brought in by TMA
// into a 2-stage ring (bf16 halves the smem: 64×512 Q + 2×(64×512) K/V stages ≈ 192 KB), or
// mma.sync m16n8k16 as the simpler Ampere-style step. GQA: one block per KV head processing
// its G query heads would read each K/V tile once instead of G times (today: G times, from L2).
#include <math_constants.h>

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/launch_internal.h"

namespace g4::cuda::internal {
namespace {

constexpr int kThreads = 256;
constexpr int kBlockM = 16;
constexpr int kBlockN = 32;

template <int D>
constexpr int SmemFloats() {
  return kBlockM * (D + 4) + kBlockN * (D + 4) + kBlockN * D + kBlockM * kBlockN + 3 * kBlockM;
}

template <int D>
__global__ void __launch_bounds__(kThreads)
    PrefillKernel(float* out, const float* __restrict__ q, const float* __restrict__ k,
                  const float* __restrict__ v, AttentionShape s) {
  constexpr int kLd = D + 4;
  constexpr int kCols = D / 16;
  extern __shared__ __align__(16) float smem[];
  float* q_s = smem;
  float* k_s = q_s + kBlockM * kLd;
  float* v_s = k_s + kBlockN * kLd;
  float* p_s = v_s + kBlockN * D;
  float* m_s = p_s + kBlockM * kBlockN;
  float* l_s = m_s + kBlockM;
  float* alpha_s = l_s + kBlockM;

  const int q0 = blockIdx.x * kBlockM;
  const int h = blockIdx.y;
  const int kvh = h / (s.num_heads / s.num_kv_heads);
  const int nq = s.num_queries - q0 < kBlockM ? s.num_queries - q0 : kBlockM;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x / 32;
  const bool derive = s.k_derive.k_norm != nullptr;

  // Q tile, pre-scaled.
  for (int i = threadIdx.x; i < kBlockM * D / 4; i += kThreads) {
    const int r = i / (D / 4);
    const int c = i % (D / 4);
    float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
    if (r < nq) {
      x = reinterpret_cast<const float4*>(q + (q0 + r) * s.q_stride +
                                          static_cast<int64_t>(h) * D)[c];
      x = make_float4(x.x * s.scale, x.y * s.scale, x.z * s.scale, x.w * s.scale);
    }
    reinterpret_cast<float4*>(q_s + r * kLd)[c] = x;
  }
  if (threadIdx.x < kBlockM) {
    m_s[threadIdx.x] = -CUDART_INF_F;
    l_s[threadIdx.x] = 0.0f;
  }

  int64_t span_lo, span_hi, unused;
  VisibleKeys(s.q_pos0 + q0, s.k_pos0, s.num_keys, s.window, &span_lo, &unused);
  VisibleKeys(s.q_pos0 + q0 + nq - 1, s.k_pos0, s.num_keys, s.window, &unused, &span_hi);

  float acc[kCols];
#pragma unroll
  for (int i = 0; i < kCols; ++i) acc[i] = 0.0f;
  const int pv_row = threadIdx.x / 16;
  const int pv_col = threadIdx.x % 16;

  for (int64_t k0 = span_lo; k0 < span_hi; k0 += kBlockN) {
    __syncthreads();  // previous tile fully consumed (and Q/m/l initialized on the first)
    for (int i = threadIdx.x; i < kBlockN * D / 4; i += kThreads) {
      const int j = i / (D / 4);
      const int c = i % (D / 4);
      float4 kx = make_float4(0.f, 0.f, 0.f, 0.f);
      float4 vx = kx;
      if (k0 + j < span_hi) {
        const int64_t off = (k0 + j) * s.kv_stride + static_cast<int64_t>(kvh) * D;
        vx = reinterpret_cast<const float4*>(v + off)[c];
        if (derive) {
          const float4 w = reinterpret_cast<const float4*>(s.k_derive.k_norm)[c];
          kx = make_float4(vx.x * w.x, vx.y * w.y, vx.z * w.z, vx.w * w.w);
        } else {
          kx = reinterpret_cast<const float4*>(k + off)[c];
        }
      }
      reinterpret_cast<float4*>(k_s + j * kLd)[c] = kx;
      reinterpret_cast<float4*>(v_s + j * D)[c] = vx;
    }
    __syncthreads();
    if (derive) {  // rotate the derived K tile: pair i of key j at position k_pos0 + k0 + j
      for (int i = threadIdx.x; i < kBlockN * (D / 2); i += kThreads) {
        const int j = i / (D / 2);
        const int pair = i % (D / 2);
        if (k0 + j < span_hi) {
          RotatePair(k_s[j * kLd + pair], k_s[j * kLd + pair + D / 2],
                     s.k_derive.inv_freq[pair], static_cast<float>(s.k_pos0 + k0 + j));
        }
      }
      __syncthreads();
    }
    // S = Q·Kᵀ, mask, online softmax: warp w owns rows w and w + 8, lane = key.
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = warp + 8 * half;
      const float4* qr = reinterpret_cast<const float4*>(q_s + r * kLd);
      const float4* kr = reinterpret_cast<const float4*>(k_s + lane * kLd);
      float dot = 0.0f;
#pragma unroll 8
      for (int c = 0; c < D / 4; ++c) {
        const float4 a = qr[c];
        const float4 b = kr[c];
        dot += a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
      }
      const int64_t qp = s.q_pos0 + q0 + r;
      const int64_t kp = s.k_pos0 + k0 + lane;
      const bool visible = r < nq && k0 + lane < span_hi && kp <= qp &&
                           (s.window <= 0 || qp - kp < s.window);
      const float sc = visible ? dot : -CUDART_INF_F;
      const float m_old = m_s[r];
      const float m_new = fmaxf(m_old, WarpMax(sc));
      const float p = visible ? expf(sc - m_new) : 0.0f;
      const float sum = WarpSum(p);
      p_s[r * kBlockN + lane] = p;
      if (lane == 0) {
        const float alpha = m_old == -CUDART_INF_F ? 0.0f : expf(m_old - m_new);
        alpha_s[r] = alpha;
        l_s[r] = l_s[r] * alpha + sum;
        m_s[r] = m_new;
      }
    }
    __syncthreads();
    // O = O·alpha + P·V.
    const float alpha = alpha_s[pv_row];
#pragma unroll
    for (int i = 0; i < kCols; ++i) acc[i] *= alpha;
    const float* pr = p_s + pv_row * kBlockN;
#pragma unroll 4
    for (int j = 0; j < kBlockN; ++j) {
      const float p = pr[j];
      const float* vr = v_s + j * D + pv_col;
#pragma unroll
      for (int i = 0; i < kCols; ++i) acc[i] += p * vr[16 * i];
    }
  }
  __syncthreads();
  if (pv_row < nq) {
    const float l = l_s[pv_row];
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;  // no visible key: zeros, as the reference
    float* o = out + (q0 + pv_row) * s.q_stride + static_cast<int64_t>(h) * D + pv_col;
#pragma unroll
    for (int i = 0; i < kCols; ++i) o[16 * i] = acc[i] * inv;
  }
}

template <int D>
int Launch(float* out, const float* q, const float* k, const float* v, const AttentionShape& s,
           cudaStream_t st) {
  constexpr int kBytes = SmemFloats<D>() * static_cast<int>(sizeof(float));
  const cudaError_t err = cudaFuncSetAttribute(
      PrefillKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes);
  if (err != cudaSuccess) return static_cast<int>(err);
  const dim3 grid((s.num_queries + kBlockM - 1) / kBlockM, s.num_heads);
  PrefillKernel<D><<<grid, kThreads, kBytes, st>>>(out, q, k, v, s);
  return LaunchResult();
}

}  // namespace

int LaunchAttentionPrefill(float* out, const float* q, const float* k, const float* v,
                           const AttentionShape& s, void* stream) {
  if (s.num_queries == 0) return 0;
  return s.head_dim == 256 ? Launch<256>(out, q, k, v, s, AsStream(stream))
                           : Launch<512>(out, q, k, v, s, AsStream(stream));
}

}  // namespace g4::cuda::internal
