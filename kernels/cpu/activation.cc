#include <cmath>

#include "kernels/cpu/cpu_kernels.h"

namespace g4::cpu {

// gelu_pytorch_tanh: 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))), times up.
void GeluTanhMul(float* out, const float* gate, const float* up, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float z = gate[i];
    const float g = 0.5f * z * (1.0f + std::tanh(kSqrt2OverPi * (z + 0.044715f * z * z * z)));
    out[i] = g * up[i];
  }
}

}  // namespace g4::cpu
