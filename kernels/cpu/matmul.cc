#include <cblas.h>

#include <algorithm>

#include "kernels/cpu/cpu_kernels.h"

namespace g4::cpu {

// y = x · W^T through OpenBLAS. For m == 1 a GEMV avoids GEMM's packing overhead (decode).
void Linear(float* y, const float* x, const float* w, int64_t m, int64_t n, int64_t k) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum; BLAS rejects lda = 0
    std::fill_n(y, m * n, 0.0f);
    return;
  }
  if (m == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, w, k, x, 1, 0.0f, y, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w, k, 0.0f, y, n);
}

}  // namespace g4::cpu
