// The CPU attention's buffers against attention_workspace.h, the sizes the planner's workspace
// estimate counts (coordinator/planner: CpuAttentionBytes): this test replaces operator new and
// delete to record the peak of live heap bytes during a call, and requires it to equal the
// header's formula. Also checks that the bounded prefill (fewer queries per block past 32 768
// keys, derived keys tile by tile) computes what the per-query path computes.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/attention_workspace.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/rope_table.h"
#include "kernels/ops.h"

namespace {

// Live heap bytes through operator new, and their peak since the last Reset.
int64_t g_live = 0;
int64_t g_peak = 0;
bool g_counting = false;

struct PeakScope {
  PeakScope() {
    g_live = 0;
    g_peak = 0;
    g_counting = true;
  }
  ~PeakScope() { g_counting = false; }
  int64_t peak() const { return g_peak; }
};

constexpr size_t kHeader = 16;  // keeps the returned pointer 16-byte aligned

void* Allocate(size_t n) {
  char* p = static_cast<char*>(std::malloc(n + kHeader));
  if (p == nullptr) throw std::bad_alloc();
  *reinterpret_cast<size_t*>(p) = n;
  if (g_counting) {
    g_live += static_cast<int64_t>(n);
    g_peak = std::max(g_peak, g_live);
  }
  return p + kHeader;
}

void Release(void* ptr) {
  if (ptr == nullptr) return;
  char* p = static_cast<char*>(ptr) - kHeader;
  if (g_counting) g_live -= static_cast<int64_t>(*reinterpret_cast<size_t*>(p));
  std::free(p);
}

}  // namespace

void* operator new(size_t n) { return Allocate(n); }
void* operator new[](size_t n) { return Allocate(n); }
void operator delete(void* p) noexcept { Release(p); }
void operator delete[](void* p) noexcept { Release(p); }
void operator delete(void* p, size_t) noexcept { Release(p); }
void operator delete[](void* p, size_t) noexcept { Release(p); }

namespace g4 {
namespace {

struct Inputs {
  AttentionShape shape;
  std::vector<float> q, k, v, k_norm, inv_freq;
};

// One global layer of the long-context test checkpoint on one TP rank: 1 query head, 1 KV head,
// head_dim 32, K derived from V with a quarter of the pairs rotated (or stored).
Inputs MakeInputs(int num_queries, int num_keys, bool derived) {
  Inputs in;
  AttentionShape& s = in.shape;
  s.num_queries = num_queries;
  s.num_keys = num_keys;
  s.q_pos0 = num_keys - num_queries;
  s.k_pos0 = 0;
  s.num_heads = 1;
  s.num_kv_heads = 1;
  s.head_dim = 32;
  s.q_stride = 32;
  s.kv_stride = 32;
  s.scale = 1.0f / std::sqrt(32.0f);
  std::mt19937 rng(7);
  std::normal_distribution<float> n(0.0f, 1.0f);
  in.q.resize(static_cast<size_t>(num_queries) * 32);
  in.v.resize(static_cast<size_t>(num_keys) * 32);
  for (float& x : in.q) x = n(rng);
  for (float& x : in.v) x = n(rng);
  if (derived) {
    in.k_norm.assign(32, 1.1f);
    in.inv_freq.assign(16, 0.0f);
    for (int i = 0; i < 4; ++i) in.inv_freq[i] = 1.0f / std::pow(1e6f, 2.0f * i / 32);
    s.k_derive = {in.k_norm.data(), in.inv_freq.data()};
  } else {
    in.k.resize(in.v.size());
    for (float& x : in.k) x = n(rng);
  }
  return in;
}

// Runs one call with the RoPE table already covering its keys; returns the peak heap bytes the
// call allocated.
int64_t PeakOfCall(const Inputs& in, std::vector<float>& out, bool batch_invariant = false) {
  cpu::RopeTable table;
  if (in.shape.k_derive.enabled()) table.Cover(in.inv_freq.data(), 16, in.shape.num_keys);
  out.assign(static_cast<size_t>(in.shape.num_queries) * 32, 0.0f);
  PeakScope scope;
  cpu::Attention(out.data(), in.q.data(), in.k.empty() ? nullptr : in.k.data(), in.v.data(),
                 in.shape, &table, batch_invariant);
  return scope.peak();
}

TEST(AttentionWorkspaceTest, QueryBlocksShrinkPast32768Keys) {
  EXPECT_EQ(cpu::QueryBlockRows(4096), 128);
  EXPECT_EQ(cpu::QueryBlockRows(32768), 128);
  EXPECT_EQ(cpu::QueryBlockRows(65536), 64);
  EXPECT_EQ(cpu::QueryBlockRows(262144), 16);
  EXPECT_EQ(cpu::QueryBlockRows(int64_t{1} << 30), 1);
}

TEST(AttentionWorkspaceTest, PrefillAllocatesWhatTheFormulaSays) {
  for (const bool derived : {true, false}) {
    for (const int keys : {3000, 40000}) {  // one tile / block rows 128; tiles / rows 104
      const Inputs in = MakeInputs(/*num_queries=*/200, keys, derived);
      std::vector<float> out;
      const int64_t peak = PeakOfCall(in, out);
      EXPECT_EQ(peak, 4 * cpu::AttentionScratchFloats(200, keys, 1, 32, derived, false))
          << "derived " << derived << ", keys " << keys;
    }
  }
}

TEST(AttentionWorkspaceTest, DecodeAllocatesWhatTheFormulaSays) {
  const Inputs in = MakeInputs(/*num_queries=*/1, 50000, /*derived=*/true);
  std::vector<float> out;
  EXPECT_EQ(PeakOfCall(in, out), 4 * cpu::AttentionScratchFloats(1, 50000, 1, 32, true, false));
}

// The bounded prefill (a 104-query block, 4096-key tiles) against each query alone through the
// decode path (the batch-invariant mode), which neither blocks nor tiles.
TEST(AttentionWorkspaceTest, BoundedPrefillComputesWhatEachQueryAloneDoes) {
  for (const bool derived : {true, false}) {
    const Inputs in = MakeInputs(/*num_queries=*/60, 40000, derived);
    std::vector<float> blocked, alone;
    PeakOfCall(in, blocked);
    PeakOfCall(in, alone, /*batch_invariant=*/true);
    double max_diff = 0;
    for (size_t i = 0; i < blocked.size(); ++i) {
      max_diff = std::max(max_diff, static_cast<double>(std::fabs(blocked[i] - alone[i])));
    }
    EXPECT_LT(max_diff, 1e-5) << "derived " << derived;
  }
}

TEST(AttentionWorkspaceTest, RopeTableGrowsInGranulesAndAtMostDoublesWhileGrowing) {
  std::vector<float> inv(16, 0.0f);
  for (int i = 0; i < 4; ++i) inv[i] = 1.0f / std::pow(1e6f, 2.0f * i / 32);
  cpu::RopeTable table;
  int64_t peak;
  {
    PeakScope scope;
    table.Cover(inv.data(), 16, 5000);
    peak = scope.peak();
  }
  // The table, and the 16 inverse frequencies it was built for.
  EXPECT_EQ(peak, 4 * cpu::RoundUp(5000, cpu::kRopeGranule) * 2 * 4 + 4 * 16);
  {
    PeakScope scope;
    table.Cover(inv.data(), 16, 8000);  // within the granule: no allocation
    EXPECT_EQ(scope.peak(), 0);
  }
  {
    PeakScope scope;
    table.Cover(inv.data(), 16, 9000);  // old and new table at once
    peak = scope.peak();
  }
  EXPECT_EQ(peak, 4 * cpu::RoundUp(9000, cpu::kRopeGranule) * 2 * 4);
  EXPECT_LE(peak + 4 * cpu::RoundUp(5000, cpu::kRopeGranule) * 2 * 4,
            4 * cpu::RopeTablePeakFloats(9000, 4));
}

}  // namespace
}  // namespace g4
