// Shared helpers for the CUDA kernel tests: random data, bf16 rounding, device round trips.
#ifndef G4SERVE_TESTS_KERNELS_CUDA_TEST_UTIL_H_
#define G4SERVE_TESTS_KERNELS_CUDA_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cuda/device_info.h"
#include "kernels/cuda/runtime.h"

// Every CUDA test starts with this: no device (or no driver) means skip, never fail.
#define G4_REQUIRE_GPU()                                         \
  do {                                                           \
    if (g4::cuda::DeviceCount() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

namespace g4::cuda::testing {

inline std::vector<float> RandomVector(size_t n, uint32_t seed, float lo = -1.0f,
                                       float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// fp32 -> bf16 bits (round to nearest even) and back.
inline uint16_t ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float FromBf16(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

template <typename T>
DeviceBuffer MustUpload(const std::vector<T>& host) {
  absl::StatusOr<DeviceBuffer> b = Upload(host);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? std::move(*b) : DeviceBuffer();
}

template <typename T>
std::vector<T> MustDownload(const DeviceBuffer& b, size_t n) {
  std::vector<T> host(n);
  const absl::Status sync = Synchronize();
  EXPECT_TRUE(sync.ok()) << sync;
  const absl::Status st = b.CopyToHost(host.data(), n * sizeof(T));
  EXPECT_TRUE(st.ok()) << st;
  return host;
}

// |got - want| <= atol + rtol·|want| elementwise; reports the first few mismatches.
inline void ExpectNear(const std::vector<float>& got, const std::vector<float>& want, float rtol,
                       float atol) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const float tol = atol + rtol * std::fabs(want[i]);
    if (!(std::fabs(got[i] - want[i]) <= tol)) {
      if (++bad <= 5) ADD_FAILURE() << "index " << i << ": got " << got[i] << " want " << want[i];
    }
  }
  EXPECT_EQ(bad, 0) << "of " << got.size();
}

}  // namespace g4::cuda::testing

#endif  // G4SERVE_TESTS_KERNELS_CUDA_TEST_UTIL_H_
