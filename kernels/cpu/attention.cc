#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/attention_workspace.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/rope_math.h"
#include "kernels/cpu/rope_table.h"

namespace g4::cpu {
namespace {

// Index range [lo, hi) of keys visible to a query at position qp.
inline void VisibleKeys(const AttentionShape& s, int64_t qp, int64_t* lo, int64_t* hi) {
  int64_t first = s.window > 0 ? qp - s.window + 1 : 0;
  *lo = std::clamp<int64_t>(first - s.k_pos0, 0, s.num_keys);
  *hi = std::clamp<int64_t>(qp - s.k_pos0 + 1, 0, s.num_keys);
}

// Where the K rows of one KV head come from: the `k` rows themselves, or (KeyDerivation) V ⊙
// k_norm rotated at the key's position, with cos/sin from the table. Stored and derived rows feed
// the same dot products and BLAS calls, so the two modes differ only in how the K rows were
// produced, and give the same bits.
class KeyRows {
 public:
  KeyRows(const float* k, const float* v, const AttentionShape& s, const RopeTable* table)
      : k_(k), v_(v), s_(s), table_(table) {}

  // K row j of KV head g: the cached row, or the row derived from V into `buf` (head_dim floats).
  const float* Row(int g, int64_t j, float* buf) const {
    const int d = s_.head_dim;
    if (!s_.k_derive.enabled()) return k_ + j * s_.kv_stride + static_cast<int64_t>(g) * d;
    Derive(g, j, buf);
    return buf;
  }

  // K rows [j0, j1) of KV head g: returns row j0 and sets *ld to the row stride. Derived rows are
  // written to `scratch` (grown as needed).
  const float* Rows(int g, int64_t j0, int64_t j1, std::vector<float>& scratch,
                    int64_t* ld) const {
    const int d = s_.head_dim;
    if (!s_.k_derive.enabled()) {
      *ld = s_.kv_stride;
      return k_ + j0 * s_.kv_stride + static_cast<int64_t>(g) * d;
    }
    if (static_cast<int64_t>(scratch.size()) < (j1 - j0) * d) scratch.resize((j1 - j0) * d);
    for (int64_t j = j0; j < j1; ++j) Derive(g, j, scratch.data() + (j - j0) * d);
    *ld = d;
    return scratch.data();
  }

 private:
  void Derive(int g, int64_t j, float* kr) const {
    const int d = s_.head_dim;
    const float* vr = v_ + j * s_.kv_stride + static_cast<int64_t>(g) * d;
    const float* w = s_.k_derive.k_norm;
    for (int i = 0; i < d; ++i) kr[i] = vr[i] * w[i];  // = RmsNorm(r; k_norm) of the K path
    const int64_t p = s_.k_pos0 + j;
    RotateHalves(kr, table_->Cos(p), table_->Sin(p), table_->rotated_pairs(), d / 2);
  }

  const float* k_;
  const float* v_;
  const AttentionShape& s_;
  const RopeTable* table_;
};

// Softmax in place over row[lo, hi) of a score row of n entries; the rest becomes 0.
void MaskedSoftmax(float* row, int64_t n, int64_t lo, int64_t hi) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = lo; j < hi; ++j) mx = std::max(mx, row[j]);
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) {
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

// ⟨a, b⟩ over n floats: 32 partial sums in a fixed order, so it vectorizes without fast-math and
// rounds the same for a stored and a derived K row.
inline float Dot(const float* a, const float* b, int n) {
  float acc[32] = {};
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int l = 0; l < 32; ++l) acc[l] += a[i + l] * b[i + l];
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  for (int width = 16; width >= 1; width /= 2) {
    for (int l = 0; l < width; ++l) acc[l] += acc[l + width];
  }
  return acc[0] + tail;
}

// One query (decode), memory bound: each K row (stored, or derived from V into a buffer that
// stays in L1) is read once and scored against every query head of its GQA group; keys outer,
// KV heads inner, so a derived row's cos/sin are read once per key. Then softmax per head and
// P·V (BLAS) once per group.
void DecodeAttention(float* out, const float* q, const float* v, const AttentionShape& s,
                     const KeyRows& keys) {
  const int group = s.num_heads / s.num_kv_heads;
  const int d = s.head_dim;
  int64_t lo, hi;
  VisibleKeys(s, s.q_pos0, &lo, &hi);
  const int64_t nk = std::max<int64_t>(hi - lo, 0);
  if (nk == 0) {
    std::fill_n(out, static_cast<int64_t>(s.num_heads) * d, 0.0f);
    return;
  }
  std::vector<float> scores(static_cast<size_t>(s.num_heads) * nk), row(d);
  for (int64_t j = lo; j < hi; ++j) {
    for (int g = 0; g < s.num_kv_heads; ++g) {
      const float* kr = keys.Row(g, j, row.data());
      for (int h = g * group; h < (g + 1) * group; ++h) {
        scores[h * nk + (j - lo)] = s.scale * Dot(q + static_cast<int64_t>(h) * d, kr, d);
      }
    }
  }
  for (int h = 0; h < s.num_heads; ++h) MaskedSoftmax(scores.data() + h * nk, nk, 0, nk);
  // The group's query rows (and output rows) are consecutive for one query: one call per group.
  for (int g = 0; g < s.num_kv_heads; ++g) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, group, d, static_cast<int>(nk), 1.0f,
                scores.data() + static_cast<int64_t>(g) * group * nk, nk,
                v + lo * s.kv_stride + static_cast<int64_t>(g) * d, s.kv_stride, 0.0f,
                out + static_cast<int64_t>(g) * group * d, d);
  }
}

// Many queries: per query block and query head, S = Q·Kᵀ (BLAS) over the block's visible span
// of K rows — derived tile by tile (kKeyTile keys) where K is derived — then mask, softmax in
// fp32, O = P·V (BLAS). Query blocks bound the score buffer (fewer queries per block as the span
// grows: attention_workspace.h), and the span skips keys that no query of the block can see
// (long sliding-window prefills). Spans of at most kKeyTile keys take one BLAS call, as before.
void PrefillAttention(float* out, const float* q, const float* v, const AttentionShape& s,
                      const KeyRows& keys) {
  const int group = s.num_heads / s.num_kv_heads;
  const int d = s.head_dim;
  const int block = QueryBlockRows(s.num_keys);
  std::vector<float> scores, scratch;
  // Exact sizes up front (attention_workspace.h): no geometric growth past what the plan counts.
  scores.reserve(static_cast<size_t>(std::min(block, s.num_queries)) * s.num_keys);
  if (s.k_derive.enabled()) scratch.reserve(std::min<int64_t>(s.num_keys, kKeyTile) * d);
  for (int q0 = 0; q0 < s.num_queries; q0 += block) {
    const int nq = std::min(block, s.num_queries - q0);
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
    for (int g = 0; g < s.num_kv_heads; ++g) {
      const float* vg = v + span_lo * s.kv_stride + static_cast<int64_t>(g) * d;
      for (int h = g * group; h < (g + 1) * group; ++h) {
        const float* qh = q + q0 * s.q_stride + static_cast<int64_t>(h) * d;
        for (int64_t j0 = span_lo; j0 < span_hi; j0 += kKeyTile) {
          const int64_t j1 = std::min(span_hi, j0 + kKeyTile);
          int64_t ld;
          const float* kg = keys.Rows(g, j0, j1, scratch, &ld);
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, static_cast<int>(j1 - j0), d,
                      s.scale, qh, s.q_stride, kg, ld, 0.0f, scores.data() + (j0 - span_lo), nk);
        }
        for (int i = 0; i < nq; ++i) {
          int64_t lo, hi;
          VisibleKeys(s, s.q_pos0 + q0 + i, &lo, &hi);
          MaskedSoftmax(scores.data() + static_cast<int64_t>(i) * nk, nk, lo - span_lo,
                        hi - span_lo);
        }
        float* oh = out + q0 * s.q_stride + static_cast<int64_t>(h) * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, d, static_cast<int>(nk), 1.0f,
                    scores.data(), nk, vg, s.kv_stride, 0.0f, oh, s.q_stride);
      }
    }
  }
}

// Batch-invariant attention (CpuOpsOptions::batch_invariant): each query alone through the
// decode path, over exactly its visible keys, so that its output does not depend on the block or
// chunk it is computed in (a prefill row equals the decode step of that row, bit for bit).
void AttentionPerQuery(float* out, const float* q, const float* v, const AttentionShape& s,
                       const KeyRows& keys) {
  AttentionShape one = s;
  one.num_queries = 1;
  for (int i = 0; i < s.num_queries; ++i) {
    one.q_pos0 = s.q_pos0 + i;
    DecodeAttention(out + i * s.q_stride, q + i * s.q_stride, v, one, keys);
  }
}

}  // namespace

void Attention(float* out, const float* q, const float* k, const float* v,
               const AttentionShape& s, RopeTable* table, bool batch_invariant) {
  if (s.num_queries <= 0) return;
  if (s.k_derive.enabled()) {
    // Keys at positions [k_pos0, k_pos0 + num_keys); the table always starts at position 0.
    table->Cover(s.k_derive.inv_freq, s.head_dim / 2, s.k_pos0 + s.num_keys);
  }
  const KeyRows keys(k, v, s, table);
  if (batch_invariant) {
    AttentionPerQuery(out, q, v, s, keys);
  } else if (s.num_queries == 1) {
    DecodeAttention(out, q, v, s, keys);
  } else {
    PrefillAttention(out, q, v, s, keys);
  }
}

void Attention(float* out, const float* q, const float* k, const float* v,
               const AttentionShape& s, bool batch_invariant) {
  RopeTable table;  // only filled in the derived-K mode
  Attention(out, q, k, v, s, &table, batch_invariant);
}

}  // namespace g4::cpu
