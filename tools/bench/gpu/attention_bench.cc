// g4-bench-gpu-attention: the CUDA attention kernels on the device (tests/gpu/run.sh runs it).
//   decode, head_dim 512, 16 query heads / 2 KV heads (GQA 8, Gemma 4 26B global layers), one
//     query over 1K / 32K / 128K fp32 keys: achieved GB/s of K+V traffic vs the measured
//     device-to-device copy bandwidth (read + write bytes / time);
//   the same decode and the head_dim 512 prefill with K derived from V (AttentionShape::k_derive,
//     the k_eq_v layout: the cache holds V only; proportional RoPE, 64 of 256 pairs rotate), and
//     their time relative to the stored-K run (docs/kv_cache.md: expected ≤ 1 for decode);
//   prefill, 8K queries = 8K keys: head_dim 512 causal (GQA 8) and head_dim 256 with a 1024
//     window (GQA 2): TFLOP/s counting 4·D FLOPs per visible (query, key) pair per head.
// Prints "no GPU" and exits 0 on a machine without a device.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_info.h"
#include "kernels/cuda/runtime.h"
#include "kernels/ops.h"

namespace g4::cuda {
namespace {

#define BENCH_CHECK(expr)                                                          \
  do {                                                                             \
    const absl::Status _st = (expr);                                               \
    if (!_st.ok()) {                                                               \
      std::fprintf(stderr, "%s failed: %s\n", #expr, _st.ToString().c_str());      \
      return 1;                                                                    \
    }                                                                              \
  } while (0)

template <typename F>
absl::StatusOr<double> TimeMs(F&& launch, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) {
    if (absl::Status st = launch(); !st.ok()) return st;
  }
  if (absl::Status st = Synchronize(); !st.ok()) return st;
  EventTimer timer;
  timer.Start();
  for (int i = 0; i < iters; ++i) {
    if (absl::Status st = launch(); !st.ok()) return st;
  }
  absl::StatusOr<float> ms = timer.StopMs();
  if (!ms.ok()) return ms.status();
  if (absl::Status st = Synchronize(); !st.ok()) return st;
  return static_cast<double>(*ms) / iters;
}

// Visible (query, key) pairs of a prefill where queries and keys are the same n positions.
double VisiblePairs(int64_t n, int64_t window) {
  double pairs = 0;
  for (int64_t qp = 0; qp < n; ++qp) pairs += window > 0 && qp + 1 > window ? window : qp + 1;
  return pairs;
}

int Run() {
  if (DeviceCount() == 0) {
    std::printf("g4-bench-gpu-attention: no GPU (DeviceCount() == 0), nothing measured\n");
    return 0;
  }
  std::printf("device: %s\n", DeviceDescription(0).c_str());

  // Device-to-device copy bandwidth (1 GiB): the roof for the decode numbers.
  const size_t copy_bytes = size_t{1} << 30;
  absl::StatusOr<DeviceBuffer> a = DeviceBuffer::Allocate(copy_bytes);
  absl::StatusOr<DeviceBuffer> b = DeviceBuffer::Allocate(copy_bytes);
  BENCH_CHECK(a.status());
  BENCH_CHECK(b.status());
  BENCH_CHECK(Memset(a->get(), 0x3c, copy_bytes));
  absl::StatusOr<double> copy_ms =
      TimeMs([&] { return CopyDeviceToDevice(b->get(), a->get(), copy_bytes); }, 2, 10);
  BENCH_CHECK(copy_ms.status());
  const double copy_gbs = 2.0 * copy_bytes / (*copy_ms * 1e-3) / 1e9;
  *a = DeviceBuffer();
  *b = DeviceBuffer();
  std::printf("d2d copy: %.1f GB/s (read + write)\n\n", copy_gbs);

  // Decode.
  const int heads = 16, kv_heads = 2, d = 512;
  const int64_t max_ctx = 131072;
  const int64_t kv_row = static_cast<int64_t>(kv_heads) * d;
  absl::StatusOr<DeviceBuffer> k = DeviceBuffer::Allocate(max_ctx * kv_row * sizeof(float));
  absl::StatusOr<DeviceBuffer> v = DeviceBuffer::Allocate(max_ctx * kv_row * sizeof(float));
  absl::StatusOr<DeviceBuffer> q = DeviceBuffer::Allocate(8192 * heads * d * sizeof(float));
  absl::StatusOr<DeviceBuffer> out = DeviceBuffer::Allocate(8192 * heads * d * sizeof(float));
  BENCH_CHECK(k.status());
  BENCH_CHECK(v.status());
  BENCH_CHECK(q.status());
  BENCH_CHECK(out.status());
  BENCH_CHECK(Memset(k->get(), 0x3c, k->bytes()));  // 0x3c3c3c3c ~ 0.0115f: finite, non-zero
  BENCH_CHECK(Memset(v->get(), 0x3d, v->bytes()));
  BENCH_CHECK(Memset(q->get(), 0x3e, q->bytes()));
  // K derived from V: a k_norm weight and the global layers' proportional-RoPE frequencies.
  std::vector<float> inv(d / 2, 0.0f);
  for (int i = 0; i < d / 8; ++i) inv[i] = 1.0f / std::pow(1e6f, static_cast<float>(2 * i) / d);
  absl::StatusOr<DeviceBuffer> inv_freq = Upload(inv);
  absl::StatusOr<DeviceBuffer> k_norm = Upload(std::vector<float>(d, 1.25f));
  BENCH_CHECK(inv_freq.status());
  BENCH_CHECK(k_norm.status());
  const KeyDerivation derive{k_norm->as<float>(), inv_freq->as<float>()};

  std::printf("| op | shape | time (us) | achieved | vs copy |\n|---|---|---|---|---|\n");
  for (const int64_t ctx : {int64_t{1024}, int64_t{32768}, int64_t{131072}}) {
    AttentionShape s;
    s.num_queries = 1;
    s.q_pos0 = ctx - 1;
    s.num_keys = static_cast<int>(ctx);
    s.num_heads = heads;
    s.num_kv_heads = kv_heads;
    s.head_dim = d;
    s.q_stride = static_cast<int64_t>(heads) * d;
    s.kv_stride = kv_row;
    absl::StatusOr<DeviceBuffer> ws =
        DeviceBuffer::Allocate(AttentionDecodeWorkspaceFloats(s) * sizeof(float));
    BENCH_CHECK(ws.status());
    absl::StatusOr<double> ms = TimeMs(
        [&] {
          return AttentionDecode(out->as<float>(), q->as<float>(), k->as<float>(),
                                 v->as<float>(), s, ws->as<float>(), nullptr);
        },
        3, 20);
    BENCH_CHECK(ms.status());
    const double bytes = 2.0 * ctx * kv_row * sizeof(float);
    const double gbs = bytes / (*ms * 1e-3) / 1e9;
    std::printf("| decode | D512 H16/KV2 ctx %lld | %.1f | %.1f GB/s | %.0f%% |\n",
                static_cast<long long>(ctx), *ms * 1e3, gbs, 100.0 * gbs / copy_gbs);
    AttentionShape sd = s;
    sd.k_derive = derive;
    absl::StatusOr<double> dms = TimeMs(
        [&] {
          return AttentionDecode(out->as<float>(), q->as<float>(), nullptr, v->as<float>(), sd,
                                 ws->as<float>(), nullptr);
        },
        3, 20);
    BENCH_CHECK(dms.status());
    const double vgbs = bytes / 2 / (*dms * 1e-3) / 1e9;  // the cache is V only
    std::printf("| decode, K from V | D512 H16/KV2 ctx %lld | %.1f (%.2f× stored K) | %.1f GB/s of V | %.0f%% |\n",
                static_cast<long long>(ctx), *dms * 1e3, *dms / *ms, vgbs,
                100.0 * vgbs / copy_gbs);
  }

  // Prefill, 8K.
  struct PrefillCase {
    int d, heads, kv_heads, window;
  };
  for (const PrefillCase& c : {PrefillCase{512, 16, 2, 0}, PrefillCase{256, 16, 8, 1024}}) {
    const int64_t n = 8192;
    AttentionShape s;
    s.num_queries = static_cast<int>(n);
    s.num_keys = static_cast<int>(n);
    s.num_heads = c.heads;
    s.num_kv_heads = c.kv_heads;
    s.head_dim = c.d;
    s.q_stride = static_cast<int64_t>(c.heads) * c.d;
    s.kv_stride = static_cast<int64_t>(c.kv_heads) * c.d;
    s.window = c.window;
    absl::StatusOr<double> ms = TimeMs(
        [&] {
          return AttentionPrefill(out->as<float>(), q->as<float>(), k->as<float>(),
                                  v->as<float>(), s, nullptr);
        },
        1, 3);
    BENCH_CHECK(ms.status());
    const double flops = 4.0 * c.d * c.heads * VisiblePairs(n, c.window);
    std::printf("| prefill | D%d H%d/KV%d 8K window %d | %.1f | %.2f TFLOP/s | - |\n", c.d,
                c.heads, c.kv_heads, c.window, *ms * 1e3, flops / (*ms * 1e-3) / 1e12);
    if (c.d != 512) continue;  // the k_eq_v global layers
    AttentionShape sd = s;
    sd.k_derive = derive;
    absl::StatusOr<double> dms = TimeMs(
        [&] {
          return AttentionPrefill(out->as<float>(), q->as<float>(), nullptr, v->as<float>(), sd,
                                  nullptr);
        },
        1, 3);
    BENCH_CHECK(dms.status());
    std::printf("| prefill, K from V | D%d H%d/KV%d 8K window %d | %.1f (%.2f× stored K) | %.2f TFLOP/s | - |\n",
                c.d, c.heads, c.kv_heads, c.window, *dms * 1e3, *dms / *ms,
                flops / (*dms * 1e-3) / 1e12);
  }
  return 0;
}

}  // namespace
}  // namespace g4::cuda

int main() { return g4::cuda::Run(); }
