// Raw kernel launchers, one group per .cu file, called only by cuda_kernels.cc after the shape
// checks. Plain C++ (no CUDA or absl header, so nvcc and the host compiler both read it); each
// returns the cudaError_t of the launch as an int (0 = success). Pointers are device pointers.
#ifndef G4SERVE_KERNELS_CUDA_LAUNCH_INTERNAL_H_
#define G4SERVE_KERNELS_CUDA_LAUNCH_INTERNAL_H_

#include <cstdint>

#include "kernels/ops.h"

namespace g4::cuda::internal {

// rms_norm.cu. w_bf16: w points to bf16 (uint16) values. residual != nullptr: fused add.
int LaunchRmsNorm(float* y, float* residual, const float* x, const void* w, bool w_bf16,
                  int64_t rows, int64_t n, float eps, void* stream);
// rope.cu
int LaunchRope(float* x, const int64_t* positions, const float* inv_freq, int64_t tokens,
               int heads, int head_dim, int64_t stride, void* stream);
// geglu.cu
int LaunchGeluTanhMul(float* out, const float* gate, const float* up, int64_t n, void* stream);
// elementwise.cu. op: 0 add, 1 mul.
int LaunchEmbed(float* out, const void* table, bool table_bf16, const int32_t* ids,
                int64_t tokens, int64_t dim, float scale, void* stream);
int LaunchBinary(int op, float* x, const float* y, int64_t n, void* stream);
int LaunchScale(float* x, float s, int64_t n, void* stream);
int LaunchSoftcap(float* x, float cap, int64_t n, void* stream);
// attention_decode.cu
int DecodeNumSplits(const AttentionShape& s);
int LaunchAttentionDecode(float* out, const float* q, const float* k, const float* v,
                          const AttentionShape& s, float* workspace, void* stream);
// attention_prefill.cu
int LaunchAttentionPrefill(float* out, const float* q, const float* k, const float* v,
                           const AttentionShape& s, void* stream);
// moe_route.cu
int LaunchRouteTopK(int32_t* experts, float* weights, const float* logits,
                    const float* per_expert_scale, int64_t tokens, int num_experts, int k,
                    void* stream);
// sampling_argmax.cu
int LaunchArgMax(int32_t* ids, const float* logits, int64_t rows, int64_t n, void* stream);

}  // namespace g4::cuda::internal

#endif  // G4SERVE_KERNELS_CUDA_LAUNCH_INTERNAL_H_
