#include <cmath>

#include "kernels/cpu/cpu_kernels.h"

namespace g4::cpu {

// Matches transformers' Gemma4RMSNorm: x · pow(mean(x²) + eps, -0.5) · w, all in fp32. The weight
// is used as-is (no Gemma 3 style 1 + w). The sum is accumulated in double so the result does
// not depend on the reduction order the reference happened to use.
void RmsNorm(float* y, const float* x, const float* w, int64_t rows, int64_t n, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(xr[i]) * xr[i];
    const float mean = static_cast<float>(sum / static_cast<double>(n));
    const float inv = std::pow(mean + eps, -0.5f);
    if (w != nullptr) {
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * inv * w[i];
    } else {
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * inv;
    }
  }
}

}  // namespace g4::cpu
