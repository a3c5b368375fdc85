#include <cmath>
#include <cstring>

#include "kernels/cpu/cpu_kernels.h"

namespace g4::cpu {

void Embed(float* out, const float* table, const int32_t* ids, int64_t tokens, int64_t dim,
           float scale) {
  for (int64_t t = 0; t < tokens; ++t) {
    const float* row = table + static_cast<int64_t>(ids[t]) * dim;
    float* o = out + t * dim;
    for (int64_t i = 0; i < dim; ++i) o[i] = row[i] * scale;
  }
}

void Add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void Scale(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void Mul(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= y[i];
}

void Softcap(float* x, float cap, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i] / cap) * cap;
}

}  // namespace g4::cpu
