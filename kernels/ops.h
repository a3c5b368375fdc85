// The op surface the model is written against: "what Gemma 4 computes" (worker/model) calls only
// these, and each backend (kernels/cpu, the reference; kernels/cuda, when built) implements them.
//
// Conventions (llm.c order): outputs first, then inputs, then sizes. All activations are fp32,
// row-major, in memory owned by the backend that runs the op. Weights are fp32 for the CPU
// reference (bf16/f16 checkpoints are converted once at load).
#ifndef G4SERVE_KERNELS_OPS_H_
#define G4SERVE_KERNELS_OPS_H_

#include <cstdint>
#include <memory>

namespace g4 {

// K derived from V, for the layers whose cache holds V only (Gemma 4's attention_k_eq_v global
// layers: K and V are the same raw k_proj output r, V = r·(mean(r²)+eps)^-1/2 and
// K = RoPE_p(V ⊙ k_norm), so caching V alone is exact; docs/kv_cache.md). When `k_norm` is set,
// Attention reads no K rows: the K row of key j, KV head g is
//   u = V[j, g] ⊙ k_norm (fp32 products), then Rope(u) at position k_pos0 + j with `inv_freq`
// exactly as Ops::Rope computes it (angle float(p)·inv_freq[i], NeoX half split), i.e. the same
// rounding as storing K = Rope(RmsNorm(r; k_norm)) and V = RmsNorm(r). Pairs with inv_freq 0
// (proportional RoPE's position-free part) stay unrotated.
struct KeyDerivation {
  const float* k_norm = nullptr;    // [head_dim]: the layer's k_norm weight; null: K is stored
  const float* inv_freq = nullptr;  // [head_dim / 2], as Ops::Rope
  bool enabled() const { return k_norm != nullptr; }
};

// Sizes and strides of one attention call over one sequence: `num_queries` queries at positions
// q_pos0, q_pos0+1, ... against `num_keys` keys at positions k_pos0, k_pos0+1, ...
// Q/out rows are [num_heads, head_dim] with stride `q_stride` floats between tokens; K/V rows
// are [num_kv_heads, head_dim] with stride `kv_stride`. Query head h reads KV head
// h / (num_heads / num_kv_heads). A key is visible iff k_pos <= q_pos and, when window > 0,
// q_pos - k_pos < window. Scores are not scaled (Gemma 4 uses scale 1.0 on normalized q/k).
// With k_derive enabled, `k` is not read (pass nullptr) and K rows come from V (KeyDerivation).
struct AttentionShape {
  int num_queries = 0;
  int64_t q_pos0 = 0;
  int num_keys = 0;
  int64_t k_pos0 = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int64_t q_stride = 0;
  int64_t kv_stride = 0;
  int window = 0;  // 0: full causal
  float scale = 1.0f;
  KeyDerivation k_derive;  // disabled: K rows are read from `k`
};

class Ops {
 public:
  virtual ~Ops() = default;

  // y[m, n] = x[m, k] · W[n, k]^T   (W in PyTorch Linear layout [out, in]).
  virtual void Linear(float* y, const float* x, const float* w, int64_t m, int64_t n,
                      int64_t k) = 0;

  // Row-wise RMSNorm over `n`: y = x · (mean(x²) + eps)^-1/2 · w. `w` may be null (weightless
  // norm). In-place (y == x) is allowed.
  virtual void RmsNorm(float* y, const float* x, const float* w, int64_t rows, int64_t n,
                       float eps) = 0;

  // NeoX (half-split) rotary embedding, in place, on x[tokens, heads, head_dim] (row stride
  // `stride` floats). Angle for pair i at position p is float(p) * inv_freq[i] (fp32 product, as
  // transformers computes it); inv_freq has head_dim/2 entries (0 for unrotated pairs).
  virtual void Rope(float* x, const int64_t* positions, const float* inv_freq, int64_t tokens,
                    int heads, int head_dim, int64_t stride) = 0;

  // out = GELU_tanh(gate) ⊙ up, elementwise over `n` (GeGLU).
  virtual void GeluTanhMul(float* out, const float* gate, const float* up, int64_t n) = 0;

  // out[t] = E[ids[t]] · scale, rows of width `dim`.
  virtual void Embed(float* out, const float* table, const int32_t* ids, int64_t tokens,
                     int64_t dim, float scale) = 0;

  virtual void Add(float* x, const float* y, int64_t n) = 0;      // x += y
  virtual void Scale(float* x, float s, int64_t n) = 0;           // x *= s
  virtual void Mul(float* x, const float* y, int64_t n) = 0;      // x *= y (elementwise)
  virtual void Softcap(float* x, float cap, int64_t n) = 0;       // x = cap · tanh(x / cap)

  // Causal / sliding-window attention of one sequence (see AttentionShape); `k` is null when
  // shape.k_derive is enabled.
  virtual void Attention(float* out, const float* q, const float* k, const float* v,
                         const AttentionShape& shape) = 0;

  // MoE routing for `tokens` rows of router logits [tokens, num_experts]: softmax over all
  // experts (fp32), top-k, renormalize to sum 1, times per_expert_scale[e]. Writes the chosen
  // experts (descending probability) and their weights, [tokens, k] each.
  virtual void RouteTopK(int32_t* experts, float* weights, const float* logits,
                         const float* per_expert_scale, int64_t tokens, int num_experts,
                         int k) = 0;
};

struct CpuOpsOptions {
  // Batch-invariant numerics: a row's Linear output and a query's Attention output are bitwise
  // the same whether the row is computed alone (a decode step), batched with other sequences,
  // or inside a prefill chunk (a recompute after preemption or migration). Seeded sampling then
  // gives the same tokens under any batch composition and after a migration (docs/sampling.md).
  // How: every row (query) goes through the same GEMV calls it would get alone. Costs: none for
  // a decode step of one sequence; prefill and batched decode read the weights once per row
  // instead of once per step (far slower prefill).
  bool batch_invariant = false;
};

// The CPU reference backend (always available).
std::unique_ptr<Ops> CreateCpuOps(CpuOpsOptions options = {});

}  // namespace g4

#endif  // G4SERVE_KERNELS_OPS_H_
