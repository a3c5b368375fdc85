// FormatPlanTable and FormatPlanJson.
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "coordinator/planner/planner.h"
#include "google/protobuf/util/json_util.h"

namespace g4 {
namespace {

namespace pb = ::g4serve::v1;

std::string Gib(int64_t bytes) {
  return absl::StrFormat("%.2f", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
}

// What the KV cache of a layer type holds: "K+V", or "V only" where attention derives K from V.
const char* CachedTensors(const pb::ParallelPlan& p, const std::string& layer_type) {
  for (const pb::KvHeadSharding& s : p.kv_heads()) {
    if (s.layer_type() == layer_type) return s.cached_tensors() == 1 ? "V only" : "K+V";
  }
  return "none";
}

std::string Ranges(const std::vector<int>& v) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    parts.push_back(i == j ? absl::StrCat(v[i]) : absl::StrCat(v[i], "-", v[j]));
    i = j + 1;
  }
  return absl::StrJoin(parts, ",");
}

// "all (60)", "sliding (50)", "global (10)", or index ranges; "-" for non-layer tensors.
std::string LayerSet(const pb::ModelSummary& m, const pb::TensorSlice& s) {
  if (s.layers_size() == 0) return "-";
  const std::vector<int> layers(s.layers().begin(), s.layers().end());
  const std::set<int> global(m.global_layers().begin(), m.global_layers().end());
  std::vector<int> sliding;
  for (int l = 0; l < m.num_layers(); ++l) {
    if (!global.count(l)) sliding.push_back(l);
  }
  const std::vector<int> global_v(global.begin(), global.end());
  if (static_cast<int>(layers.size()) == m.num_layers()) return absl::StrCat("all (", layers.size(), ")");
  if (layers == global_v) return absl::StrCat("global (", layers.size(), ")");
  if (layers == sliding) return absl::StrCat("sliding (", layers.size(), ")");
  return absl::StrCat(Ranges(layers), " (", layers.size(), ")");
}

std::string Shape(const pb::TensorSlice& s) {
  return absl::StrCat("[", absl::StrJoin(s.shape(), ","), "]");
}

std::string Part(const pb::TensorSlice& s) {
  const std::string rows = absl::StrCat(s.row_begin(), ":", s.row_end());
  const std::string cols = absl::StrCat(s.col_begin(), ":", s.col_end());
  switch (s.shape_size()) {
    case 1:
      return absl::StrCat("[", cols, "]");
    case 2:
      return absl::StrCat("[", rows, ", ", cols, "]");
    default:
      return absl::StrCat("[", s.expert_begin(), ":", s.expert_end(), ", ", rows, ", ", cols, "]");
  }
}

const char* PartitionName(pb::Partition p) {
  switch (p) {
    case pb::REPLICATED:
      return "replicated";
    case pb::VOCAB_ROWS:
      return "vocab rows";
    case pb::HEAD_ROWS:
      return "q heads (rows)";
    case pb::KV_HEAD_ROWS:
      return "kv heads (rows)";
    case pb::HEAD_COLS:
      return "q heads (cols)";
    case pb::MLP_ROWS:
      return "mlp rows";
    case pb::MLP_COLS:
      return "mlp cols";
    case pb::EXPERTS:
      return "experts";
    default:
      return "?";
  }
}

}  // namespace

std::string FormatPlanTable(const pb::ParallelPlan& p) {
  const pb::ModelSummary& m = p.model();
  std::string o;
  absl::StrAppend(&o, "Parallel plan for ", m.name().empty() ? "model" : m.name(), "\n");
  const std::string params = m.num_parameters() >= 1000000000
                                 ? absl::StrFormat("%.2f B", m.num_parameters() / 1e9)
                                 : absl::StrCat(m.num_parameters());
  absl::StrAppendFormat(&o, "  model        %d layers (%d sliding, %d global), hidden %d, vocab %d, %s parameters\n",
                        m.num_layers(), m.num_sliding_layers(), m.num_global_layers(),
                        m.hidden_size(), m.vocab_size(), params);
  absl::StrAppendFormat(&o, "  attention    %d query heads; KV heads: %d sliding (head dim %d, window %d), %d global (head dim %d)\n",
                        m.num_attention_heads(), m.num_kv_heads_sliding(), m.head_dim_sliding(),
                        m.sliding_window(), m.num_kv_heads_global(), m.head_dim_global());
  if (m.moe()) {
    absl::StrAppendFormat(&o, "  MLP          shared %d; %d experts (top-%d) of width %d\n",
                          m.intermediate_size(), m.num_experts(), m.top_k_experts(),
                          m.moe_intermediate_size());
  } else {
    absl::StrAppendFormat(&o, "  MLP          dense %d\n", m.intermediate_size());
  }
  const bool gpu = p.device().kind() == pb::DeviceSpec::GPU;
  absl::StrAppendFormat(&o, "  devices      %d × %s %s; memory utilization %.2f → %s GiB usable per rank\n",
                        p.num_devices(), gpu ? "GPU" : "CPU rank", FormatGiB(p.device().memory_bytes()),
                        p.memory_utilization(),
                        p.ranks_size() > 0 ? Gib(p.ranks(0).memory().usable_bytes()) : "?");
  absl::StrAppendFormat(&o, "  parallelism  tensor-parallel-size %d, expert-parallel-size %d%s; %d rank%s per replica, %d replica%s\n",
                        p.tensor_parallel_size(), p.expert_parallel_size(),
                        m.moe() ? absl::StrCat(" (experts TP-split ", p.expert_tensor_parallel_size(), "-way)") : "",
                        p.world_size(),
                        p.world_size() == 1 ? "" : "s", p.num_replicas(),
                        p.num_replicas() == 1 ? "" : "s");
  std::vector<std::string> kv;
  for (const pb::KvHeadSharding& s : p.kv_heads()) {
    kv.push_back(absl::StrCat(s.layer_type(), " ", s.num_kv_heads(), " → ", s.kv_heads_per_rank(),
                              " per rank",
                              s.replicated() ? absl::StrCat(" (REPLICATED ×", s.replication_factor(), ")")
                                             : ""));
  }
  absl::StrAppend(&o, "  KV heads     ", absl::StrJoin(kv, "; "), "\n");
  absl::StrAppend(&o, "  vocab        ",
                  p.vocab_parallel()
                      ? absl::StrCat("vocab-parallel embedding / LM head: ",
                                     m.vocab_size() / p.tensor_parallel_size(),
                                     " rows per rank, logits gathered on rank 0")
                      : "embedding / LM head whole on the rank",
                  "\n\n");

  absl::StrAppendFormat(&o, "KV cache (%d-byte elements; whole model, each KV head once)\n", p.kv_dtype_bytes());
  absl::StrAppendFormat(&o, "  per token                  sliding %d B (%d layers, %s), global %d B (%d layers, %s)\n",
                        p.kv_bytes_per_token_sliding(), m.num_kv_layers_sliding(),
                        CachedTensors(p, "sliding"), p.kv_bytes_per_token_global(),
                        m.num_kv_layers_global(), CachedTensors(p, "global"));
  absl::StrAppendFormat(&o, "  per %d-token sequence  %d B (%s) = sliding %d B (last %d tokens) + global %d B\n",
                        p.max_context(), p.kv_bytes_per_sequence_at_max_context(),
                        FormatGiB(p.kv_bytes_per_sequence_at_max_context()),
                        p.kv_bytes_per_sequence_sliding(),
                        std::min<int64_t>(p.max_context(), m.sliding_window() > 0 ? m.sliding_window() : p.max_context()),
                        p.kv_bytes_per_sequence_global());
  absl::StrAppend(&o, "\nCapacity per replica\n");
  absl::StrAppendFormat(&o, "  max context %d tokens × %d concurrent sequences (× %d replica%s = %d)\n",
                        p.max_context(), p.max_concurrent_sequences_at_max_context(),
                        p.num_replicas(), p.num_replicas() == 1 ? "" : "s",
                        int64_t{p.max_concurrent_sequences_at_max_context()} * p.num_replicas());
  absl::StrAppendFormat(&o, "  longest single sequence %d tokens\n\n", p.max_single_sequence_context());

  absl::StrAppend(&o, "Memory per rank (GiB)\n");
  absl::StrAppendFormat(&o, "  %-5s %-3s %-3s %-9s %9s %10s %11s %10s %8s %8s %8s\n", "rank", "tp",
                        "ep", "experts", "weights", "workspace", "KV sliding", "KV global",
                        "free", "usable", "KV/seq");
  for (const pb::RankPlan& r : p.ranks()) {
    const pb::MemoryBreakdown& mm = r.memory();
    const std::string experts =
        m.moe() ? absl::StrCat(r.expert_begin(), ":", r.expert_end()) : std::string("-");
    absl::StrAppendFormat(&o, "  %-5d %-3d %-3d %-9s %9s %10s %11s %10s %8s %8s %8s\n", r.rank(),
                          r.tp_rank(), r.ep_rank(), experts, Gib(mm.weights_bytes()),
                          Gib(mm.activation_workspace_bytes()), Gib(mm.kv_sliding_bytes()),
                          Gib(mm.kv_global_bytes()), Gib(mm.free_bytes()), Gib(mm.usable_bytes()),
                          Gib(r.kv_bytes_per_sequence_at_max_context()));
  }
  for (const pb::RankPlan& r : p.ranks()) {
    absl::StrAppendFormat(&o, "\nTensor slices, rank %d (%d entries; [experts,] [rows,] cols ranges)\n",
                          r.rank(), r.slices_size());
    absl::StrAppendFormat(&o, "  %-47s %-14s %-16s %-16s %-30s %8s\n", "tensor", "layers",
                          "shape", "partition", "slice", "GiB");
    for (const pb::TensorSlice& s : r.slices()) {
      absl::StrAppendFormat(&o, "  %-47s %-14s %-16s %-16s %-30s %8s\n", s.tensor(), LayerSet(m, s),
                            Shape(s), PartitionName(s.partition()), Part(s), Gib(s.bytes()));
    }
  }
  if (p.warnings_size() > 0) {
    absl::StrAppend(&o, "\nWarnings\n");
    for (const std::string& w : p.warnings()) absl::StrAppend(&o, "  - ", w, "\n");
  }
  return o;
}

absl::StatusOr<std::string> FormatPlanJson(const pb::ParallelPlan& plan) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  const auto status = google::protobuf::util::MessageToJsonString(plan, &out, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("plan to JSON: ", status.ToString()));
  }
  return out;
}

}  // namespace g4
