#include "worker/model/weights.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace g4 {
namespace {

class Loader {
 public:
  explicit Loader(const Checkpoint& ckpt) : ckpt_(ckpt) {}

  absl::Status Load(const std::string& name, std::vector<int64_t> shape, HostTensor* out) {
    G4_ASSIGN_OR_RETURN(*out, ckpt_.ReadAll(name, shape));
    return absl::OkStatus();
  }

  absl::StatusOr<DType> StoredDType(const std::string& name) {
    G4_ASSIGN_OR_RETURN(TensorRef ref, ckpt_.Find(name));
    return ref.info->dtype;
  }

  // Experts under the current name (experts.*), the older moe.* name, or as per-expert 2-D
  // tensors (experts.{e}.{gate,up,down}_proj.weight) as quantized re-exports store them.
  absl::Status LoadExperts(const std::string& p, const ModelConfig& c, MoeWeights* moe) {
    const int64_t e = c.num_experts, h = c.hidden_size, i = c.moe_intermediate_size;
    for (const char* group : {"experts", "moe"}) {
      const std::string gu = absl::StrCat(p, group, ".gate_up_proj");
      if (!ckpt_.Has(gu)) continue;
      G4_RETURN_IF_ERROR(Load(gu, {e, 2 * i, h}, &moe->gate_up_proj));
      return Load(absl::StrCat(p, group, ".down_proj"), {e, h, i}, &moe->down_proj);
    }
    if (!ckpt_.Has(absl::StrCat(p, "experts.0.gate_proj.weight"))) {
      return ckpt_.Find(absl::StrCat(p, "experts.gate_up_proj")).status();  // the NotFound
    }
    moe->gate_up_proj.resize(e * 2 * i * h);
    moe->down_proj.resize(e * h * i);
    for (int64_t x = 0; x < e; ++x) {
      const std::string q = absl::StrCat(p, "experts.", x, ".");
      const int64_t shape_gu[] = {i, h};
      const int64_t shape_d[] = {h, i};
      float* gu = moe->gate_up_proj.data() + x * 2 * i * h;
      G4_RETURN_IF_ERROR(ckpt_.Read(q + "gate_proj.weight", shape_gu, TensorSlice::All(),
                                    absl::MakeSpan(gu, i * h)));
      G4_RETURN_IF_ERROR(ckpt_.Read(q + "up_proj.weight", shape_gu, TensorSlice::All(),
                                    absl::MakeSpan(gu + i * h, i * h)));
      G4_RETURN_IF_ERROR(ckpt_.Read(q + "down_proj.weight", shape_d, TensorSlice::All(),
                                    absl::MakeSpan(moe->down_proj.data() + x * h * i, h * i)));
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
};

absl::Status LoadLayer(Loader& ld, const ModelConfig& c, int l, LayerWeights* w) {
  const std::string p = absl::StrCat("layers.", l, ".");
  const int64_t h = c.hidden_size;
  const int64_t d = c.HeadDim(l);
  const int64_t q_out = static_cast<int64_t>(c.num_heads) * d;
  const int64_t kv_out = static_cast<int64_t>(c.NumKvHeads(l)) * d;

  G4_RETURN_IF_ERROR(ld.Load(p + "input_layernorm.weight", {h}, &w->input_layernorm));
  G4_RETURN_IF_ERROR(ld.Load(p + "post_attention_layernorm.weight", {h}, &w->post_attention_layernorm));
  G4_RETURN_IF_ERROR(ld.Load(p + "pre_feedforward_layernorm.weight", {h}, &w->pre_feedforward_layernorm));
  G4_RETURN_IF_ERROR(ld.Load(p + "post_feedforward_layernorm.weight", {h}, &w->post_feedforward_layernorm));
  HostTensor scalar;
  G4_RETURN_IF_ERROR(ld.Load(p + "layer_scalar", {1}, &scalar));
  w->layer_scalar = scalar[0];

  const std::string a = p + "self_attn.";
  G4_RETURN_IF_ERROR(ld.Load(a + "q_proj.weight", {q_out, h}, &w->attn.q_proj));
  G4_RETURN_IF_ERROR(ld.Load(a + "o_proj.weight", {h, q_out}, &w->attn.o_proj));
  G4_RETURN_IF_ERROR(ld.Load(a + "q_norm.weight", {d}, &w->attn.q_norm));
  // KV-shared layers compute no K/V; checkpoints may still carry k_proj etc. for them: ignored.
  if (!c.IsKvShared(l)) {
    G4_RETURN_IF_ERROR(ld.Load(a + "k_proj.weight", {kv_out, h}, &w->attn.k_proj));
    G4_RETURN_IF_ERROR(ld.Load(a + "k_norm.weight", {d}, &w->attn.k_norm));
    if (c.HasVProj(l)) G4_RETURN_IF_ERROR(ld.Load(a + "v_proj.weight", {kv_out, h}, &w->attn.v_proj));
  }

  const int64_t width = c.MlpWidth(l);
  w->mlp.width = width;
  G4_RETURN_IF_ERROR(ld.Load(p + "mlp.gate_proj.weight", {width, h}, &w->mlp.gate_proj));
  G4_RETURN_IF_ERROR(ld.Load(p + "mlp.up_proj.weight", {width, h}, &w->mlp.up_proj));
  G4_RETURN_IF_ERROR(ld.Load(p + "mlp.down_proj.weight", {h, width}, &w->mlp.down_proj));

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

absl::StatusOr<std::unique_ptr<ModelWeights>> LoadModelWeights(const Checkpoint& ckpt) {
  const ModelConfig& c = ckpt.config();
  auto w = std::make_unique<ModelWeights>();
  Loader ld(ckpt);
  const int64_t v = c.vocab_size, h = c.hidden_size;
  G4_RETURN_IF_ERROR(ld.Load("embed_tokens.weight", {v, h}, &w->embed_tokens));
  G4_ASSIGN_OR_RETURN(w->embed_dtype, ld.StoredDType("embed_tokens.weight"));
  G4_RETURN_IF_ERROR(ld.Load("norm.weight", {h}, &w->final_norm));
  if (!c.tie_word_embeddings) {
    G4_RETURN_IF_ERROR(ld.Load("lm_head.weight", {v, h}, &w->lm_head));
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
    G4_RETURN_IF_ERROR(Annotate(LoadLayer(ld, c, l, &w->layers[l]), absl::StrCat("layer ", l)));
  }
  return w;
}

}  // namespace g4
