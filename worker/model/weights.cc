#include "worker/model/weights.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace g4 {
namespace {

class Loader {
 public:
  Loader(const Checkpoint& ckpt, const ShardLayout& layout) : ckpt_(ckpt), layout_(layout) {}

  // The whole tensor (replicated weights).
  absl::Status Load(const std::string& name, std::vector<int64_t> shape, HostTensor* out) {
    G4_ASSIGN_OR_RETURN(*out, ckpt_.ReadAll(name, shape));
    return absl::OkStatus();
  }

  // A block of a 2-D (or one expert of a 3-D) tensor, appended to `out`.
  absl::Status Append(const std::string& name, std::vector<int64_t> shape, TensorSlice slice,
                      HostTensor* out) {
    const int64_t rows = shape[shape.size() - 2], cols = shape.back();
    const int64_t r = (slice.row_end < 0 ? rows : slice.row_end) - slice.row_begin;
    const int64_t c = (slice.col_end < 0 ? cols : slice.col_end) - slice.col_begin;
    const size_t at = out->size();
    out->resize(at + r * c);
    return ckpt_.Read(name, shape, slice, absl::MakeSpan(out->data() + at, r * c));
  }
  absl::Status Rows(const std::string& name, std::vector<int64_t> shape, Range rows, HostTensor* out) {
    out->clear();
    return Append(name, shape, TensorSlice::Rows(rows.begin, rows.end), out);
  }
  absl::Status Cols(const std::string& name, std::vector<int64_t> shape, Range cols, HostTensor* out) {
    out->clear();
    return Append(name, shape, TensorSlice::Cols(cols.begin, cols.end), out);
  }

  absl::StatusOr<DType> StoredDType(const std::string& name) {
    G4_ASSIGN_OR_RETURN(TensorRef ref, ckpt_.Find(name));
    return ref.info->dtype;
  }

  // This rank's experts (and its part of each one's intermediate dimension), under the current
  // name (experts.*), the older moe.* name, or as per-expert 2-D tensors
  // (experts.{e}.{gate,up,down}_proj.weight) as quantized re-exports store them.
  absl::Status LoadExperts(const std::string& p, const ModelConfig& c, MoeWeights* moe) {
    const int64_t e = c.num_experts, h = c.hidden_size, i = c.moe_intermediate_size;
    const Range ex = layout_.experts(), mi = layout_.moe_intermediate();
    moe->gate_up_proj.clear();
    moe->down_proj.clear();
    for (const char* group : {"experts", "moe"}) {
      const std::string gu = absl::StrCat(p, group, ".gate_up_proj");
      if (!ckpt_.Has(gu)) continue;
      const std::string down = absl::StrCat(p, group, ".down_proj");
      for (int64_t x = ex.begin; x < ex.end; ++x) {
        // Rows [0, I) of gate_up are the gate, [I, 2I) the up projection (not interleaved).
        G4_RETURN_IF_ERROR(Append(gu, {e, 2 * i, h}, {x, mi.begin, mi.end, 0, -1}, &moe->gate_up_proj));
        G4_RETURN_IF_ERROR(
            Append(gu, {e, 2 * i, h}, {x, i + mi.begin, i + mi.end, 0, -1}, &moe->gate_up_proj));
        G4_RETURN_IF_ERROR(Append(down, {e, h, i}, {x, 0, -1, mi.begin, mi.end}, &moe->down_proj));
      }
      return absl::OkStatus();
    }
    if (!ckpt_.Has(absl::StrCat(p, "experts.0.gate_proj.weight"))) {
      return ckpt_.Find(absl::StrCat(p, "experts.gate_up_proj")).status();  // the NotFound
    }
    for (int64_t x = ex.begin; x < ex.end; ++x) {
      const std::string q = absl::StrCat(p, "experts.", x, ".");
      G4_RETURN_IF_ERROR(Append(q + "gate_proj.weight", {i, h}, TensorSlice::Rows(mi.begin, mi.end),
                                &moe->gate_up_proj));
      G4_RETURN_IF_ERROR(Append(q + "up_proj.weight", {i, h}, TensorSlice::Rows(mi.begin, mi.end),
                                &moe->gate_up_proj));
      G4_RETURN_IF_ERROR(Append(q + "down_proj.weight", {h, i}, TensorSlice::Cols(mi.begin, mi.end),
                                &moe->down_proj));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<HostTensor> LoadPerExpertScale(const std::string& p, int64_t e) {
    HostTensor out;
    const std::string name = absl::StrCat(p, "router.per_expert_scale");
    const std::string old_name = absl::StrCat(p, "moe.per_expert_scale");
    G4_RETURN_IF_ERROR(Load(ckpt_.Has(name) || !ckpt_.Has(old_name) ? name : old_name, {e}, &out));
    return out;
  }

 private:
  const Checkpoint& ckpt_;
  const ShardLayout& layout_;
};

absl::Status LoadLayer(Loader& ld, const ModelConfig& c, const ShardLayout& layout, int l,
                       LayerWeights* w) {
  const std::string p = absl::StrCat("layers.", l, ".");
  const int64_t h = c.hidden_size;
  const int64_t d = c.HeadDim(l);
  const int64_t q_out = static_cast<int64_t>(c.num_heads) * d;
  const int64_t kv_out = static_cast<int64_t>(c.NumKvHeads(l)) * d;
  const AttentionShard& as = layout.attention(l);
  const Range q_rows{as.q_heads.begin * d, as.q_heads.end * d};
  const Range kv_rows{as.kv_heads.begin * d, as.kv_heads.end * d};

  G4_RETURN_IF_ERROR(ld.Load(p + "input_layernorm.weight", {h}, &w->input_layernorm));
  G4_RETURN_IF_ERROR(ld.Load(p + "post_attention_layernorm.weight", {h}, &w->post_attention_layernorm));
  G4_RETURN_IF_ERROR(ld.Load(p + "pre_feedforward_layernorm.weight", {h}, &w->pre_feedforward_layernorm));
  G4_RETURN_IF_ERROR(ld.Load(p + "post_feedforward_layernorm.weight", {h}, &w->post_feedforward_layernorm));
  HostTensor scalar;
  G4_RETURN_IF_ERROR(ld.Load(p + "layer_scalar", {1}, &scalar));
  w->layer_scalar = scalar[0];

  const std::string a = p + "self_attn.";
  G4_RETURN_IF_ERROR(ld.Rows(a + "q_proj.weight", {q_out, h}, q_rows, &w->attn.q_proj));
  G4_RETURN_IF_ERROR(ld.Cols(a + "o_proj.weight", {h, q_out}, q_rows, &w->attn.o_proj));
  G4_RETURN_IF_ERROR(ld.Load(a + "q_norm.weight", {d}, &w->attn.q_norm));
  // KV-shared layers compute no K/V; checkpoints may still carry k_proj etc. for them: ignored.
  if (!c.IsKvShared(l)) {
    G4_RETURN_IF_ERROR(ld.Rows(a + "k_proj.weight", {kv_out, h}, kv_rows, &w->attn.k_proj));
    G4_RETURN_IF_ERROR(ld.Load(a + "k_norm.weight", {d}, &w->attn.k_norm));
    if (c.HasVProj(l)) {
      G4_RETURN_IF_ERROR(ld.Rows(a + "v_proj.weight", {kv_out, h}, kv_rows, &w->attn.v_proj));
    }
  }

  const int64_t width = c.MlpWidth(l);
  const Range mlp = layout.mlp(l);
  w->mlp.width = mlp.size();
  G4_RETURN_IF_ERROR(ld.Rows(p + "mlp.gate_proj.weight", {width, h}, mlp, &w->mlp.gate_proj));
  G4_RETURN_IF_ERROR(ld.Rows(p + "mlp.up_proj.weight", {width, h}, mlp, &w->mlp.up_proj));
  G4_RETURN_IF_ERROR(ld.Cols(p + "mlp.down_proj.weight", {h, width}, mlp, &w->mlp.down_proj));

  if (c.enable_moe_block) {
    const int64_t e = c.num_experts;
    G4_RETURN_IF_ERROR(ld.Load(p + "pre_feedforward_layernorm_2.weight", {h}, &w->pre_feedforward_layernorm_2));
    G4_RETURN_IF_ERROR(ld.Load(p + "post_feedforward_layernorm_1.weight", {h}, &w->post_feedforward_layernorm_1));
    G4_RETURN_IF_ERROR(ld.Load(p + "post_feedforward_layernorm_2.weight", {h}, &w->post_feedforward_layernorm_2));
    G4_RETURN_IF_ERROR(ld.Load(p + "router.proj.weight", {e, h}, &w->moe.router_proj));
    G4_RETURN_IF_ERROR(ld.Load(p + "router.scale", {h}, &w->moe.router_scale));
    G4_ASSIGN_OR_RETURN(w->moe.per_expert_scale, ld.LoadPerExpertScale(p, e));
    G4_RETURN_IF_ERROR(ld.LoadExperts(p, c, &w->moe));
  }

  if (c.hidden_size_per_layer_input > 0) {
    const int64_t pl = c.hidden_size_per_layer_input;
    G4_RETURN_IF_ERROR(ld.Load(p + "per_layer_input_gate.weight", {pl, h}, &w->ple.input_gate));
    G4_RETURN_IF_ERROR(ld.Load(p + "per_layer_projection.weight", {h, pl}, &w->ple.projection));
    G4_RETURN_IF_ERROR(ld.Load(p + "post_per_layer_input_norm.weight", {h}, &w->ple.post_norm));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ModelWeights>> LoadModelWeights(const Checkpoint& ckpt,
                                                               const ShardLayout& layout) {
  const ModelConfig& c = ckpt.config();
  auto w = std::make_unique<ModelWeights>();
  Loader ld(ckpt, layout);
  const int64_t v = c.vocab_size, h = c.hidden_size;
  G4_RETURN_IF_ERROR(ld.Rows("embed_tokens.weight", {v, h}, layout.vocab(), &w->embed_tokens));
  G4_ASSIGN_OR_RETURN(w->embed_dtype, ld.StoredDType("embed_tokens.weight"));
  G4_RETURN_IF_ERROR(ld.Load("norm.weight", {h}, &w->final_norm));
  if (!c.tie_word_embeddings) {
    G4_RETURN_IF_ERROR(ld.Rows("lm_head.weight", {v, h}, layout.vocab(), &w->lm_head));
  }
  if (c.hidden_size_per_layer_input > 0) {
    const int64_t lp = static_cast<int64_t>(c.num_layers) * c.hidden_size_per_layer_input;
    G4_RETURN_IF_ERROR(ld.Load("embed_tokens_per_layer.weight", {c.vocab_size_per_layer_input, lp},
                               &w->embed_tokens_per_layer));
    G4_ASSIGN_OR_RETURN(w->embed_per_layer_dtype, ld.StoredDType("embed_tokens_per_layer.weight"));
    G4_RETURN_IF_ERROR(ld.Load("per_layer_model_projection.weight", {lp, h},
                               &w->per_layer_model_projection));
    G4_RETURN_IF_ERROR(ld.Load("per_layer_projection_norm.weight", {c.hidden_size_per_layer_input},
                               &w->per_layer_projection_norm));
  }
  w->layers.resize(c.num_layers);
  for (int l = 0; l < c.num_layers; ++l) {
    G4_RETURN_IF_ERROR(Annotate(LoadLayer(ld, c, layout, l, &w->layers[l]), absl::StrCat("layer ", l)));
  }
  return w;
}

}  // namespace g4
