// Decode attention (one query per sequence), flash-decoding split-K.
//
// Kernel 1, grid (num_kv_heads, num_splits), 256 threads: a block owns one KV head and a
// contiguous chunk of the visible keys, and processes ALL the query heads of that KV head's GQA
// group together (G <= 8), so each K/V row is read from HBM once per group, not once per head.
// Per tile of 32 keys:
//   1. scores: warp w takes keys w, w+8, w+16, w+24; lanes split head_dim (float4), dot with the
//      G query rows held in shared memory, warp-shuffle sums -> s[G][32] in shared memory;
//   2. online softmax: warp g updates head g's running max m and sum l, turns s into p and
//      publishes the rescale factor alpha;
//   3. P·V: thread t owns columns t, t+256 (head_dim / 256 of them) for all G heads, reads each
//      V element once and updates G accumulators.
// The block writes its unnormalized partial output plus (m, l) per head to the workspace.
// Kernel 2, grid (num_heads), 256 threads: combines the splits, o = Σ e^(m_s−M)·o_s / Σ e^(m_s−M)·l_s.
//
// fp32 K/V and fp32 FMA: decode is bandwidth-bound (one query row per KV row read), so tensor
// cores buy little here; the next steps are bf16/fp8 KV (halving/quartering the bytes), a
// block-table (paged) variant, and batching many sequences into one launch.
//
// K derived from V (AttentionShape::k_derive, the k_eq_v global layers): step 1 reads the V row
// instead of a K row and forms K in registers, u = V ⊙ k_norm, then rotates the pairs (i, i+D/2)
// with a nonzero inv_freq at the key's position (angle __fmul_rn(float(p), inv_freq[i]), accurate
// sincosf, as rope.cu). A lane's float4s i and i + kVec/2 hold both halves of its pairs, so the
// rotation needs no data exchange. The K row is never read: the block reads only V, once for the
// scores and once for P·V (the second read mostly from L2).
#include <math_constants.h>

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/launch_internal.h"

namespace g4::cuda::internal {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kTileKeys = 32;
constexpr int kTargetBlocks = 2 * 132;  // two waves' worth of blocks on an H100 (132 SMs)
constexpr int kMinKeysPerSplit = 256;
constexpr int kMaxSplits = 256;

// A lane's part of a K row from its V row (in `row`): u = V ⊙ k_norm, then the rotation.
// row[i] covers elements 4·(lane + 32·i) .. +3; float4 i < kVec/2 pairs with i + kVec/2.
template <int kVec>
__device__ __forceinline__ void DeriveKey(float4 (&row)[kVec], const float4 (&w)[kVec],
                                          const float4 (&f)[kVec / 2], int64_t position) {
#pragma unroll
  for (int i = 0; i < kVec; ++i) {
    row[i] = make_float4(row[i].x * w[i].x, row[i].y * w[i].y, row[i].z * w[i].z,
                         row[i].w * w[i].w);
  }
  const float p = static_cast<float>(position);
#pragma unroll
  for (int i = 0; i < kVec / 2; ++i) {
    float4& lo = row[i];
    float4& hi = row[i + kVec / 2];
    RotatePair(lo.x, hi.x, f[i].x, p);
    RotatePair(lo.y, hi.y, f[i].y, p);
    RotatePair(lo.z, hi.z, f[i].z, p);
    RotatePair(lo.w, hi.w, f[i].w, p);
  }
}

template <int D, bool kDerive>
__global__ void __launch_bounds__(kThreads)
    DecodeSplitKernel(const float* __restrict__ q, const float* __restrict__ k,
                      const float* __restrict__ v, AttentionShape s, int64_t lo, int64_t chunk,
                      int64_t hi, float* __restrict__ ws_o, float* __restrict__ ws_m,
                      float* __restrict__ ws_l) {
  constexpr int kVec = D / 128;   // float4 per lane per K row
  constexpr int kCols = D / 256;  // V columns per thread
  const int group = s.num_heads / s.num_kv_heads;
  const int kvh = blockIdx.x;
  const int split = blockIdx.y;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x / 32;

  __shared__ __align__(16) float q_s[kMaxGroup * D];
  __shared__ float p_s[kMaxGroup][kTileKeys];
  __shared__ float m_s[kMaxGroup], l_s[kMaxGroup], alpha_s[kMaxGroup];

  const float* qg = q + static_cast<int64_t>(kvh) * group * D;  // heads kvh*G .. kvh*G+G-1
  for (int i = threadIdx.x; i < group * D; i += kThreads) q_s[i] = qg[i] * s.scale;
  if (threadIdx.x < kMaxGroup) {
    m_s[threadIdx.x] = -CUDART_INF_F;
    l_s[threadIdx.x] = 0.0f;
  }
  __syncthreads();

  const int64_t begin = lo + split * chunk;
  const int64_t end = begin + chunk < hi ? begin + chunk : hi;
  const float* kb = kDerive ? v + static_cast<int64_t>(kvh) * D : k + static_cast<int64_t>(kvh) * D;
  const float* vb = v + static_cast<int64_t>(kvh) * D;
  // Derived K: this lane's k_norm weights and inverse frequencies, loaded once.
  float4 w_r[kVec];
  float4 f_r[kVec / 2];
  if (kDerive) {
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      w_r[i] = reinterpret_cast<const float4*>(s.k_derive.k_norm)[lane + 32 * i];
    }
#pragma unroll
    for (int i = 0; i < kVec / 2; ++i) {
      f_r[i] = reinterpret_cast<const float4*>(s.k_derive.inv_freq)[lane + 32 * i];
    }
  }

  float acc[kCols][kMaxGroup];
#pragma unroll
  for (int c = 0; c < kCols; ++c)
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) acc[c][g] = 0.0f;

  for (int64_t k0 = begin; k0 < end; k0 += kTileKeys) {
    // 1. Scores.
    for (int j = warp; j < kTileKeys; j += kWarps) {
      const int64_t key = k0 + j;
      float dot[kMaxGroup];
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) dot[g] = 0.0f;
      if (key < end) {
        const float4* kr = reinterpret_cast<const float4*>(kb + key * s.kv_stride);
        float4 krow[kVec];
#pragma unroll
        for (int i = 0; i < kVec; ++i) krow[i] = kr[lane + 32 * i];
        if (kDerive) DeriveKey<kVec>(krow, w_r, f_r, s.k_pos0 + key);
#pragma unroll
        for (int i = 0; i < kVec; ++i) {
          const float4 kv = krow[i];
#pragma unroll
          for (int g = 0; g < kMaxGroup; ++g) {
            if (g < group) {
              const float4 qv = reinterpret_cast<const float4*>(q_s + g * D)[lane + 32 * i];
              dot[g] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
            }
          }
        }
      }
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g < group) {
          const float d = WarpSum(dot[g]);
          if (lane == 0) p_s[g][j] = key < end ? d : -CUDART_INF_F;
        }
      }
    }
    __syncthreads();
    // 2. Online softmax, warp g for head g.
    if (warp < group) {
      const float sc = p_s[warp][lane];
      const float m_old = m_s[warp];
      const float m_new = fmaxf(m_old, WarpMax(sc));
      const float p = sc == -CUDART_INF_F ? 0.0f : expf(sc - m_new);
      const float sum = WarpSum(p);
      p_s[warp][lane] = p;
      if (lane == 0) {
        const float alpha = m_old == -CUDART_INF_F ? 0.0f : expf(m_old - m_new);
        alpha_s[warp] = alpha;
        l_s[warp] = l_s[warp] * alpha + sum;
        m_s[warp] = m_new;
      }
    }
    __syncthreads();
    // 3. P·V.
    const int nj = end - k0 < kTileKeys ? static_cast<int>(end - k0) : kTileKeys;
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g < group) {
#pragma unroll
        for (int c = 0; c < kCols; ++c) acc[c][g] *= alpha_s[g];
      }
    }
    for (int j = 0; j < nj; ++j) {
      const float* vr = vb + (k0 + j) * s.kv_stride;
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        const float vv = vr[threadIdx.x + 256 * c];
#pragma unroll
        for (int g = 0; g < kMaxGroup; ++g) {
          if (g < group) acc[c][g] += p_s[g][j] * vv;
        }
      }
    }
    __syncthreads();  // p_s / alpha_s are rewritten by the next tile
  }

  const int64_t part = static_cast<int64_t>(split) * s.num_heads + kvh * group;
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g < group) {
#pragma unroll
      for (int c = 0; c < kCols; ++c) ws_o[(part + g) * D + threadIdx.x + 256 * c] = acc[c][g];
    }
  }
  if (threadIdx.x < group) {
    ws_m[part + threadIdx.x] = m_s[threadIdx.x];
    ws_l[part + threadIdx.x] = l_s[threadIdx.x];
  }
}

__global__ void __launch_bounds__(kThreads)
    DecodeCombineKernel(float* out, const float* __restrict__ ws_o,
                        const float* __restrict__ ws_m, const float* __restrict__ ws_l,
                        int num_splits, int num_heads, int head_dim) {
  const int h = blockIdx.x;
  __shared__ float w_s[kMaxSplits];
  __shared__ float inv_s;
  if (threadIdx.x < 32) {
    float mx = -CUDART_INF_F;
    for (int i = threadIdx.x; i < num_splits; i += 32) mx = fmaxf(mx, ws_m[i * num_heads + h]);
    mx = WarpMax(mx);
    float den = 0.0f;
    for (int i = threadIdx.x; i < num_splits; i += 32) {
      const float m = ws_m[i * num_heads + h];
      const float w = m == -CUDART_INF_F ? 0.0f : expf(m - mx);
      w_s[i] = w;
      den += w * ws_l[i * num_heads + h];
    }
    den = WarpSum(den);
    if (threadIdx.x == 0) inv_s = den > 0.0f ? 1.0f / den : 0.0f;  // no visible key: zeros
  }
  __syncthreads();
  for (int d = threadIdx.x; d < head_dim; d += kThreads) {
    float o = 0.0f;
    for (int i = 0; i < num_splits; ++i) {
      o += w_s[i] * ws_o[(static_cast<int64_t>(i) * num_heads + h) * head_dim + d];
    }
    out[static_cast<int64_t>(h) * head_dim + d] = o * inv_s;
  }
}

void SplitPlan(const AttentionShape& s, int64_t* lo, int64_t* hi, int* splits, int64_t* chunk) {
  VisibleKeys(s.q_pos0, s.k_pos0, s.num_keys, s.window, lo, hi);
  const int64_t n = *hi - *lo;
  int64_t by_blocks = (kTargetBlocks + s.num_kv_heads - 1) / s.num_kv_heads;
  int64_t by_keys = (n + kMinKeysPerSplit - 1) / kMinKeysPerSplit;
  int64_t sp = by_blocks < by_keys ? by_blocks : by_keys;
  sp = sp < 1 ? 1 : (sp > kMaxSplits ? kMaxSplits : sp);
  int64_t ch = (n + sp - 1) / sp;
  ch = (ch + kTileKeys - 1) / kTileKeys * kTileKeys;
  if (ch < kTileKeys) ch = kTileKeys;
  sp = n == 0 ? 1 : (n + ch - 1) / ch;  // rounding the chunk up can leave trailing splits empty
  *splits = static_cast<int>(sp);
  *chunk = ch;
}

}  // namespace

int DecodeNumSplits(const AttentionShape& s) {
  int64_t lo, hi, chunk;
  int splits;
  SplitPlan(s, &lo, &hi, &splits, &chunk);
  return splits;
}

int LaunchAttentionDecode(float* out, const float* q, const float* k, const float* v,
                          const AttentionShape& s, float* workspace, void* stream) {
  int64_t lo, hi, chunk;
  int splits;
  SplitPlan(s, &lo, &hi, &splits, &chunk);
  float* ws_o = workspace;
  float* ws_m = ws_o + static_cast<int64_t>(splits) * s.num_heads * s.head_dim;
  float* ws_l = ws_m + static_cast<int64_t>(splits) * s.num_heads;
  const dim3 grid(s.num_kv_heads, splits);
  cudaStream_t st = AsStream(stream);
  // Separate instantiations keep the stored-K kernel's registers (ptxas: 76 at D = 512, 48 at
  // D = 256); the derived-K one also holds the lane's k_norm and inv_freq (98 and 68, no spills).
  const bool derive = s.k_derive.enabled();
  if (s.head_dim == 256) {
    (derive ? DecodeSplitKernel<256, true> : DecodeSplitKernel<256, false>)<<<grid, kThreads, 0, st>>>(
        q, k, v, s, lo, chunk, hi, ws_o, ws_m, ws_l);
  } else {
    (derive ? DecodeSplitKernel<512, true> : DecodeSplitKernel<512, false>)<<<grid, kThreads, 0, st>>>(
        q, k, v, s, lo, chunk, hi, ws_o, ws_m, ws_l);
  }
  if (const int err = LaunchResult(); err != 0) return err;
  DecodeCombineKernel<<<s.num_heads, kThreads, 0, st>>>(out, ws_o, ws_m, ws_l, splits,
                                                        s.num_heads, s.head_dim);
  return LaunchResult();
}

}  // namespace g4::cuda::internal
