// The two pieces of RoPE arithmetic that more than one CPU kernel performs: the fp32 angle rule
// and the NeoX half-split rotation. Rope (rope.cc), the cos/sin table (rope_table.cc) and the
// derived-K rows of Attention (attention.cc) all go through these, so a K row rotated by Rope and
// one derived from V inside Attention round identically (same expressions, same contraction).
#ifndef G4SERVE_KERNELS_CPU_ROPE_MATH_H_
#define G4SERVE_KERNELS_CPU_ROPE_MATH_H_

#include <cmath>
#include <cstdint>

namespace g4::cpu {

// cos/sin of float(position) · inv_freq[i] (fp32 product, as transformers computes it) for the
// pairs i < pairs.
inline void RopeCosSin(int64_t position, const float* inv_freq, int pairs, float* cos_out,
                       float* sin_out) {
  const float p = static_cast<float>(position);
  for (int i = 0; i < pairs; ++i) {
    const float angle = p * inv_freq[i];
    cos_out[i] = std::cos(angle);
    sin_out[i] = std::sin(angle);
  }
}

// Rotates pairs (u[i], u[i + half]) for i < pairs in place.
inline void RotateHalves(float* u, const float* cos_in, const float* sin_in, int pairs,
                         int half) {
  for (int i = 0; i < pairs; ++i) {
    const float a = u[i];
    const float b = u[i + half];
    u[i] = a * cos_in[i] - b * sin_in[i];
    u[i + half] = b * cos_in[i] + a * sin_in[i];
  }
}

}  // namespace g4::cpu

#endif  // G4SERVE_KERNELS_CPU_ROPE_MATH_H_
