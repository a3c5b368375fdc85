// The CUDA backend's op launchers (issue 6 §1, first slice). Plain C++: no CUDA header leaks to
// users of this file; streams travel as an opaque `Stream` (a cudaStream_t; nullptr = the legacy
// default stream). Every pointer argument is a DEVICE pointer. Semantics are exactly those of
// kernels/ops.h (the CPU reference in kernels/cpu/ is the spec); activations are fp32, some
// weights may be bf16, accumulation is fp32. Each launcher checks its CanImplement* first and
// returns InvalidArgument without launching when the shape is unsupported; a launch failure
// comes back as Internal with the CUDA error text. Launches are asynchronous: errors raised while
// the kernel runs surface at the next synchronizing call (see runtime.h).
#ifndef G4SERVE_KERNELS_CUDA_CUDA_KERNELS_H_
#define G4SERVE_KERNELS_CUDA_CUDA_KERNELS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/ops.h"

namespace g4::cuda {

using Stream = void*;  // cudaStream_t

enum class DType { kF32, kBF16 };  // weight element type (activations are always fp32)

// --- RMSNorm: one block per row, warp-shuffle reduction. n % 4 == 0 (float4 rows). ---
absl::Status CanImplementRmsNorm(int64_t rows, int64_t n);
// y = x · (mean(x²) + eps)^-1/2 · w; w (fp32 or bf16, length n) may be null. y == x allowed.
absl::Status RmsNorm(float* y, const float* x, const void* w, DType w_type, int64_t rows,
                     int64_t n, float eps, Stream stream);
// Fused residual add: residual += x, then y = RmsNorm(residual) (y may alias x, not residual).
absl::Status AddRmsNorm(float* y, float* residual, const float* x, const void* w, DType w_type,
                        int64_t rows, int64_t n, float eps, Stream stream);

// --- RoPE (NeoX half split), in place on x[tokens, heads, head_dim] with token stride
// `stride`; positions[tokens] (int64) and inv_freq[head_dim / 2] live on the device. ---
absl::Status CanImplementRope(int64_t tokens, int heads, int head_dim, int64_t stride);
absl::Status Rope(float* x, const int64_t* positions, const float* inv_freq, int64_t tokens,
                  int heads, int head_dim, int64_t stride, Stream stream);

// --- Element-wise ops (grid-stride loops). ---
absl::Status GeluTanhMul(float* out, const float* gate, const float* up, int64_t n,
                         Stream stream);
// out[t] = table[ids[t]] · scale; ids must be in range (not checked on the device).
absl::Status Embed(float* out, const void* table, DType table_type, const int32_t* ids,
                   int64_t tokens, int64_t dim, float scale, Stream stream);
absl::Status Add(float* x, const float* y, int64_t n, Stream stream);  // x += y
absl::Status Scale(float* x, float s, int64_t n, Stream stream);       // x *= s
absl::Status Mul(float* x, const float* y, int64_t n, Stream stream);  // x *= y
absl::Status Softcap(float* x, float cap, int64_t n, Stream stream);   // x = cap·tanh(x/cap)

// --- Attention (see AttentionShape in kernels/ops.h). Supported: head_dim 256 or 512,
// num_heads / num_kv_heads in 1..8, strides and base pointers 16-byte aligned (multiples of 4
// floats). With shape.k_derive enabled (k_eq_v layers: K derived from V), `k` is not read
// (pass nullptr) and k_derive.k_norm / inv_freq are 16-byte aligned device pointers. ---
absl::Status CanImplementAttention(const AttentionShape& shape);

// Decode: exactly one query (shape.num_queries == 1), flash-decoding split-K over the visible
// keys, then a reduction across splits. `workspace` is a device buffer of at least
// AttentionDecodeWorkspaceFloats(shape) floats (partial outputs, maxima and sums per split).
int64_t AttentionDecodeWorkspaceFloats(const AttentionShape& shape);
absl::Status AttentionDecode(float* out, const float* q, const float* k, const float* v,
                             const AttentionShape& shape, float* workspace, Stream stream);

// Prefill: any number of queries, flash-attention style tiles (fp32 compute in this slice).
absl::Status AttentionPrefill(float* out, const float* q, const float* k, const float* v,
                              const AttentionShape& shape, Stream stream);

// --- MoE routing (RouteTopK of kernels/ops.h): one warp per token. num_experts <= 256,
// 1 <= k <= min(32, num_experts). ---
absl::Status CanImplementRouteTopK(int64_t tokens, int num_experts, int k);
absl::Status RouteTopK(int32_t* experts, float* weights, const float* logits,
                       const float* per_expert_scale, int64_t tokens, int num_experts, int k,
                       Stream stream);

// --- Greedy sampling: ids[r] = argmax over logits[r, 0..n) (lowest id on ties; NaNs never
// win). One 1024-thread block per row. ---
absl::Status CanImplementArgMax(int64_t rows, int64_t n);
absl::Status ArgMax(int32_t* ids, const float* logits, int64_t rows, int64_t n, Stream stream);

}  // namespace g4::cuda

#endif  // G4SERVE_KERNELS_CUDA_CUDA_KERNELS_H_
