#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/cpu_kernels.h"

namespace g4::cpu {
namespace {

// exp(x) for x <= 0 (clamped at -87, where it underflows), written so the compiler vectorizes
// the loop that calls it: Cody–Waite range reduction x = n·ln2 + r, a degree-6 polynomial for
// e^r on |r| <= ln2/2 (relative error < 2e-7), and 2^n built in the exponent bits.
inline float ExpNonPositive(float x) {
  x = x < -87.0f ? -87.0f : x;
  // Round to nearest by the 1.5·2^23 trick (|x·log2 e| < 2^22 here); vectorizes, unlike nearbyint.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return e * scale;
}

}  // namespace

// gelu_pytorch_tanh(z) · up = 0.5·z·(1 + tanh(u)) · up, u = √(2/π)·(z + 0.044715·z³), the
// reference's formula, with tanh(u) = sign(u)·(1 − e)/(1 + e), e = e^(−2|u|) ∈ (0, 1], so nothing
// overflows and the loop vectorizes (a scalar tanhf loop took a quarter of prefill time). As in
// the reference, tanh rounds to ±1 for |u| > ~9, making GELU exactly 0 far on the negative side.
void GeluTanhMul(float* out, const float* gate, const float* up, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    const float z = gate[i];
    const float u = kSqrt2OverPi * (z + 0.044715f * z * z * z);
    const float e = ExpNonPositive(-2.0f * std::fabs(u));
    const float t = std::copysign((1.0f - e) / (1.0f + e), u);
    out[i] = 0.5f * z * (1.0f + t) * up[i];
  }
}

}  // namespace g4::cpu
