// Element types of checkpoint tensors and conversions to fp32 (all compute is fp32 on the CPU).
#ifndef G4SERVE_COMMON_DTYPE_H_
#define G4SERVE_COMMON_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/strings/string_view.h"

namespace g4 {

enum class DType { kF32, kF16, kBf16 };

inline size_t DTypeSize(DType t) { return t == DType::kF32 ? 4 : 2; }
absl::string_view DTypeName(DType t);  // "F32", "F16", "BF16" (safetensors spelling)

inline float Bf16ToF32(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round-to-nearest-even, as torch does when casting to bfloat16. NaN stays NaN.
inline uint16_t F32ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Rounds an fp32 value to the nearest bf16 value, returned as fp32.
inline float RoundToBf16(float f) { return Bf16ToF32(F32ToBf16(f)); }

float F16ToF32(uint16_t h);

// Converts `n` elements of type `t` at `src` to fp32 at `dst`.
void ConvertToF32(DType t, const void* src, size_t n, float* dst);

}  // namespace g4

#endif  // G4SERVE_COMMON_DTYPE_H_
