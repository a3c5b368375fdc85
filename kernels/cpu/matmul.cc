#include <cblas.h>

#include <algorithm>

#include "kernels/cpu/cpu_kernels.h"

namespace g4::cpu {

// y = x · W^T through OpenBLAS. For m == 1 a GEMV avoids GEMM's packing overhead (decode).
// batch_invariant: every row through the same GEMV call a row alone gets, so its result cannot
// depend on the other rows (GEMM's sums for a row change with m; measured with OpenBLAS 0.3.21).
void Linear(float* y, const float* x, const float* w, int64_t m, int64_t n, int64_t k,
            bool batch_invariant) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum; BLAS rejects lda = 0
    std::fill_n(y, m * n, 0.0f);
    return;
  }
  if (m == 1 || batch_invariant) {
    for (int64_t i = 0; i < m; ++i) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, w, k, x + i * k, 1, 0.0f, y + i * n,
                  1);
    }
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w, k, 0.0f, y, n);
}

}  // namespace g4::cpu
