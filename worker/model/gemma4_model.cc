#include "worker/model/gemma4_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/dtype.h"
#include "common/status_macros.h"
#include "worker/kv_cache/kv_geometry.h"

namespace g4 {
namespace {

// transformers multiplies by a scale cast to the weight's dtype (Gemma4TextScaledWordEmbedding):
// bf16(√H) for a bf16 checkpoint (73.5 for the 31B), exact fp32 for an fp32 one.
float ScaleInDType(double scale, DType dtype) {
  const float f = static_cast<float>(scale);
  switch (dtype) {
    case DType::kBf16:
      return RoundToBf16(f);
    case DType::kF16:
      return static_cast<float>(static_cast<_Float16>(f));
    case DType::kF32:
      return f;
  }
  return f;
}

// Grows `buf` to at least `n` floats and returns it. The forward's buffers are reused across
// steps: fresh zeroed vectors per layer cost ~8% of a CPU prefill.
std::vector<float>& Scratch(std::vector<float>& buf, int64_t n) {
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(n);
  return buf;
}

}  // namespace

std::vector<float> RopeInvFreq(const RopeConfig& rope, int head_dim) {
  const int half = head_dim / 2;
  int rotated = half;
  if (rope.type == RopeType::kProportional) {
    // transformers: rope_angles = int(partial_rotary_factor * head_dim // 2); the exponent's
    // denominator stays the full head_dim.
    rotated = static_cast<int>(std::floor(rope.partial_rotary_factor * head_dim / 2));
  }
  std::vector<float> inv(half, 0.0f);
  const float base = static_cast<float>(rope.theta);
  for (int i = 0; i < rotated; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv[i] = 1.0f / std::pow(base, exponent);
  }
  return inv;
}

struct Gemma4Model::Batch {
  struct Seq {
    KvCacheView* cache;
    int64_t offset;  // first token's row in the batch
    int64_t len;
    int64_t start;   // position of the first token
  };
  int64_t tokens = 0;
  std::vector<int32_t> ids;
  std::vector<int64_t> positions;
  std::vector<Seq> seqs;
};

absl::StatusOr<std::unique_ptr<Gemma4Model>> Gemma4Model::Load(const std::string& dir,
                                                               std::unique_ptr<Ops> ops) {
  return LoadShard(dir, ShardConfig{}, nullptr, std::move(ops));
}

absl::StatusOr<std::unique_ptr<Gemma4Model>> Gemma4Model::LoadShard(const std::string& dir,
                                                                    const ShardConfig& shard,
                                                                    Communicator* comm,
                                                                    std::unique_ptr<Ops> ops) {
  if (shard.world_size > 1 && (comm == nullptr || comm->size() != shard.world_size ||
                               comm->rank() != shard.rank)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rank ", shard.rank, " of ", shard.world_size, " needs a communicator of that rank and size"));
  }
  G4_ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> ckpt, Checkpoint::Open(dir));
  G4_ASSIGN_OR_RETURN(ShardLayout layout, ShardLayout::Create(ckpt->config(), shard));
  G4_ASSIGN_OR_RETURN(std::unique_ptr<ModelWeights> weights, LoadModelWeights(*ckpt, layout));
  auto model = std::make_unique<Gemma4Model>(ckpt->config(), std::move(layout), std::move(weights),
                                             shard.world_size > 1 ? comm : nullptr, std::move(ops));
  model->stop_token_ids_ = ckpt->generation_config().eos_token_ids;
  return model;
}

Gemma4Model::Gemma4Model(ModelConfig config, ShardLayout layout,
                         std::unique_ptr<ModelWeights> weights, Communicator* comm,
                         std::unique_ptr<Ops> ops)
    : config_(std::move(config)),
      layout_(std::move(layout)),
      comm_(comm),
      w_(std::move(weights)),
      ops_(std::move(ops)) {
  embed_scale_ = ScaleInDType(std::sqrt(static_cast<double>(config_.hidden_size)), w_->embed_dtype);
  if (config_.hidden_size_per_layer_input > 0) {
    ple_embed_scale_ = ScaleInDType(std::sqrt(static_cast<double>(config_.hidden_size_per_layer_input)),
                                    w_->embed_per_layer_dtype);
  }
  inv_freq_sliding_ = RopeInvFreq(config_.rope_sliding, config_.head_dim);
  if (config_.global_head_dim > 0) {
    inv_freq_global_ = RopeInvFreq(config_.rope_global, config_.global_head_dim);
  }
}

absl::Status Gemma4Model::AllReduce(float* data, int64_t count) {
  if (comm_ == nullptr) return absl::OkStatus();
  return comm_->AllReduceSum(data, count);
}

std::vector<int> Gemma4Model::LocalKvHeads() const {
  std::vector<int> kv_heads(config_.num_layers);
  for (int l = 0; l < config_.num_layers; ++l) {
    kv_heads[l] = static_cast<int>(layout_.attention(l).kv_heads.size());
  }
  return kv_heads;
}

std::unique_ptr<SequenceKvCache> Gemma4Model::NewSequence() const {
  return std::make_unique<SequenceKvCache>(config_, LocalKvHeads());
}

absl::StatusOr<std::unique_ptr<PagedKvStorage>> Gemma4Model::NewPagedStorage(
    const PagedKvOptions& options) const {
  return PagedKvStorage::Create(config_, LocalKvHeads(), options);
}

absl::StatusOr<std::vector<float>> Gemma4Model::Forward(absl::Span<const SequenceChunk> chunks,
                                                        LogitsFor which) {
  const ModelConfig& c = config_;
  // Validate everything before touching any cache.
  if (chunks.empty()) return absl::InvalidArgumentError("forward: no sequences");
  absl::flat_hash_set<const KvCacheView*> seen;
  Batch b;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const SequenceChunk& ch = chunks[i];
    if (ch.cache == nullptr) return absl::InvalidArgumentError(absl::StrCat("sequence ", i, ": no cache"));
    if (ch.tokens.empty()) return absl::InvalidArgumentError(absl::StrCat("sequence ", i, ": no tokens"));
    if (!seen.insert(ch.cache).second) {
      return absl::InvalidArgumentError(absl::StrCat("sequence ", i, ": listed twice in one batch"));
    }
    const int64_t start = ch.cache->length();
    if (start + static_cast<int64_t>(ch.tokens.size()) > c.max_position_embeddings) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", i, ": ", start + ch.tokens.size(),
                       " tokens exceed max_position_embeddings = ", c.max_position_embeddings));
    }
    for (int32_t id : ch.tokens) {
      if (id < 0 || id >= c.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("sequence ", i, ": token id ", id,
                                                       " outside [0, ", c.vocab_size, ")"));
      }
    }
    if (absl::Status st = ch.cache->CanReserve(static_cast<int64_t>(ch.tokens.size()));
        !st.ok()) {
      return absl::Status(st.code(), absl::StrCat("sequence ", i, ": ", st.message()));
    }
    b.seqs.push_back({ch.cache, b.tokens, static_cast<int64_t>(ch.tokens.size()), start});
    for (size_t t = 0; t < ch.tokens.size(); ++t) {
      b.ids.push_back(ch.tokens[t]);
      b.positions.push_back(start + static_cast<int64_t>(t));
    }
    b.tokens += static_cast<int64_t>(ch.tokens.size());
  }

  const int64_t T = b.tokens, H = c.hidden_size;
  for (const Batch::Seq& s : b.seqs) s.cache->Reserve(s.len);

  std::vector<float>& x = Scratch(ws_.x, T * H);
  std::vector<float>& normed = Scratch(ws_.normed, T * H);
  std::vector<float>& branch = Scratch(ws_.branch, T * H);
  G4_RETURN_IF_ERROR(Embed(b, x.data()));
  if (c.hidden_size_per_layer_input > 0) PerLayerInputs(b, x.data());

  const float eps = static_cast<float>(c.rms_norm_eps);
  for (int l = 0; l < c.num_layers; ++l) {
    const LayerWeights& lw = w_->layers[l];
    ops_->RmsNorm(normed.data(), x.data(), lw.input_layernorm.data(), T, H, eps);
    G4_RETURN_IF_ERROR(Attention(l, b, normed.data(), branch.data()));
    ops_->RmsNorm(branch.data(), branch.data(), lw.post_attention_layernorm.data(), T, H, eps);
    ops_->Add(x.data(), branch.data(), T * H);
    G4_RETURN_IF_ERROR(FeedForward(l, b, x.data(), branch.data()));
    ops_->Add(x.data(), branch.data(), T * H);
    if (c.hidden_size_per_layer_input > 0) ApplyPerLayerInput(l, b, x.data());
    ops_->Scale(x.data(), lw.layer_scalar, T * H);  // the whole residual stream (pitfall 12)
  }
  for (const Batch::Seq& s : b.seqs) s.cache->Commit(s.len);

  // Final norm, tied LM head (raw embedding, no √H), softcap, for the rows asked for.
  std::vector<int64_t> rows;
  if (which == LogitsFor::kAllTokens) {
    for (int64_t t = 0; t < T; ++t) rows.push_back(t);
  } else {
    for (const Batch::Seq& s : b.seqs) rows.push_back(s.offset + s.len - 1);
  }
  const int64_t R = static_cast<int64_t>(rows.size());
  std::vector<float> h(R * H);
  for (int64_t r = 0; r < R; ++r) std::memcpy(&h[r * H], &x[rows[r] * H], H * sizeof(float));
  ops_->RmsNorm(h.data(), h.data(), w_->final_norm.data(), R, H, eps);
  return Logits(std::move(h), R);
}

// Vocabulary-parallel embedding: each rank writes the rows of the ids it holds and zeros for the
// rest; the all-reduce adds exact zeros, so the result is bit-identical to the unsharded one.
absl::Status Gemma4Model::Embed(const Batch& b, float* x) {
  const int64_t T = b.tokens, H = config_.hidden_size;
  const Range vocab = layout_.vocab();
  if (!layout_.is_sharded()) {
    ops_->Embed(x, w_->embed_tokens.data(), b.ids.data(), T, H, embed_scale_);
    return absl::OkStatus();
  }
  std::fill_n(x, T * H, 0.0f);
  for (int64_t t = 0; t < T; ++t) {
    const int32_t id = b.ids[t];
    if (id < vocab.begin || id >= vocab.end) continue;
    const int32_t local = static_cast<int32_t>(id - vocab.begin);
    ops_->Embed(x + t * H, w_->embed_tokens.data(), &local, 1, H, embed_scale_);
  }
  return AllReduce(x, T * H);
}

// LM head over this rank's vocabulary rows, gathered into full rows, then the softcap.
absl::StatusOr<std::vector<float>> Gemma4Model::Logits(std::vector<float> h, int64_t rows) {
  const int64_t H = config_.hidden_size, V = config_.vocab_size;
  const int64_t local_v = layout_.vocab().size();
  std::vector<float> logits(rows * V);
  if (!layout_.is_sharded()) {
    ops_->Linear(logits.data(), h.data(), w_->LmHead().data(), rows, V, H);
  } else {
    std::vector<float> local(rows * local_v), gathered(rows * V);
    ops_->Linear(local.data(), h.data(), w_->LmHead().data(), rows, local_v, H);
    G4_RETURN_IF_ERROR(comm_->AllGather(local.data(), rows * local_v, gathered.data()));
    const int world = layout_.shard().world_size;
    for (int r = 0; r < world; ++r) {  // [rank][row][local_v] -> [row][rank·local_v]
      for (int64_t i = 0; i < rows; ++i) {
        std::memcpy(&logits[i * V + r * local_v], &gathered[(r * rows + i) * local_v],
                    local_v * sizeof(float));
      }
    }
  }
  if (config_.final_logit_softcapping.has_value()) {
    ops_->Softcap(logits.data(), static_cast<float>(*config_.final_logit_softcapping), rows * V);
  }
  return logits;
}

absl::Status Gemma4Model::Attention(int l, const Batch& b, const float* a, float* out) {
  const ModelConfig& c = config_;
  const AttentionWeights& aw = w_->layers[l].attn;
  const int64_t T = b.tokens, H = c.hidden_size;
  // This rank's heads: all of them unsharded.
  const int d = c.HeadDim(l);
  const int hq = static_cast<int>(layout_.attention(l).q_heads.size());
  const int hkv = static_cast<int>(layout_.attention(l).kv_heads.size());
  const int64_t q_width = static_cast<int64_t>(hq) * d, kv_width = static_cast<int64_t>(hkv) * d;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float* inv_freq = c.IsGlobal(l) ? inv_freq_global_.data() : inv_freq_sliding_.data();

  std::vector<float>& q = Scratch(ws_.q, T * q_width);
  ops_->Linear(q.data(), a, aw.q_proj.data(), T, q_width, H);
  ops_->RmsNorm(q.data(), q.data(), aw.q_norm.data(), T * hq, d, eps);
  ops_->Rope(q.data(), b.positions.data(), inv_freq, T, hq, d, q_width);

  // k_eq_v layers (no v_proj) cache V only and attention derives K = Rope(V ⊙ k_norm) from it
  // (KeyDerivation): V = RmsNorm(r) and K = Rope(RmsNorm(r; k_norm)) of the same raw k_proj
  // output r round identically. A KV-shared layer follows its donor's layout and weight.
  const int src = c.KvSourceLayer(l);
  const bool k_from_v = KeysDerivedFromValues(c, src);
  if (!c.IsKvShared(l)) {
    std::vector<float>& v = Scratch(ws_.v, T * kv_width);
    float* k = nullptr;
    if (k_from_v) {
      ops_->Linear(v.data(), a, aw.k_proj.data(), T, kv_width, H);  // V is the raw k_proj output
    } else {
      k = Scratch(ws_.k, T * kv_width).data();
      ops_->Linear(k, a, aw.k_proj.data(), T, kv_width, H);
      ops_->Linear(v.data(), a, aw.v_proj.data(), T, kv_width, H);
      ops_->RmsNorm(k, k, aw.k_norm.data(), T * hkv, d, eps);
      ops_->Rope(k, b.positions.data(), inv_freq, T, hkv, d, kv_width);
    }
    ops_->RmsNorm(v.data(), v.data(), nullptr, T * hkv, d, eps);  // v_norm has no weight
    for (const Batch::Seq& s : b.seqs) {
      s.cache->Write(l, k == nullptr ? nullptr : k + s.offset * kv_width,
                     &v[s.offset * kv_width]);
    }
  }

  std::vector<float>& attn = Scratch(ws_.attn, T * q_width);
  for (const Batch::Seq& s : b.seqs) {
    const KvCacheView::Keys rows = s.cache->Read(l);  // the donor's for shared layers
    AttentionShape shape;
    shape.num_queries = static_cast<int>(s.len);
    shape.q_pos0 = s.start;
    shape.num_keys = static_cast<int>(rows.rows);
    shape.k_pos0 = rows.pos0;
    shape.num_heads = hq;
    shape.num_kv_heads = hkv;
    shape.head_dim = d;
    shape.q_stride = q_width;
    shape.kv_stride = kv_width;
    shape.window = c.IsGlobal(l) ? 0 : c.sliding_window;
    shape.scale = 1.0f;
    if (k_from_v) {
      shape.k_derive.k_norm = w_->layers[src].attn.k_norm.data();
      shape.k_derive.inv_freq = inv_freq;
    }
    ops_->Attention(&attn[s.offset * q_width], &q[s.offset * q_width], rows.k, rows.v, shape);
  }
  ops_->Linear(out, attn.data(), aw.o_proj.data(), T, H, q_width);
  return AllReduce(out, T * H);  // o_proj is row-parallel: partial sums over heads
}

absl::Status Gemma4Model::FeedForward(int l, const Batch& b, const float* x, float* out) {
  const ModelConfig& c = config_;
  const LayerWeights& lw = w_->layers[l];
  const int64_t T = b.tokens, H = c.hidden_size, I = lw.mlp.width;
  const float eps = static_cast<float>(c.rms_norm_eps);

  std::vector<float>& u = Scratch(ws_.u, T * H);
  std::vector<float>& gate = Scratch(ws_.gate, T * I);
  std::vector<float>& up = Scratch(ws_.up, T * I);
  ops_->RmsNorm(u.data(), x, lw.pre_feedforward_layernorm.data(), T, H, eps);
  ops_->Linear(gate.data(), u.data(), lw.mlp.gate_proj.data(), T, I, H);
  ops_->Linear(up.data(), u.data(), lw.mlp.up_proj.data(), T, I, H);
  ops_->GeluTanhMul(gate.data(), gate.data(), up.data(), T * I);
  ops_->Linear(out, gate.data(), lw.mlp.down_proj.data(), T, H, I);
  if (!c.enable_moe_block) {
    G4_RETURN_IF_ERROR(AllReduce(out, T * H));  // down_proj is row-parallel
  } else {
    // The shared MLP and the experts each get their own post-norm, so both partial sums are
    // reduced before any norm: one all-reduce over [shared; experts].
    std::vector<float>& partial = Scratch(ws_.partial, 2 * T * H);
    std::memcpy(partial.data(), out, T * H * sizeof(float));
    Moe(l, b, x, partial.data() + T * H);
    G4_RETURN_IF_ERROR(AllReduce(partial.data(), 2 * T * H));
    float* shared = partial.data();
    float* experts = partial.data() + T * H;
    ops_->RmsNorm(out, shared, lw.post_feedforward_layernorm_1.data(), T, H, eps);
    ops_->RmsNorm(experts, experts, lw.post_feedforward_layernorm_2.data(), T, H, eps);
    ops_->Add(out, experts, T * H);
  }
  // The sum gets post_feedforward_layernorm.
  ops_->RmsNorm(out, out, lw.post_feedforward_layernorm.data(), T, H, eps);
  return absl::OkStatus();
}

// The routed experts. The router reads the residual stream itself (not the pre-FFN-normed
// tensor), through a weightless RMSNorm, × router.scale, × 1/√H, in fp32.
void Gemma4Model::Moe(int l, const Batch& b, const float* x, float* out) {
  const ModelConfig& c = config_;
  const LayerWeights& lw = w_->layers[l];
  const MoeWeights& mw = lw.moe;
  const int64_t T = b.tokens, H = c.hidden_size;
  const int E = c.num_experts, K = c.top_k_experts;
  // This rank's experts and its part of their intermediate dimension (all of it unsharded).
  const Range local_experts = layout_.experts();
  const int64_t I = layout_.moe_intermediate().size();
  const float eps = static_cast<float>(c.rms_norm_eps);

  // Every rank routes every token: the inputs are identical on all ranks (an all-reduce leaves
  // the same bits everywhere), so the choices agree without a broadcast.
  std::vector<float> r(T * H), router_logits(T * E), weights(T * K);
  std::vector<int32_t> experts(T * K);
  ops_->RmsNorm(r.data(), x, nullptr, T, H, eps);
  for (int64_t t = 0; t < T; ++t) ops_->Mul(&r[t * H], mw.router_scale.data(), H);
  ops_->Scale(r.data(), static_cast<float>(1.0 / std::sqrt(static_cast<double>(H))), T * H);
  ops_->Linear(router_logits.data(), r.data(), mw.router_proj.data(), T, E, H);
  ops_->RouteTopK(experts.data(), weights.data(), router_logits.data(), mw.per_expert_scale.data(),
                  T, E, K);

  std::vector<float> u(T * H);
  ops_->RmsNorm(u.data(), x, lw.pre_feedforward_layernorm_2.data(), T, H, eps);

  // Group (token, slot) pairs by expert, then run each local expert once over its tokens.
  std::vector<std::vector<int64_t>> assigned(E);
  for (int64_t i = 0; i < T * K; ++i) assigned[experts[i]].push_back(i);
  std::fill_n(out, T * H, 0.0f);
  std::vector<float> in, gate_up, act, down;
  for (int e = static_cast<int>(local_experts.begin); e < local_experts.end; ++e) {
    const auto& slots = assigned[e];
    const int64_t n = static_cast<int64_t>(slots.size());
    if (n == 0) continue;
    const int64_t le = e - local_experts.begin;
    in.resize(n * H);
    for (int64_t j = 0; j < n; ++j) std::memcpy(&in[j * H], &u[(slots[j] / K) * H], H * 4);
    gate_up.resize(n * 2 * I);
    act.resize(n * I);
    down.resize(n * H);
    ops_->Linear(gate_up.data(), in.data(), mw.gate_up_proj.data() + le * 2 * I * H, n, 2 * I, H);
    for (int64_t j = 0; j < n; ++j) {  // rows [0, I) are the gate, [I, 2I) up
      ops_->GeluTanhMul(&act[j * I], &gate_up[j * 2 * I], &gate_up[j * 2 * I + I], I);
    }
    ops_->Linear(down.data(), act.data(), mw.down_proj.data() + le * H * I, n, H, I);
    for (int64_t j = 0; j < n; ++j) {
      const float wgt = weights[slots[j]];
      float* o = out + (slots[j] / K) * H;
      for (int64_t i = 0; i < H; ++i) o[i] += wgt * down[j * H + i];
    }
  }
}

// E2B/E4B: π = (RMSNorm(W_plm·x_emb / √H) + E_ple[t]·√P) / √2, per layer slice of width P.
void Gemma4Model::PerLayerInputs(const Batch& b, const float* embedded) {
  const ModelConfig& c = config_;
  const int64_t T = b.tokens, H = c.hidden_size, P = c.hidden_size_per_layer_input;
  const int64_t LP = c.num_layers * P;
  const float eps = static_cast<float>(c.rms_norm_eps);
  ple_inputs_.resize(T * LP);
  std::vector<float> token_part(T * LP);
  std::vector<int32_t> ids(b.ids);
  for (int32_t& id : ids) {
    if (id >= c.vocab_size_per_layer_input) id = 0;  // out-of-table ids read row 0 (JAX, vLLM)
  }
  ops_->Embed(token_part.data(), w_->embed_tokens_per_layer.data(), ids.data(), T, LP,
              ple_embed_scale_);
  ops_->Linear(ple_inputs_.data(), embedded, w_->per_layer_model_projection.data(), T, LP, H);
  ops_->Scale(ple_inputs_.data(), static_cast<float>(1.0 / std::sqrt(static_cast<double>(H))), T * LP);
  ops_->RmsNorm(ple_inputs_.data(), ple_inputs_.data(), w_->per_layer_projection_norm.data(),
                T * c.num_layers, P, eps);
  ops_->Add(ple_inputs_.data(), token_part.data(), T * LP);
  ops_->Scale(ple_inputs_.data(), static_cast<float>(1.0 / std::sqrt(2.0)), T * LP);
}

// x += RMSNorm(W_proj · (GELU(W_gate · x) ⊙ π_l); post_per_layer_input_norm).
void Gemma4Model::ApplyPerLayerInput(int l, const Batch& b, float* x) {
  const ModelConfig& c = config_;
  const PerLayerInputWeights& pw = w_->layers[l].ple;
  const int64_t T = b.tokens, H = c.hidden_size, P = c.hidden_size_per_layer_input;
  const int64_t LP = c.num_layers * P;
  std::vector<float> gate(T * P), proj(T * H);
  ops_->Linear(gate.data(), x, pw.input_gate.data(), T, P, H);
  for (int64_t t = 0; t < T; ++t) {
    ops_->GeluTanhMul(&gate[t * P], &gate[t * P], &ple_inputs_[t * LP + l * P], P);
  }
  ops_->Linear(proj.data(), gate.data(), pw.projection.data(), T, H, P);
  ops_->RmsNorm(proj.data(), proj.data(), pw.post_norm.data(), T, H,
                static_cast<float>(c.rms_norm_eps));
  ops_->Add(x, proj.data(), T * H);
}

}  // namespace g4
