#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"

namespace g4::cpu {
namespace {

constexpr int kQueryBlock = 128;

// Index range [lo, hi) of keys visible to a query at position qp.
inline void VisibleKeys(const AttentionShape& s, int64_t qp, int64_t* lo, int64_t* hi) {
  int64_t first = s.window > 0 ? qp - s.window + 1 : 0;
  *lo = std::clamp<int64_t>(first - s.k_pos0, 0, s.num_keys);
  *hi = std::clamp<int64_t>(qp - s.k_pos0 + 1, 0, s.num_keys);
}

// Batch-invariant attention: each query and head alone, over exactly its visible keys, with the
// same calls a decode step of that query makes (scores by GEMV, softmax, P·V by GEMV), so that
// its output does not depend on the block or chunk it is computed in.
void AttentionPerQuery(float* out, const float* q, const float* k, const float* v,
                       const AttentionShape& s) {
  const int group = s.num_heads / s.num_kv_heads;
  const int d = s.head_dim;
  std::vector<float> row;
  for (int i = 0; i < s.num_queries; ++i) {
    int64_t lo, hi;
    VisibleKeys(s, s.q_pos0 + i, &lo, &hi);
    const int64_t nk = std::max<int64_t>(hi - lo, 0);
    for (int h = 0; h < s.num_heads; ++h) {
      float* o = out + static_cast<int64_t>(i) * s.q_stride + static_cast<int64_t>(h) * d;
      if (nk == 0) {
        std::fill_n(o, d, 0.0f);
        continue;
      }
      const int g = h / group;
      const float* qh = q + static_cast<int64_t>(i) * s.q_stride + static_cast<int64_t>(h) * d;
      const float* kg = k + lo * s.kv_stride + static_cast<int64_t>(g) * d;
      const float* vg = v + lo * s.kv_stride + static_cast<int64_t>(g) * d;
      row.resize(nk);
      cblas_sgemv(CblasRowMajor, CblasNoTrans, nk, d, s.scale, kg, s.kv_stride, qh, 1, 0.0f,
                  row.data(), 1);
      float mx = -std::numeric_limits<float>::infinity();
      for (float x : row) mx = std::max(mx, x);
      double sum = 0.0;
      for (float& x : row) sum += (x = std::exp(x - mx));
      const float inv = static_cast<float>(1.0 / sum);
      for (float& x : row) x *= inv;
      cblas_sgemv(CblasRowMajor, CblasTrans, nk, d, 1.0f, vg, s.kv_stride, row.data(), 1, 0.0f,
                  o, 1);
    }
  }
}

}  // namespace

// Per query block and head: S = Q·Kᵀ (BLAS) over the block's visible key span, mask, softmax in
// fp32, O = P·V (BLAS). Query blocks bound the score buffer, and the span skips keys that no
// query of the block can see (long sliding-window prefills).
void Attention(float* out, const float* q, const float* k, const float* v,
               const AttentionShape& s, bool batch_invariant) {
  if (batch_invariant) return AttentionPerQuery(out, q, k, v, s);
  const int group = s.num_heads / s.num_kv_heads;
  const int d = s.head_dim;
  std::vector<float> scores;
  for (int q0 = 0; q0 < s.num_queries; q0 += kQueryBlock) {
    const int nq = std::min(kQueryBlock, s.num_queries - q0);
    int64_t span_lo, unused, span_hi;
    VisibleKeys(s, s.q_pos0 + q0, &span_lo, &unused);
    VisibleKeys(s, s.q_pos0 + q0 + nq - 1, &unused, &span_hi);
    const int64_t nk = std::max<int64_t>(span_hi - span_lo, 0);
    if (nk == 0) {
      for (int i = 0; i < nq; ++i) {
        std::fill_n(out + (q0 + i) * s.q_stride, static_cast<int64_t>(s.num_heads) * d, 0.0f);
      }
      continue;
    }
    scores.resize(static_cast<size_t>(nq) * nk);
    for (int h = 0; h < s.num_heads; ++h) {
      const int g = h / group;
      const float* qh = q + q0 * s.q_stride + static_cast<int64_t>(h) * d;
      const float* kg = k + span_lo * s.kv_stride + static_cast<int64_t>(g) * d;
      const float* vg = v + span_lo * s.kv_stride + static_cast<int64_t>(g) * d;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, d, s.scale, qh, s.q_stride,
                  kg, s.kv_stride, 0.0f, scores.data(), nk);
      for (int i = 0; i < nq; ++i) {
        float* row = scores.data() + static_cast<int64_t>(i) * nk;
        int64_t lo, hi;
        VisibleKeys(s, s.q_pos0 + q0 + i, &lo, &hi);
        lo -= span_lo;
        hi -= span_lo;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = lo; j < hi; ++j) mx = std::max(mx, row[j]);
        double sum = 0.0;
        for (int64_t j = 0; j < nk; ++j) {
          if (j < lo || j >= hi) {
            row[j] = 0.0f;
          } else {
            row[j] = std::exp(row[j] - mx);
            sum += row[j];
          }
        }
        const float inv = sum > 0 ? static_cast<float>(1.0 / sum) : 0.0f;
        for (int64_t j = lo; j < hi; ++j) row[j] *= inv;
      }
      float* oh = out + q0 * s.q_stride + static_cast<int64_t>(h) * d;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, d, nk, 1.0f, scores.data(), nk,
                  vg, s.kv_stride, 0.0f, oh, s.q_stride);
    }
  }
}

}  // namespace g4::cpu
