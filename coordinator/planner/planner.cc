#include "coordinator/planner/planner.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "kernels/cpu/attention_workspace.h"

namespace g4 {
namespace {

namespace pb = ::g4serve::v1;

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr char kLayerPlaceholder[] = "{L}";

// ---------------------------------------------------------------------------------------------
// The tensors the engine loads (the same set worker/model/weights.cc reads).

struct TensorKind {
  std::string pattern;  // canonical name, "{L}" for the layer index
  int layer = -1;       // -1: not a layer tensor
  std::vector<int64_t> shape;
  pb::Partition partition = pb::REPLICATED;
  int64_t head_dim = 0;  // HEAD_* / KV_HEAD_ROWS: rows or cols per head
  int num_heads = 0;     // HEAD_* / KV_HEAD_ROWS: heads along the split dimension

  std::string Name() const {
    return layer < 0 ? pattern
                     : absl::StrReplaceAll(pattern, {{kLayerPlaceholder, absl::StrCat(layer)}});
  }
};

std::vector<TensorKind> EnumerateTensors(const ModelConfig& c) {
  std::vector<TensorKind> out;
  const int64_t h = c.hidden_size, v = c.vocab_size;
  auto add = [&](std::string pattern, int layer, std::vector<int64_t> shape,
                 pb::Partition partition, int64_t head_dim = 0, int num_heads = 0) {
    out.push_back({std::move(pattern), layer, std::move(shape), partition, head_dim, num_heads});
  };
  add("embed_tokens.weight", -1, {v, h}, pb::VOCAB_ROWS);
  if (!c.tie_word_embeddings) add("lm_head.weight", -1, {v, h}, pb::VOCAB_ROWS);
  add("norm.weight", -1, {h}, pb::REPLICATED);
  const int64_t ple = c.hidden_size_per_layer_input;
  if (ple > 0) {
    const int64_t lp = static_cast<int64_t>(c.num_layers) * ple;
    add("embed_tokens_per_layer.weight", -1, {c.vocab_size_per_layer_input, lp}, pb::REPLICATED);
    add("per_layer_model_projection.weight", -1, {lp, h}, pb::REPLICATED);
    add("per_layer_projection_norm.weight", -1, {ple}, pb::REPLICATED);
  }
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "layers.{L}.";
    for (const char* norm : {"input_layernorm.weight", "post_attention_layernorm.weight",
                             "pre_feedforward_layernorm.weight",
                             "post_feedforward_layernorm.weight"}) {
      add(p + norm, l, {h}, pb::REPLICATED);
    }
    add(p + "layer_scalar", l, {1}, pb::REPLICATED);
    const int64_t d = c.HeadDim(l);
    const int hq = c.num_heads, hkv = c.NumKvHeads(l);
    add(p + "self_attn.q_proj.weight", l, {hq * d, h}, pb::HEAD_ROWS, d, hq);
    if (!c.IsKvShared(l)) {
      add(p + "self_attn.k_proj.weight", l, {hkv * d, h}, pb::KV_HEAD_ROWS, d, hkv);
      if (c.HasVProj(l)) add(p + "self_attn.v_proj.weight", l, {hkv * d, h}, pb::KV_HEAD_ROWS, d, hkv);
    }
    add(p + "self_attn.o_proj.weight", l, {h, hq * d}, pb::HEAD_COLS, d, hq);
    add(p + "self_attn.q_norm.weight", l, {d}, pb::REPLICATED);
    if (!c.IsKvShared(l)) add(p + "self_attn.k_norm.weight", l, {d}, pb::REPLICATED);
    const int64_t w = c.MlpWidth(l);
    add(p + "mlp.gate_proj.weight", l, {w, h}, pb::MLP_ROWS);
    add(p + "mlp.up_proj.weight", l, {w, h}, pb::MLP_ROWS);
    add(p + "mlp.down_proj.weight", l, {h, w}, pb::MLP_COLS);
    if (c.enable_moe_block) {
      const int64_t e = c.num_experts, ie = c.moe_intermediate_size;
      for (const char* norm : {"pre_feedforward_layernorm_2.weight",
                               "post_feedforward_layernorm_1.weight",
                               "post_feedforward_layernorm_2.weight"}) {
        add(p + norm, l, {h}, pb::REPLICATED);
      }
      add(p + "router.proj.weight", l, {e, h}, pb::REPLICATED);
      add(p + "router.scale", l, {h}, pb::REPLICATED);
      add(p + "router.per_expert_scale", l, {e}, pb::REPLICATED);
      add(p + "experts.gate_up_proj", l, {e, 2 * ie, h}, pb::EXPERTS);
      add(p + "experts.down_proj", l, {e, h, ie}, pb::EXPERTS);
    }
    if (ple > 0) {
      add(p + "per_layer_input_gate.weight", l, {ple, h}, pb::REPLICATED);
      add(p + "per_layer_projection.weight", l, {h, ple}, pb::REPLICATED);
      add(p + "post_per_layer_input_norm.weight", l, {h}, pb::REPLICATED);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Degrees and per-rank boxes.

struct Degrees {
  int tp = 1;
  int ep = 1;
  int etp() const { return tp / ep; }
};

struct Box {
  int64_t e0 = 0, e1 = 0;  // experts; 0, 0 unless the tensor is 3-D
  int64_t r0 = 0, r1 = 0;
  int64_t c0 = 0, c1 = 0;
  int64_t Volume() const { return std::max<int64_t>(e1 - e0, 1) * (r1 - r0) * (c1 - c0); }
  bool operator==(const Box& o) const {
    return e0 == o.e0 && e1 == o.e1 && r0 == o.r0 && r1 == o.r1 && c0 == o.c0 && c1 == o.c1;
  }
  bool operator<(const Box& o) const {
    return std::tie(e0, e1, r0, r1, c0, c1) < std::tie(o.e0, o.e1, o.r0, o.r1, o.c0, o.c1);
  }
};

bool Overlap(const Box& a, const Box& b) {
  auto ov = [](int64_t a0, int64_t a1, int64_t b0, int64_t b1) { return a0 < b1 && b0 < a1; };
  const bool experts = (a.e1 == 0 && b.e1 == 0) || ov(a.e0, a.e1, b.e0, b.e1);
  return experts && ov(a.r0, a.r1, b.r0, b.r1) && ov(a.c0, a.c1, b.c0, b.c1);
}

Box FullBox(const std::vector<int64_t>& shape) {
  switch (shape.size()) {
    case 1:
      return {0, 0, 0, 1, 0, shape[0]};
    case 2:
      return {0, 0, 0, shape[0], 0, shape[1]};
    default:
      return {0, shape[0], 0, shape[1], 0, shape[2]};
  }
}

std::pair<int64_t, int64_t> Part(int64_t n, int parts, int index) {
  return {n / parts * index, n / parts * (index + 1)};
}

// Heads of a `num_heads` dimension held by `rank`: a contiguous part, or one replicated head.
std::pair<int64_t, int64_t> HeadRange(int num_heads, int tp, int rank) {
  if (num_heads >= tp) return Part(num_heads, tp, rank);
  const int head = rank / (tp / num_heads);
  return {head, head + 1};
}

std::vector<Box> RankBoxes(const ModelConfig& c, const TensorKind& t, const Degrees& d, int rank) {
  Box b = FullBox(t.shape);
  switch (t.partition) {
    case pb::VOCAB_ROWS:
    case pb::MLP_ROWS:
      std::tie(b.r0, b.r1) = Part(t.shape[0], d.tp, rank);
      return {b};
    case pb::MLP_COLS:
      std::tie(b.c0, b.c1) = Part(t.shape[1], d.tp, rank);
      return {b};
    case pb::HEAD_ROWS:
    case pb::KV_HEAD_ROWS: {
      auto [h0, h1] = HeadRange(t.num_heads, d.tp, rank);
      b.r0 = h0 * t.head_dim;
      b.r1 = h1 * t.head_dim;
      return {b};
    }
    case pb::HEAD_COLS: {
      auto [h0, h1] = HeadRange(t.num_heads, d.tp, rank);
      b.c0 = h0 * t.head_dim;
      b.c1 = h1 * t.head_dim;
      return {b};
    }
    case pb::EXPERTS: {
      const int etp = d.etp();
      std::tie(b.e0, b.e1) = Part(c.num_experts, d.ep, rank / etp);
      const int64_t ie = c.moe_intermediate_size;
      auto [m0, m1] = Part(ie, etp, rank % etp);
      if (t.shape[2] == ie) {  // down_proj [E, H, I]: columns
        b.c0 = m0;
        b.c1 = m1;
        return {b};
      }
      if (etp == 1) return {b};  // gate_up_proj whole
      Box up = b;                 // gate rows [0, I), up rows [I, 2I): one part of each
      b.r0 = m0;
      b.r1 = m1;
      up.r0 = ie + m0;
      up.r1 = ie + m1;
      return {b, up};
    }
    default:
      return {b};
  }
}

absl::Status NotDivisible(absl::string_view flag, int64_t degree, absl::string_view key,
                          int64_t value) {
  return absl::InvalidArgumentError(
      absl::StrCat(flag, " ", degree, ": ", key, " = ", value, " is not divisible by ", degree));
}

// First layer of `type`, -1 if none.
int FirstLayerOfType(const ModelConfig& c, LayerType type) {
  for (int l = 0; l < c.num_layers; ++l) {
    if (c.layer_types[l] == type) return l;
  }
  return -1;
}

absl::Status ValidateDegrees(const ModelConfig& c, const Degrees& d) {
  const int tp = d.tp;
  if (tp < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor-parallel-size ", tp, ": must be at least 1"));
  }
  if (c.num_heads % tp != 0) {
    return NotDivisible("tensor-parallel-size", tp, "num_attention_heads", c.num_heads);
  }
  for (LayerType type : {LayerType::kSliding, LayerType::kGlobal}) {
    const int layer = FirstLayerOfType(c, type);
    if (layer < 0) continue;
    const int kv = c.NumKvHeads(layer);
    const bool global = type == LayerType::kGlobal;
    const char* key = global && c.attention_k_eq_v ? "num_global_key_value_heads"
                                                   : "num_key_value_heads";
    if (kv >= tp && kv % tp != 0) return NotDivisible("tensor-parallel-size", tp, key, kv);
    if (kv < tp && tp % kv != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor-parallel-size ", tp, ": exceeds ", key, " = ", kv, " (",
          global ? "global" : "sliding", " layers) and is not a multiple of it, so the KV heads "
          "cannot be replicated evenly"));
    }
  }
  for (int l = 0; l < c.num_layers; ++l) {
    const int64_t w = c.MlpWidth(l);
    if (w % tp != 0) {
      return NotDivisible("tensor-parallel-size", tp,
                          w == c.intermediate_size ? "intermediate_size"
                                                   : "2 × intermediate_size (double-wide MLP)",
                          w);
    }
  }
  if (c.vocab_size % tp != 0) return NotDivisible("tensor-parallel-size", tp, "vocab_size", c.vocab_size);
  if (!c.enable_moe_block) {
    if (d.ep != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "expert-parallel-size ", d.ep, ": the model has no experts (enable_moe_block is false)"));
    }
    return absl::OkStatus();
  }
  if (d.ep < 1 || tp % d.ep != 0) {
    return absl::InvalidArgumentError(absl::StrCat("expert-parallel-size ", d.ep,
                                                   ": must divide tensor-parallel-size ", tp));
  }
  if (c.num_experts % d.ep != 0) {
    return NotDivisible("expert-parallel-size", d.ep, "num_experts", c.num_experts);
  }
  if (c.moe_intermediate_size % d.etp() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expert-parallel-size ", d.ep, ": moe_intermediate_size = ", c.moe_intermediate_size,
        " is not divisible by tensor-parallel-size / expert-parallel-size = ", d.etp()));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// KV and memory arithmetic.

int KvHeadsPerRank(int kv_heads, int tp) { return kv_heads >= tp ? kv_heads / tp : 1; }

struct KvPerToken {
  int64_t sliding = 0;  // all sliding KV layers
  int64_t global = 0;
};

// Tensors a layer caches per token and KV head: K and V, or V alone on the global layers of
// attention_k_eq_v models, where attention derives K = RoPE(V ⊙ k_norm) from V (the worker's
// KeysDerivedFromValues, worker/kv_cache/kv_geometry.h).
int CachedTensors(const ModelConfig& c, int layer) { return c.HasVProj(layer) ? 2 : 1; }

// tp = 1 gives the whole model's numbers.
KvPerToken KvBytesPerToken(const ModelConfig& c, int tp, int kv_dtype_bytes) {
  KvPerToken k;
  for (int l = 0; l < c.num_layers; ++l) {
    if (c.IsKvShared(l)) continue;
    const int64_t b = int64_t{CachedTensors(c, l)} * KvHeadsPerRank(c.NumKvHeads(l), tp) *
                      c.HeadDim(l) * kv_dtype_bytes;
    (c.IsGlobal(l) ? k.global : k.sliding) += b;
  }
  return k;
}

int64_t SlidingTokens(const ModelConfig& c, int64_t context) {
  return c.sliding_window > 0 ? std::min<int64_t>(context, c.sliding_window) : context;
}

int64_t KvBytesPerSequence(const ModelConfig& c, const KvPerToken& k, int64_t context) {
  return k.sliding * SlidingTokens(c, context) + k.global * context;
}

// The CPU backend's attention buffers that grow with the context (kernels/cpu/
// attention_workspace.h), per rank at `context` tokens: the largest single attention call's
// scratch, the gather buffers of the paged cache (V, and K where it is stored: each as large as
// the largest layer's rows), and the derived keys' RoPE table while it grows. These are alive at
// once during a global layer's attention deep into a long prompt.
int64_t CpuAttentionBytes(const ModelConfig& c, const PlanRequest& req, const Degrees& d,
                          int64_t context) {
  const int tp = d.tp;
  const int64_t t = std::min<int64_t>(req.max_num_batched_tokens, context);
  int64_t scratch = 0, gather_v = 0, gather_k = 0, rope = 0;
  for (int l = 0; l < c.num_layers; ++l) {
    const int src = c.KvSourceLayer(l);
    const int hd = c.HeadDim(l);
    const int heads = c.num_heads / tp;
    const bool derived = !c.HasVProj(src);
    const int64_t keys = c.IsGlobal(src) || c.sliding_window <= 0
                             ? context
                             : std::min<int64_t>(context, c.sliding_window - 1 + t);
    for (const int64_t queries : {int64_t{1}, t}) {
      scratch = std::max(scratch, cpu::AttentionScratchFloats(queries, keys, heads, hd, derived,
                                                              /*batch_invariant=*/false));
    }
    const int64_t width = int64_t{KvHeadsPerRank(c.NumKvHeads(src), tp)} * c.HeadDim(src);
    gather_v = std::max(gather_v, cpu::GatherScratchFloats(keys, width));
    if (!derived) gather_k = std::max(gather_k, cpu::GatherScratchFloats(keys, width));
    if (derived) {
      const RopeConfig& r = c.Rope(src);
      // As the worker's RopeInvFreq: transformers' int(partial_rotary_factor * head_dim // 2).
      const int rotated = r.type == RopeType::kProportional
                              ? static_cast<int>(std::floor(r.partial_rotary_factor *
                                                            c.HeadDim(src) / 2))
                              : c.HeadDim(src) / 2;
      rope = std::max(rope, cpu::RopeTablePeakFloats(context, rotated));
    }
  }
  return (scratch + gather_v + gather_k + rope) * 4;
}

int64_t WorkspaceBytes(const ModelConfig& c, const PlanRequest& req, const Degrees& d, int rank,
                       int64_t context, int64_t reserve) {
  const int64_t t = req.max_num_batched_tokens;
  const int tp = d.tp;
  int64_t attn = 0, mlp = 0;
  for (int l = 0; l < c.num_layers; ++l) {
    const int64_t hd = c.HeadDim(l);
    const int64_t q = int64_t{c.num_heads} / tp * hd;
    const int64_t kv = int64_t{KvHeadsPerRank(c.NumKvHeads(l), tp)} * hd;
    attn = std::max(attn, 2 * q + CachedTensors(c, l) * kv);  // q, attention output, [k,] v
    mlp = std::max(mlp, 2 * c.MlpWidth(l) / tp);  // gate and up
  }
  int64_t moe = 0;
  if (c.enable_moe_block) {  // worst case: every routed token lands on this rank's experts
    moe = int64_t{c.top_k_experts} * 2 * c.moe_intermediate_size / d.etp() + c.num_experts;
  }
  const int64_t ple = int64_t{c.num_layers} * c.hidden_size_per_layer_input;
  const int64_t width = 3 * c.hidden_size + attn + mlp + moe + ple;
  const int64_t rows = std::min<int64_t>(t, req.max_num_seqs);
  int64_t logits = rows * (c.vocab_size / tp) * 4;
  if (rank == 0 && tp > 1) logits += rows * c.vocab_size * 4;  // gathered on the leader
  const int64_t cpu = req.device_kind == DeviceKind::kCpu ? CpuAttentionBytes(c, req, d, context)
                                                         : 0;
  return t * width * 4 + logits + cpu + reserve;
}

// ---------------------------------------------------------------------------------------------
// Plan construction for fixed degrees.

struct Built {
  pb::ParallelPlan plan;
  bool weights_fit = false;
  int64_t need_bytes = 0;  // weights + workspace of the neediest rank
  int64_t need_weights = 0, need_workspace = 0;
};

std::string DeviceWords(const PlanRequest& r) {
  return absl::StrCat(r.num_devices, " × ", FormatGiB(r.device_memory_bytes), " ",
                      r.device_kind == DeviceKind::kGpu ? "GPU" : "CPU rank",
                      r.num_devices == 1 ? "" : "s");
}

Built BuildPlan(const ModelConfig& c, const PlanRequest& req, const Degrees& d, int64_t context,
                int64_t reserve) {
  Built out;
  pb::ParallelPlan& plan = out.plan;
  const int tp = d.tp;

  pb::ModelSummary* m = plan.mutable_model();
  m->set_name(req.model_name);
  m->set_num_layers(c.num_layers);
  m->set_num_sliding_layers(c.NumLayersOfType(LayerType::kSliding));
  m->set_num_global_layers(c.NumLayersOfType(LayerType::kGlobal));
  m->set_hidden_size(c.hidden_size);
  m->set_intermediate_size(c.intermediate_size);
  m->set_vocab_size(c.vocab_size);
  m->set_num_attention_heads(c.num_heads);
  m->set_num_kv_heads_sliding(c.num_kv_heads);
  m->set_num_kv_heads_global(c.attention_k_eq_v ? c.num_global_kv_heads : c.num_kv_heads);
  m->set_head_dim_sliding(c.head_dim);
  m->set_head_dim_global(c.global_head_dim);
  m->set_sliding_window(c.sliding_window);
  m->set_max_position_embeddings(c.max_position_embeddings);
  m->set_moe(c.enable_moe_block);
  m->set_num_experts(c.num_experts);
  m->set_top_k_experts(c.top_k_experts);
  m->set_moe_intermediate_size(c.moe_intermediate_size);
  const std::vector<TensorKind> tensors = EnumerateTensors(c);
  int64_t params = 0;
  for (const TensorKind& t : tensors) params += FullBox(t.shape).Volume();
  m->set_num_parameters(params);
  int kv_layers_s = 0, kv_layers_g = 0;
  for (int l = 0; l < c.num_layers; ++l) {
    if (!c.IsKvShared(l)) ++(c.IsGlobal(l) ? kv_layers_g : kv_layers_s);
  }
  m->set_num_kv_layers_sliding(kv_layers_s);
  m->set_num_kv_layers_global(kv_layers_g);
  for (int l = 0; l < c.num_layers; ++l) {
    if (c.IsGlobal(l)) m->add_global_layers(l);
  }

  const pb::DeviceSpec::Kind kind =
      req.device_kind == DeviceKind::kGpu ? pb::DeviceSpec::GPU : pb::DeviceSpec::CPU;
  plan.mutable_device()->set_kind(kind);
  plan.mutable_device()->set_memory_bytes(req.device_memory_bytes);
  plan.set_num_devices(req.num_devices);
  plan.set_tensor_parallel_size(tp);
  plan.set_expert_parallel_size(d.ep);
  plan.set_expert_tensor_parallel_size(d.etp());
  plan.set_world_size(tp);
  plan.set_num_replicas(req.num_devices / tp);
  plan.set_vocab_parallel(tp > 1);
  for (LayerType type : {LayerType::kSliding, LayerType::kGlobal}) {
    if (c.NumLayersOfType(type) == 0) continue;
    const int kv = type == LayerType::kGlobal ? m->num_kv_heads_global() : m->num_kv_heads_sliding();
    pb::KvHeadSharding* s = plan.add_kv_heads();
    s->set_layer_type(type == LayerType::kGlobal ? "global" : "sliding");
    s->set_num_kv_heads(kv);
    s->set_kv_heads_per_rank(KvHeadsPerRank(kv, tp));
    s->set_replicated(tp > kv);
    s->set_replication_factor(tp > kv ? tp / kv : 1);
    s->set_cached_tensors(CachedTensors(c, FirstLayerOfType(c, type)));
    if (tp > kv) {
      plan.add_warnings(absl::StrCat(
          s->layer_type(), " layers have ", kv, " KV heads < tensor-parallel-size ", tp,
          ": each KV head (its k_proj", c.attention_k_eq_v && type == LayerType::kGlobal ? "" : "/v_proj",
          " rows and its KV cache) is replicated on ", tp / kv, " ranks"));
    }
  }
  plan.set_weight_dtype_bytes(req.weight_dtype_bytes);
  plan.set_kv_dtype_bytes(req.kv_dtype_bytes);
  plan.set_memory_utilization(req.memory_utilization);
  plan.set_max_num_batched_tokens(req.max_num_batched_tokens);
  plan.set_max_num_seqs(req.max_num_seqs);
  plan.set_runtime_reserve_bytes(reserve);

  const KvPerToken whole = KvBytesPerToken(c, 1, req.kv_dtype_bytes);
  plan.set_kv_bytes_per_token_sliding(whole.sliding);
  plan.set_kv_bytes_per_token_global(whole.global);
  plan.set_max_context(context);
  plan.set_kv_bytes_per_sequence_sliding(whole.sliding * SlidingTokens(c, context));
  plan.set_kv_bytes_per_sequence_global(whole.global * context);
  plan.set_kv_bytes_per_sequence_at_max_context(KvBytesPerSequence(c, whole, context));

  const KvPerToken per_rank = KvBytesPerToken(c, tp, req.kv_dtype_bytes);
  const int64_t usable = static_cast<int64_t>(
      std::floor(static_cast<double>(req.device_memory_bytes) * req.memory_utilization));
  int64_t replica_weights = 0;
  out.weights_fit = true;
  for (int r = 0; r < tp; ++r) {
    pb::RankPlan* rp = plan.add_ranks();
    rp->set_rank(r);
    rp->set_tp_rank(r);
    rp->set_ep_rank(r / d.etp());
    rp->set_expert_tp_rank(r % d.etp());
    *rp->mutable_device() = plan.device();
    if (c.enable_moe_block) {
      auto [e0, e1] = Part(c.num_experts, d.ep, r / d.etp());
      rp->set_expert_begin(e0);
      rp->set_expert_end(e1);
    }
    rp->set_kv_heads_sliding(KvHeadsPerRank(m->num_kv_heads_sliding(), tp));
    rp->set_kv_heads_global(KvHeadsPerRank(m->num_kv_heads_global(), tp));
    rp->set_kv_bytes_per_token_sliding(per_rank.sliding);
    rp->set_kv_bytes_per_token_global(per_rank.global);
    rp->set_kv_bytes_per_sequence_at_max_context(KvBytesPerSequence(c, per_rank, context));

    // Slices, grouped over layers with identical shape and ranges.
    std::map<std::string, int> group;  // key -> index in rp->slices
    int64_t weights = 0;
    for (const TensorKind& t : tensors) {
      for (const Box& b : RankBoxes(c, t, d, r)) {
        const int64_t bytes = b.Volume() * req.weight_dtype_bytes;
        weights += bytes;
        std::string key = absl::StrCat(t.pattern, "|", absl::StrJoin(t.shape, ","), "|", b.e0, ",",
                                       b.e1, ",", b.r0, ",", b.r1, ",", b.c0, ",", b.c1);
        auto [it, inserted] = group.emplace(key, rp->slices_size());
        pb::TensorSlice* s;
        if (inserted) {
          s = rp->add_slices();
          s->set_tensor(t.pattern);
          for (int64_t x : t.shape) s->add_shape(x);
          s->set_partition(t.partition);
          s->set_expert_begin(b.e0);
          s->set_expert_end(b.e1);
          s->set_row_begin(b.r0);
          s->set_row_end(b.r1);
          s->set_col_begin(b.c0);
          s->set_col_end(b.c1);
        } else {
          s = rp->mutable_slices(it->second);
        }
        if (t.layer >= 0) s->add_layers(t.layer);
        s->set_bytes(s->bytes() + bytes);
      }
    }
    replica_weights += weights;
    const int64_t workspace = WorkspaceBytes(c, req, d, r, context, reserve);
    pb::MemoryBreakdown* mem = rp->mutable_memory();
    mem->set_device_bytes(req.device_memory_bytes);
    mem->set_usable_bytes(usable);
    mem->set_weights_bytes(weights);
    mem->set_activation_workspace_bytes(workspace);
    mem->set_kv_budget_bytes(usable - weights - workspace);
    if (weights + workspace > out.need_bytes) {
      out.need_bytes = weights + workspace;
      out.need_weights = weights;
      out.need_workspace = workspace;
    }
    if (mem->kv_budget_bytes() < 0) out.weights_fit = false;
  }
  plan.set_weights_bytes_per_replica(replica_weights);
  if (!out.weights_fit) return out;

  // Concurrency at max context, and the longest single sequence, over the tightest rank.
  int64_t n = std::numeric_limits<int32_t>::max();
  for (const pb::RankPlan& rp : plan.ranks()) {
    const int64_t per_seq = rp.kv_bytes_per_sequence_at_max_context();
    if (per_seq > 0) n = std::min(n, rp.memory().kv_budget_bytes() / per_seq);
  }
  plan.set_max_concurrent_sequences_at_max_context(static_cast<int32_t>(n));
  auto fits = [&](int64_t ctx) {
    for (const pb::RankPlan& rp : plan.ranks()) {
      if (KvBytesPerSequence(c, per_rank, ctx) > rp.memory().kv_budget_bytes()) return false;
    }
    return true;
  };
  int64_t lo = 0, hi = c.max_position_embeddings;  // fits(lo) holds
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (fits(mid)) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  plan.set_max_single_sequence_context(lo);
  for (pb::RankPlan& rp : *plan.mutable_ranks()) {
    pb::MemoryBreakdown* mem = rp.mutable_memory();
    mem->set_kv_sliding_bytes(n * per_rank.sliding * SlidingTokens(c, context));
    mem->set_kv_global_bytes(n * per_rank.global * context);
    mem->set_free_bytes(mem->kv_budget_bytes() - mem->kv_sliding_bytes() - mem->kv_global_bytes());
  }
  if (n == 0) {
    const pb::RankPlan& r0 = plan.ranks(0);
    const int64_t need = r0.kv_bytes_per_sequence_at_max_context();
    const int64_t have = r0.memory().kv_budget_bytes();
    plan.add_warnings(absl::StrCat(
        "a ", context, "-token sequence needs ", FormatGiB(need), " of KV per rank, ",
        FormatGiB(have), " is left after weights and workspace (short by ", FormatGiB(need - have),
        "): no sequence of max context fits; the longest single sequence is ", lo,
        " tokens (lower --max-context or raise --tensor-parallel-size)"));
  }
  if (req.num_devices % tp != 0) {
    plan.add_warnings(absl::StrCat(req.num_devices % tp, " of ", req.num_devices,
                                   " devices are unused (not a multiple of tensor-parallel-size ",
                                   tp, ")"));
  }
  return out;
}

absl::Status DoesNotFit(const PlanRequest& req, const Built& b, int tp) {
  const int64_t usable = b.plan.ranks(0).memory().usable_bytes();
  return absl::ResourceExhaustedError(absl::StrCat(
      "does not fit: ", req.model_name.empty() ? "the model" : req.model_name, " on ",
      DeviceWords(req), " at tensor-parallel-size ", tp, " needs ", FormatGiB(b.need_bytes),
      " per rank (weights ", FormatGiB(b.need_weights), " + activations/workspace ",
      FormatGiB(b.need_workspace), "), device has ", FormatGiB(usable), " usable (",
      FormatGiB(req.device_memory_bytes), " × ", absl::StrFormat("%.2f", req.memory_utilization),
      "): short by ", FormatGiB(b.need_bytes - usable)));
}

int DefaultExpertParallel(const ModelConfig& c, int tp) {
  if (!c.enable_moe_block) return 1;
  for (int ep = tp; ep > 1; --ep) {  // prefer EP: experts partitioned, not TP-split
    if (tp % ep == 0 && c.num_experts % ep == 0 && c.moe_intermediate_size % (tp / ep) == 0) {
      return ep;
    }
  }
  return 1;
}

absl::Status ValidateRequest(const ModelConfig& c, const PlanRequest& r) {
  if (r.num_devices < 1) {
    return absl::InvalidArgumentError(absl::StrCat("number of devices ", r.num_devices,
                                                   ": must be at least 1"));
  }
  if (r.device_memory_bytes <= 0) {
    return absl::InvalidArgumentError("device memory: must be positive");
  }
  if (!(r.memory_utilization > 0.0 && r.memory_utilization <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gpu-memory-utilization ", r.memory_utilization, ": must be in (0, 1]"));
  }
  if (r.max_context < 0 || r.max_context > c.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat("max-context ", r.max_context,
                                                   ": must be in [1, max_position_embeddings = ",
                                                   c.max_position_embeddings, "]"));
  }
  if (r.max_num_batched_tokens < 1 || r.max_num_seqs < 1) {
    return absl::InvalidArgumentError("max-num-batched-tokens and max-num-seqs must be positive");
  }
  if (r.weight_dtype_bytes < 1 || r.kv_dtype_bytes < 1) {
    return absl::InvalidArgumentError("dtype sizes must be positive");
  }
  if (r.tensor_parallel_size < 0 || r.tensor_parallel_size > r.num_devices) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor-parallel-size ", r.tensor_parallel_size, ": must be in [1, ", r.num_devices,
        "] (the number of devices)"));
  }
  if (r.expert_parallel_size < 0) {
    return absl::InvalidArgumentError(absl::StrCat("expert-parallel-size ", r.expert_parallel_size,
                                                   ": must be at least 1"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string FormatGiB(int64_t bytes) {
  return absl::StrFormat("%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
}

// The CPU worker's own resident set while it serves, without a model's tensors: the binary and
// its shared libraries (~20 MiB of file pages), gRPC, and what the first forward pass allocates
// once and keeps (OpenBLAS's and Gloo's buffers, the heap's arenas): ~6 MiB. Measured as vLLM
// profiles memory, with a warm-up: a g4-worker of the tiny long-context checkpoint (0.3 MiB of
// weights) peaks at 30.3-30.6 MiB after one 64-token request (idle before it: 23.5-25.6 MiB),
// 2026-12-03, Intel Xeon VM; rounded up to 32 MiB. It used to be 64 MiB (a guess: the plan was
// 1.7x a 32768-token request's worker), then 24 MiB (an idle worker: ranks 4-14 % over the plan).
// docs/long_context.md, "Memory against the plan".
constexpr int64_t kCpuRuntimeReserveBytes = 32 * kMiB;

absl::StatusOr<pb::ParallelPlan> MakePlan(const ModelConfig& c, const PlanRequest& req) {
  G4_RETURN_IF_ERROR(ValidateRequest(c, req));
  const int64_t context = req.max_context > 0 ? req.max_context : c.max_position_embeddings;
  const int64_t reserve = req.runtime_reserve_bytes >= 0 ? req.runtime_reserve_bytes
                          : req.device_kind == DeviceKind::kGpu ? 512 * kMiB
                                                                : kCpuRuntimeReserveBytes;
  auto degrees_for = [&](int tp) {
    return Degrees{tp, req.expert_parallel_size > 0 ? req.expert_parallel_size
                                                    : DefaultExpertParallel(c, tp)};
  };

  // Forced degree (or CPU ranks: one replica over all of them).
  if (req.tensor_parallel_size > 0 || req.device_kind == DeviceKind::kCpu) {
    const int tp = req.tensor_parallel_size > 0 ? req.tensor_parallel_size : req.num_devices;
    const Degrees d = degrees_for(tp);
    G4_RETURN_IF_ERROR(ValidateDegrees(c, d));
    Built b = BuildPlan(c, req, d, context, reserve);
    if (!b.weights_fit) return DoesNotFit(req, b, tp);
    return std::move(b.plan);
  }

  // Automatic: the smallest valid degree where one max-context sequence fits; else the smallest
  // where weights and workspace fit (with a warning); else the error for the largest degree.
  std::optional<Built> weights_only, largest;
  int largest_tp = 0;
  for (int tp = 1; tp <= req.num_devices; ++tp) {
    const Degrees d = degrees_for(tp);
    if (!ValidateDegrees(c, d).ok()) continue;
    Built b = BuildPlan(c, req, d, context, reserve);
    if (b.weights_fit && b.plan.max_concurrent_sequences_at_max_context() > 0) {
      return std::move(b.plan);
    }
    if (b.weights_fit && !weights_only.has_value()) weights_only = b;
    largest = std::move(b);
    largest_tp = tp;
  }
  if (weights_only.has_value()) return std::move(weights_only->plan);
  if (!largest.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no valid tensor-parallel-size up to ", req.num_devices));
  }
  return DoesNotFit(req, *largest, largest_tp);
}

// ---------------------------------------------------------------------------------------------
// Expansion and checking.

namespace {

Box BoxOf(const pb::TensorSlice& s) {
  return {s.expert_begin(), s.expert_end(), s.row_begin(), s.row_end(), s.col_begin(), s.col_end()};
}

// Concrete names of a slice entry.
absl::StatusOr<std::vector<std::string>> NamesOf(const pb::TensorSlice& s) {
  const bool has_placeholder = s.tensor().find(kLayerPlaceholder) != std::string::npos;
  if (has_placeholder != (s.layers_size() > 0)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "slice \"", s.tensor(), "\": a {L} pattern needs layers and layers need a {L} pattern"));
  }
  if (!has_placeholder) return std::vector<std::string>{s.tensor()};
  std::vector<std::string> names;
  for (int l : s.layers()) {
    names.push_back(absl::StrReplaceAll(s.tensor(), {{kLayerPlaceholder, absl::StrCat(l)}}));
  }
  return names;
}

absl::Status Bad(absl::string_view what) { return absl::FailedPreconditionError(what); }

}  // namespace

absl::StatusOr<std::vector<RankTensor>> SlicesForRank(const ModelConfig& config,
                                                      const pb::ParallelPlan& plan, int rank) {
  (void)config;
  if (rank < 0 || rank >= plan.ranks_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", rank, ": the plan has ", plan.ranks_size(), " ranks"));
  }
  std::vector<RankTensor> out;
  for (const pb::TensorSlice& s : plan.ranks(rank).slices()) {
    G4_ASSIGN_OR_RETURN(std::vector<std::string> names, NamesOf(s));
    for (std::string& name : names) {
      RankTensor t;
      t.name = std::move(name);
      t.shape.assign(s.shape().begin(), s.shape().end());
      if (s.shape_size() == 3) {
        t.expert_begin = s.expert_begin();
        t.expert_end = s.expert_end();
      }
      t.slice = TensorSlice{-1, s.row_begin(), s.row_end(), s.col_begin(), s.col_end()};
      out.push_back(std::move(t));
    }
  }
  return out;
}

absl::Status CheckPlan(const ModelConfig& c, const pb::ParallelPlan& plan) {
  const int tp = plan.tensor_parallel_size();
  const Degrees d{tp, plan.expert_parallel_size()};
  if (tp < 1 || d.ep < 1 || tp % d.ep != 0) {
    return Bad(absl::StrCat("degrees: tensor_parallel_size ", tp, ", expert_parallel_size ", d.ep));
  }
  G4_RETURN_IF_ERROR(Annotate(ValidateDegrees(c, d), "degrees"));
  if (plan.expert_tensor_parallel_size() != d.etp() || plan.world_size() != tp) {
    return Bad(absl::StrCat("world_size ", plan.world_size(), " / expert_tensor_parallel_size ",
                            plan.expert_tensor_parallel_size(), " inconsistent with degrees"));
  }
  if (plan.num_replicas() < 1 || int64_t{plan.num_replicas()} * tp > plan.num_devices()) {
    return Bad(absl::StrCat("num_replicas ", plan.num_replicas(), " × world_size ", tp,
                            " exceeds num_devices ", plan.num_devices()));
  }
  if (plan.ranks_size() != tp) {
    return Bad(absl::StrCat("ranks: ", plan.ranks_size(), " entries for world_size ", tp));
  }
  for (const pb::KvHeadSharding& s : plan.kv_heads()) {
    const bool rep = tp > s.num_kv_heads();
    if (s.replicated() != rep || s.replication_factor() != (rep ? tp / s.num_kv_heads() : 1) ||
        s.kv_heads_per_rank() != KvHeadsPerRank(s.num_kv_heads(), tp)) {
      return Bad(absl::StrCat("kv_heads (", s.layer_type(), "): replication does not match TP ", tp));
    }
    const LayerType type = s.layer_type() == "global" ? LayerType::kGlobal : LayerType::kSliding;
    const int layer = FirstLayerOfType(c, type);
    if (layer < 0 || s.cached_tensors() != CachedTensors(c, layer)) {
      return Bad(absl::StrCat("kv_heads (", s.layer_type(), "): cached_tensors ",
                              s.cached_tensors(), " does not match the config"));
    }
  }

  // Coverage.
  const int wbytes = plan.weight_dtype_bytes();
  if (wbytes < 1) return Bad("weight_dtype_bytes must be positive");
  const std::vector<TensorKind> tensors = EnumerateTensors(c);
  std::map<std::string, const TensorKind*> expected;
  for (const TensorKind& t : tensors) expected[t.Name()] = &t;
  std::map<std::string, std::vector<std::pair<int, Box>>> held;
  for (int r = 0; r < tp; ++r) {
    const pb::RankPlan& rp = plan.ranks(r);
    if (rp.rank() != r || rp.tp_rank() != r || rp.ep_rank() != r / d.etp() ||
        rp.expert_tp_rank() != r % d.etp()) {
      return Bad(absl::StrCat("rank ", r, ": rank/tp_rank/ep_rank/expert_tp_rank inconsistent"));
    }
    int64_t weights = 0;
    for (const pb::TensorSlice& s : rp.slices()) {
      G4_ASSIGN_OR_RETURN(std::vector<std::string> names, NamesOf(s));
      const Box b = BoxOf(s);
      for (const std::string& name : names) {
        auto it = expected.find(name);
        if (it == expected.end()) {
          return Bad(absl::StrCat("rank ", r, ": slice of unknown tensor \"", name, "\""));
        }
        const TensorKind& t = *it->second;
        if (!std::equal(t.shape.begin(), t.shape.end(), s.shape().begin(), s.shape().end()) ||
            t.partition != s.partition()) {
          return Bad(absl::StrCat("rank ", r, ": tensor \"", name, "\": shape or partition differs"));
        }
        const Box full = FullBox(t.shape);
        const bool experts_ok = t.shape.size() == 3 ? (0 <= b.e0 && b.e0 < b.e1 && b.e1 <= full.e1)
                                                    : (b.e0 == 0 && b.e1 == 0);
        if (!experts_ok || b.r0 < 0 || b.r0 >= b.r1 || b.r1 > full.r1 || b.c0 < 0 ||
            b.c0 >= b.c1 || b.c1 > full.c1) {
          return Bad(absl::StrCat("rank ", r, ": tensor \"", name, "\": slice out of bounds"));
        }
        held[name].push_back({r, b});
        weights += b.Volume() * wbytes;
      }
      if (s.bytes() != b.Volume() * wbytes * static_cast<int64_t>(names.size())) {
        return Bad(absl::StrCat("rank ", r, ": slice \"", s.tensor(), "\": bytes ", s.bytes(),
                                " do not match its ranges"));
      }
    }
    if (weights != rp.memory().weights_bytes()) {
      return Bad(absl::StrCat("rank ", r, ": weights_bytes ", rp.memory().weights_bytes(),
                              " != sum of its slices ", weights));
    }
  }
  for (const TensorKind& t : tensors) {
    const std::string name = t.Name();
    auto it = held.find(name);
    if (it == held.end()) return Bad(absl::StrCat("tensor \"", name, "\" is held by no rank"));
    const std::vector<std::pair<int, Box>>& parts = it->second;
    const Box full = FullBox(t.shape);
    if (t.partition == pb::REPLICATED) {
      std::vector<int> count(tp, 0);
      for (const auto& [r, b] : parts) {
        if (!(b == full)) return Bad(absl::StrCat("replicated tensor \"", name, "\": rank ", r, " holds a part"));
        ++count[r];
      }
      for (int r = 0; r < tp; ++r) {
        if (count[r] != 1) {
          return Bad(absl::StrCat("replicated tensor \"", name, "\": rank ", r, " holds it ",
                                  count[r], " times"));
        }
      }
      continue;
    }
    // Distinct parts tile the tensor; each is held by `copies` ranks (KV head replication).
    const int copies = t.partition == pb::KV_HEAD_ROWS && tp > t.num_heads ? tp / t.num_heads : 1;
    std::map<Box, int> distinct;
    for (const auto& [r, b] : parts) ++distinct[b];
    int64_t volume = 0;
    for (auto a = distinct.begin(); a != distinct.end(); ++a) {
      if (a->second != copies) {
        return Bad(absl::StrCat("tensor \"", name, "\": a part is held by ", a->second,
                                " ranks, expected ", copies));
      }
      volume += a->first.Volume();
      for (auto b = std::next(a); b != distinct.end(); ++b) {
        if (Overlap(a->first, b->first)) {
          return Bad(absl::StrCat("tensor \"", name, "\": parts overlap"));
        }
      }
    }
    if (volume != full.Volume()) {
      return Bad(absl::StrCat("tensor \"", name, "\": parts cover ", volume, " of ",
                              full.Volume(), " elements"));
    }
  }

  // KV arithmetic and memory sums.
  const int64_t ctx = plan.max_context();
  if (ctx < 1 || ctx > c.max_position_embeddings) return Bad("max_context out of range");
  const KvPerToken whole = KvBytesPerToken(c, 1, plan.kv_dtype_bytes());
  if (plan.kv_bytes_per_token_sliding() != whole.sliding ||
      plan.kv_bytes_per_token_global() != whole.global ||
      plan.kv_bytes_per_sequence_at_max_context() != KvBytesPerSequence(c, whole, ctx) ||
      plan.kv_bytes_per_sequence_sliding() + plan.kv_bytes_per_sequence_global() !=
          plan.kv_bytes_per_sequence_at_max_context()) {
    return Bad("model KV bytes per token / per sequence do not match the config");
  }
  const KvPerToken per_rank = KvBytesPerToken(c, tp, plan.kv_dtype_bytes());
  const int64_t n = plan.max_concurrent_sequences_at_max_context();
  if (n < 0) return Bad("max_concurrent_sequences_at_max_context is negative");
  int64_t replica_weights = 0;
  for (const pb::RankPlan& rp : plan.ranks()) {
    const pb::MemoryBreakdown& m = rp.memory();
    const std::string who = absl::StrCat("rank ", rp.rank(), ": ");
    replica_weights += m.weights_bytes();
    if (rp.kv_bytes_per_token_sliding() != per_rank.sliding ||
        rp.kv_bytes_per_token_global() != per_rank.global ||
        rp.kv_bytes_per_sequence_at_max_context() != KvBytesPerSequence(c, per_rank, ctx)) {
      return Bad(who + "KV bytes per token / per sequence do not match its KV heads");
    }
    const int64_t usable = static_cast<int64_t>(
        std::floor(static_cast<double>(m.device_bytes()) * plan.memory_utilization()));
    if (m.device_bytes() != plan.device().memory_bytes() || m.usable_bytes() != usable) {
      return Bad(who + "device / usable bytes do not match the device and utilization");
    }
    if (m.kv_budget_bytes() != m.usable_bytes() - m.weights_bytes() - m.activation_workspace_bytes() ||
        m.kv_budget_bytes() < 0) {
      return Bad(who + "kv_budget_bytes != usable − weights − workspace (or negative)");
    }
    if (m.kv_sliding_bytes() != n * per_rank.sliding * SlidingTokens(c, ctx) ||
        m.kv_global_bytes() != n * per_rank.global * ctx) {
      return Bad(who + "KV pools do not hold max_concurrent_sequences_at_max_context sequences");
    }
    if (m.free_bytes() < 0 ||
        m.kv_sliding_bytes() + m.kv_global_bytes() + m.free_bytes() != m.kv_budget_bytes()) {
      return Bad(who + "weights + workspace + KV pools + free != usable");
    }
    if (KvBytesPerSequence(c, per_rank, plan.max_single_sequence_context()) > m.kv_budget_bytes()) {
      return Bad(who + "max_single_sequence_context does not fit its KV budget");
    }
  }
  if (replica_weights != plan.weights_bytes_per_replica()) {
    return Bad("weights_bytes_per_replica != sum over ranks");
  }
  return absl::OkStatus();
}

}  // namespace g4
