// Free functions behind CpuOps, one op per .cc file (see kernels/ops.h for the contracts).
#ifndef G4SERVE_KERNELS_CPU_CPU_KERNELS_H_
#define G4SERVE_KERNELS_CPU_CPU_KERNELS_H_

#include <cstdint>

#include "kernels/ops.h"

namespace g4::cpu {

class RopeTable;  // rope_table.h

// batch_invariant (Linear, Attention): every row's result is bitwise the same whatever the other
// rows of the call (see CpuOpsOptions); slower, opt-in.
void Linear(float* y, const float* x, const float* w, int64_t m, int64_t n, int64_t k,
            bool batch_invariant = false);
void RmsNorm(float* y, const float* x, const float* w, int64_t rows, int64_t n, float eps);
void Rope(float* x, const int64_t* positions, const float* inv_freq, int64_t tokens, int heads,
          int head_dim, int64_t stride);
void GeluTanhMul(float* out, const float* gate, const float* up, int64_t n);
void Embed(float* out, const float* table, const int32_t* ids, int64_t tokens, int64_t dim,
           float scale);
void Add(float* x, const float* y, int64_t n);
void Scale(float* x, float s, int64_t n);
void Mul(float* x, const float* y, int64_t n);
void Softcap(float* x, float cap, int64_t n);
// With shape.k_derive enabled, the cos/sin of the key positions come from `table` (extended as
// needed; CpuOps keeps one across calls). The overload without a table builds one per call.
void Attention(float* out, const float* q, const float* k, const float* v,
               const AttentionShape& shape, RopeTable* table, bool batch_invariant = false);
void Attention(float* out, const float* q, const float* k, const float* v,
               const AttentionShape& shape, bool batch_invariant = false);
void RouteTopK(int32_t* experts, float* weights, const float* logits,
               const float* per_expert_scale, int64_t tokens, int num_experts, int k);

}  // namespace g4::cpu

#endif  // G4SERVE_KERNELS_CPU_CPU_KERNELS_H_
