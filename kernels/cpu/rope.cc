#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"

namespace g4::cpu {

// NeoX half-split rotation: pairs (i, i + D/2). Pairs with inv_freq 0 (proportional RoPE's
// position-free part) get angle 0, i.e. identity.
void Rope(float* x, const int64_t* positions, const float* inv_freq, int64_t tokens, int heads,
          int head_dim, int64_t stride) {
  const int half = head_dim / 2;
  std::vector<float> cos_t(half), sin_t(half);
  for (int64_t t = 0; t < tokens; ++t) {
    const float p = static_cast<float>(positions[t]);
    for (int i = 0; i < half; ++i) {
      const float angle = p * inv_freq[i];  // fp32 product, as the reference
      cos_t[i] = std::cos(angle);
      sin_t[i] = std::sin(angle);
    }
    for (int h = 0; h < heads; ++h) {
      float* u = x + t * stride + static_cast<int64_t>(h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const float a = u[i];
        const float b = u[i + half];
        u[i] = a * cos_t[i] - b * sin_t[i];
        u[i + half] = b * cos_t[i] + a * sin_t[i];
      }
    }
  }
}

}  // namespace g4::cpu
