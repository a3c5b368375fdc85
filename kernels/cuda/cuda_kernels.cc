// Shape checks and Status conversion around the raw launchers of kernels/cuda/*.cu.
#include "kernels/cuda/cuda_kernels.h"

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/cuda/launch_internal.h"

namespace g4::cuda {
namespace {

absl::Status FromCuda(int err, const char* what) {
  if (err == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(
      what, ": ", cudaGetErrorString(static_cast<cudaError_t>(err))));
}

bool Aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

absl::Status CheckGridRows(int64_t rows, const char* what) {
  if (rows < 0 || rows > 0x7fffffffLL) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": rows ", rows, " out of range"));
  }
  return absl::OkStatus();
}

#define G4_RETURN_IF_ERROR(expr)            \
  do {                                      \
    const absl::Status _st = (expr);        \
    if (!_st.ok()) return _st;              \
  } while (0)

}  // namespace

absl::Status CanImplementRmsNorm(int64_t rows, int64_t n) {
  G4_RETURN_IF_ERROR(CheckGridRows(rows, "RmsNorm"));
  if (n <= 0 || n % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("RmsNorm: n = ", n, " must be a positive ",
                                                   "multiple of 4"));
  }
  return absl::OkStatus();
}

absl::Status RmsNorm(float* y, const float* x, const void* w, DType w_type, int64_t rows,
                     int64_t n, float eps, Stream stream) {
  G4_RETURN_IF_ERROR(CanImplementRmsNorm(rows, n));
  if (!Aligned16(x) || !Aligned16(y)) return absl::InvalidArgumentError("RmsNorm: unaligned");
  return FromCuda(internal::LaunchRmsNorm(y, nullptr, x, w, w_type == DType::kBF16, rows, n,
                                          eps, stream),
                  "RmsNorm");
}

absl::Status AddRmsNorm(float* y, float* residual, const float* x, const void* w, DType w_type,
                        int64_t rows, int64_t n, float eps, Stream stream) {
  G4_RETURN_IF_ERROR(CanImplementRmsNorm(rows, n));
  if (residual == nullptr || residual == y) {
    return absl::InvalidArgumentError("AddRmsNorm: residual must be a separate buffer");
  }
  if (!Aligned16(x) || !Aligned16(y) || !Aligned16(residual)) {
    return absl::InvalidArgumentError("AddRmsNorm: unaligned");
  }
  return FromCuda(internal::LaunchRmsNorm(y, residual, x, w, w_type == DType::kBF16, rows, n,
                                          eps, stream),
                  "AddRmsNorm");
}

absl::Status CanImplementRope(int64_t tokens, int heads, int head_dim, int64_t stride) {
  G4_RETURN_IF_ERROR(CheckGridRows(tokens, "Rope"));
  if (head_dim <= 0 || head_dim % 2 != 0 || heads <= 0 ||
      stride < static_cast<int64_t>(heads) * head_dim) {
    return absl::InvalidArgumentError(absl::StrCat("Rope: bad shape heads=", heads,
                                                   " head_dim=", head_dim, " stride=", stride));
  }
  return absl::OkStatus();
}

absl::Status Rope(float* x, const int64_t* positions, const float* inv_freq, int64_t tokens,
                  int heads, int head_dim, int64_t stride, Stream stream) {
  G4_RETURN_IF_ERROR(CanImplementRope(tokens, heads, head_dim, stride));
  return FromCuda(
      internal::LaunchRope(x, positions, inv_freq, tokens, heads, head_dim, stride, stream),
      "Rope");
}

absl::Status GeluTanhMul(float* out, const float* gate, const float* up, int64_t n,
                         Stream stream) {
  if (n < 0) return absl::InvalidArgumentError("GeluTanhMul: n < 0");
  return FromCuda(internal::LaunchGeluTanhMul(out, gate, up, n, stream), "GeluTanhMul");
}

absl::Status Embed(float* out, const void* table, DType table_type, const int32_t* ids,
                   int64_t tokens, int64_t dim, float scale, Stream stream) {
  if (tokens < 0 || tokens > 65535 || dim < 0) {  // tokens is gridDim.y
    return absl::InvalidArgumentError(absl::StrCat("Embed: tokens ", tokens, " (max 65535)"));
  }
  return FromCuda(internal::LaunchEmbed(out, table, table_type == DType::kBF16, ids, tokens,
                                        dim, scale, stream),
                  "Embed");
}

absl::Status Add(float* x, const float* y, int64_t n, Stream stream) {
  if (n < 0) return absl::InvalidArgumentError("Add: n < 0");
  return FromCuda(internal::LaunchBinary(0, x, y, n, stream), "Add");
}

absl::Status Scale(float* x, float s, int64_t n, Stream stream) {
  if (n < 0) return absl::InvalidArgumentError("Scale: n < 0");
  return FromCuda(internal::LaunchScale(x, s, n, stream), "Scale");
}

absl::Status Mul(float* x, const float* y, int64_t n, Stream stream) {
  if (n < 0) return absl::InvalidArgumentError("Mul: n < 0");
  return FromCuda(internal::LaunchBinary(1, x, y, n, stream), "Mul");
}

absl::Status Softcap(float* x, float cap, int64_t n, Stream stream) {
  if (n < 0 || !(cap > 0.0f)) return absl::InvalidArgumentError("Softcap: n < 0 or cap <= 0");
  return FromCuda(internal::LaunchSoftcap(x, cap, n, stream), "Softcap");
}

absl::Status CanImplementAttention(const AttentionShape& s) {
  if (s.head_dim != 256 && s.head_dim != 512) {
    return absl::InvalidArgumentError(
        absl::StrCat("Attention: head_dim ", s.head_dim, " unsupported (256 or 512)"));
  }
  if (s.num_heads <= 0 || s.num_kv_heads <= 0 || s.num_heads % s.num_kv_heads != 0 ||
      s.num_heads / s.num_kv_heads > 8 || s.num_heads > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("Attention: heads ", s.num_heads, "/",
                                                   s.num_kv_heads, " (group must be 1..8)"));
  }
  if (s.num_queries < 0 || s.num_keys < 0 || s.window < 0) {
    return absl::InvalidArgumentError("Attention: negative size");
  }
  if (s.k_derive.enabled() &&
      (s.k_derive.inv_freq == nullptr || !Aligned16(s.k_derive.k_norm) ||
       !Aligned16(s.k_derive.inv_freq))) {
    return absl::InvalidArgumentError(
        "Attention: k_derive needs 16-byte aligned k_norm and inv_freq");
  }
  if (s.q_stride % 4 != 0 || s.kv_stride % 4 != 0 ||
      s.q_stride < static_cast<int64_t>(s.num_heads) * s.head_dim ||
      s.kv_stride < static_cast<int64_t>(s.num_kv_heads) * s.head_dim) {
    return absl::InvalidArgumentError(absl::StrCat("Attention: strides q=", s.q_stride,
                                                   " kv=", s.kv_stride,
                                                   " must cover the row and be multiples of 4"));
  }
  return absl::OkStatus();
}

int64_t AttentionDecodeWorkspaceFloats(const AttentionShape& s) {
  const int64_t splits = internal::DecodeNumSplits(s);
  return splits * s.num_heads * (static_cast<int64_t>(s.head_dim) + 2);
}

absl::Status AttentionDecode(float* out, const float* q, const float* k, const float* v,
                             const AttentionShape& shape, float* workspace, Stream stream) {
  G4_RETURN_IF_ERROR(CanImplementAttention(shape));
  if (shape.num_queries != 1) {
    return absl::InvalidArgumentError("AttentionDecode: exactly one query");
  }
  if (!Aligned16(q) || !Aligned16(k) || !Aligned16(v) || workspace == nullptr) {
    return absl::InvalidArgumentError("AttentionDecode: unaligned pointer or no workspace");
  }
  return FromCuda(internal::LaunchAttentionDecode(out, q, k, v, shape, workspace, stream),
                  "AttentionDecode");
}

absl::Status AttentionPrefill(float* out, const float* q, const float* k, const float* v,
                              const AttentionShape& shape, Stream stream) {
  G4_RETURN_IF_ERROR(CanImplementAttention(shape));
  if (!Aligned16(q) || !Aligned16(k) || !Aligned16(v) || !Aligned16(out)) {
    return absl::InvalidArgumentError("AttentionPrefill: unaligned pointer");
  }
  return FromCuda(internal::LaunchAttentionPrefill(out, q, k, v, shape, stream),
                  "AttentionPrefill");
}

absl::Status CanImplementRouteTopK(int64_t tokens, int num_experts, int k) {
  if (tokens < 0 || num_experts <= 0 || num_experts > 256 || k < 1 || k > 32 ||
      k > num_experts) {
    return absl::InvalidArgumentError(absl::StrCat("RouteTopK: experts ", num_experts, " k ", k,
                                                   " (need E <= 256, 1 <= k <= min(32, E))"));
  }
  return absl::OkStatus();
}

absl::Status RouteTopK(int32_t* experts, float* weights, const float* logits,
                       const float* per_expert_scale, int64_t tokens, int num_experts, int k,
                       Stream stream) {
  G4_RETURN_IF_ERROR(CanImplementRouteTopK(tokens, num_experts, k));
  return FromCuda(internal::LaunchRouteTopK(experts, weights, logits, per_expert_scale, tokens,
                                            num_experts, k, stream),
                  "RouteTopK");
}

absl::Status CanImplementArgMax(int64_t rows, int64_t n) {
  G4_RETURN_IF_ERROR(CheckGridRows(rows, "ArgMax"));
  if (n <= 0 || n > 0x7fffffffLL) return absl::InvalidArgumentError("ArgMax: bad row width");
  return absl::OkStatus();
}

absl::Status ArgMax(int32_t* ids, const float* logits, int64_t rows, int64_t n, Stream stream) {
  G4_RETURN_IF_ERROR(CanImplementArgMax(rows, n));
  if (n % 4 == 0 && !Aligned16(logits)) {
    return absl::InvalidArgumentError("ArgMax: unaligned logits");
  }
  return FromCuda(internal::LaunchArgMax(ids, logits, rows, n, stream), "ArgMax");
}

}  // namespace g4::cuda
