// Embedding gather and the small element-wise ops (grid-stride loops, fp32).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/launch_internal.h"

namespace g4::cuda::internal {
namespace {

#define G4_GRID_STRIDE(i, n)                                                           \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// One block row per token (blockIdx.y), threads stride the row.
template <typename T>
__global__ void EmbedKernel(float* out, const T* __restrict__ table,
                            const int32_t* __restrict__ ids, int64_t dim, float scale) {
  const int64_t t = blockIdx.y;
  const T* row = table + static_cast<int64_t>(ids[t]) * dim;
  float* o = out + t * dim;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < dim;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    o[i] = LoadWeight(row, i) * scale;
  }
}

__global__ void AddKernel(float* x, const float* y, int64_t n) {
  G4_GRID_STRIDE(i, n) x[i] += y[i];
}
__global__ void MulKernel(float* x, const float* y, int64_t n) {
  G4_GRID_STRIDE(i, n) x[i] *= y[i];
}
__global__ void ScaleKernel(float* x, float s, int64_t n) { G4_GRID_STRIDE(i, n) x[i] *= s; }
__global__ void SoftcapKernel(float* x, float cap, int64_t n) {
  G4_GRID_STRIDE(i, n) x[i] = tanhf(x[i] / cap) * cap;
}

}  // namespace

int LaunchEmbed(float* out, const void* table, bool table_bf16, const int32_t* ids,
                int64_t tokens, int64_t dim, float scale, void* stream) {
  if (tokens == 0 || dim == 0) return 0;
  const int64_t bx = (dim + 255) / 256;
  const dim3 grid(static_cast<unsigned>(bx < 64 ? bx : 64), static_cast<unsigned>(tokens));
  if (table_bf16) {
    EmbedKernel<<<grid, 256, 0, AsStream(stream)>>>(
        out, static_cast<const __nv_bfloat16*>(table), ids, dim, scale);
  } else {
    EmbedKernel<<<grid, 256, 0, AsStream(stream)>>>(out, static_cast<const float*>(table), ids,
                                                    dim, scale);
  }
  return LaunchResult();
}

int LaunchBinary(int op, float* x, const float* y, int64_t n, void* stream) {
  if (n == 0) return 0;
  if (op == 0) {
    AddKernel<<<GridFor(n, 256), 256, 0, AsStream(stream)>>>(x, y, n);
  } else {
    MulKernel<<<GridFor(n, 256), 256, 0, AsStream(stream)>>>(x, y, n);
  }
  return LaunchResult();
}

int LaunchScale(float* x, float s, int64_t n, void* stream) {
  if (n == 0) return 0;
  ScaleKernel<<<GridFor(n, 256), 256, 0, AsStream(stream)>>>(x, s, n);
  return LaunchResult();
}

int LaunchSoftcap(float* x, float cap, int64_t n, void* stream) {
  if (n == 0) return 0;
  SoftcapKernel<<<GridFor(n, 256), 256, 0, AsStream(stream)>>>(x, cap, n);
  return LaunchResult();
}

}  // namespace g4::cuda::internal
