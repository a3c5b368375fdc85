#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/rope_math.h"

namespace g4::cpu {

// NeoX half-split rotation: pairs (i, i + D/2). Pairs with inv_freq 0 (proportional RoPE's
// position-free part) get angle 0, i.e. identity.
void Rope(float* x, const int64_t* positions, const float* inv_freq, int64_t tokens, int heads,
          int head_dim, int64_t stride) {
  const int half = head_dim / 2;
  std::vector<float> cos_t(half), sin_t(half);
  for (int64_t t = 0; t < tokens; ++t) {
    RopeCosSin(positions[t], inv_freq, half, cos_t.data(), sin_t.data());
    for (int h = 0; h < heads; ++h) {
      RotateHalves(x + t * stride + static_cast<int64_t>(h) * head_dim, cos_t.data(),
                   sin_t.data(), half, half);
    }
  }
}

}  // namespace g4::cpu
