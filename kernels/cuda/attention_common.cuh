// Shape helpers shared by the attention kernels (host and device).
#ifndef G4SERVE_KERNELS_CUDA_ATTENTION_COMMON_CUH_
#define G4SERVE_KERNELS_CUDA_ATTENTION_COMMON_CUH_

#include <cstdint>

namespace g4::cuda::internal {

// Index range [lo, hi) of the keys visible to a query at position qp (as kernels/cpu/attention.cc):
// a key is visible iff k_pos <= qp and, with a window W > 0, qp - k_pos < W.
__host__ __device__ inline void VisibleKeys(int64_t qp, int64_t k_pos0, int num_keys, int window,
                                            int64_t* lo, int64_t* hi) {
  const int64_t first = window > 0 ? qp - window + 1 : 0;
  int64_t l = first - k_pos0;
  int64_t h = qp - k_pos0 + 1;
  l = l < 0 ? 0 : (l > num_keys ? num_keys : l);
  h = h < 0 ? 0 : (h > num_keys ? num_keys : h);
  *lo = l;
  *hi = h < l ? l : h;
}

constexpr int kMaxGroup = 8;  // query heads per KV head (Gemma 4: 2, 4 or 8)

// Derived K (AttentionShape::k_derive): rotates one pair (a, b) = (u[i], u[i + D/2]) of
// u = V ⊙ k_norm at position p with inverse frequency f, exactly as rope.cu rotates a stored K
// (angle = the fp32 product float(p)·f, accurate sincosf). f == 0 (proportional RoPE's
// position-free pairs) is the identity.
__device__ __forceinline__ void RotatePair(float& a, float& b, float f, float p) {
  if (f == 0.0f) return;
  float sn, cs;
  sincosf(__fmul_rn(p, f), &sn, &cs);
  const float x = a, y = b;
  a = x * cs - y * sn;
  b = y * cs + x * sn;
}

}  // namespace g4::cuda::internal

#endif  // G4SERVE_KERNELS_CUDA_ATTENTION_COMMON_CUH_
