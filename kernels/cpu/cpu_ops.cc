// CpuOps: the reference backend. A dispatcher only; each op lives in its own file. The one piece
// of state is the derived-K attention's cos/sin table, so CpuOps is thread-compatible (one model
// drives it).
#include <memory>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/rope_table.h"
#include "kernels/ops.h"

namespace g4 {
namespace {

class CpuOps final : public Ops {
 public:
  explicit CpuOps(CpuOpsOptions options) : options_(options) {}
  void Linear(float* y, const float* x, const float* w, int64_t m, int64_t n,
              int64_t k) override {
    cpu::Linear(y, x, w, m, n, k, options_.batch_invariant);
  }
  void RmsNorm(float* y, const float* x, const float* w, int64_t rows, int64_t n,
               float eps) override {
    cpu::RmsNorm(y, x, w, rows, n, eps);
  }
  void Rope(float* x, const int64_t* positions, const float* inv_freq, int64_t tokens, int heads,
            int head_dim, int64_t stride) override {
    cpu::Rope(x, positions, inv_freq, tokens, heads, head_dim, stride);
  }
  void GeluTanhMul(float* out, const float* gate, const float* up, int64_t n) override {
    cpu::GeluTanhMul(out, gate, up, n);
  }
  void Embed(float* out, const float* table, const int32_t* ids, int64_t tokens, int64_t dim,
             float scale) override {
    cpu::Embed(out, table, ids, tokens, dim, scale);
  }
  void Add(float* x, const float* y, int64_t n) override { cpu::Add(x, y, n); }
  void Scale(float* x, float s, int64_t n) override { cpu::Scale(x, s, n); }
  void Mul(float* x, const float* y, int64_t n) override { cpu::Mul(x, y, n); }
  void Softcap(float* x, float cap, int64_t n) override { cpu::Softcap(x, cap, n); }
  void Attention(float* out, const float* q, const float* k, const float* v,
                 const AttentionShape& shape) override {
    cpu::Attention(out, q, k, v, shape, &rope_table_, options_.batch_invariant);
  }
  void RouteTopK(int32_t* experts, float* weights, const float* logits,
                 const float* per_expert_scale, int64_t tokens, int num_experts,
                 int k) override {
    cpu::RouteTopK(experts, weights, logits, per_expert_scale, tokens, num_experts, k);
  }

 private:
  const CpuOpsOptions options_;
  // cos/sin per key position for derived-K attention, kept across calls (rope_table.h).
  cpu::RopeTable rope_table_;
};

}  // namespace

std::unique_ptr<Ops> CreateCpuOps(CpuOpsOptions options) {
  return std::make_unique<CpuOps>(options);
}

}  // namespace g4
