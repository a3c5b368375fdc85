#include "worker/kv_cache/kv_geometry.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace g4 {

const char* KvPoolName(KvPool pool) { return pool == KvPool::kGlobal ? "global" : "sliding"; }

namespace {
int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

int64_t KvGeometry::GlobalPagesFor(int64_t num_tokens) const {
  if (global.num_layers == 0) return 0;
  return CeilDiv(num_tokens, global.block_size);
}

int64_t KvGeometry::SlidingPagesFor(int64_t num_tokens) const {
  if (sliding.num_layers == 0) return 0;
  const int64_t all = CeilDiv(num_tokens, sliding.block_size);
  if (sliding_window <= 0) return all;
  return std::min(all, CeilDiv(sliding_window - 1, sliding.block_size) + 1);
}

int64_t KvGeometry::BytesFor(int64_t num_tokens) const {
  return GlobalPagesFor(num_tokens) * global.BytesPerPage() +
         SlidingPagesFor(num_tokens) * sliding.BytesPerPage();
}

std::string KvGeometry::DebugString() const {
  return absl::StrCat("global{layers=", global.num_layers, " kv_heads=", global.num_kv_heads,
                      " head_dim=", global.head_dim, global.tensors == 1 ? " V only" : "",
                      " page=", global.BytesPerPage(),
                      "B} sliding{layers=", sliding.num_layers, " kv_heads=", sliding.num_kv_heads,
                      " head_dim=", sliding.head_dim, " page=", sliding.BytesPerPage(),
                      "B window=", sliding_window, "} block_size=", global.block_size);
}

absl::StatusOr<KvGeometry> KvGeometryFromConfig(const ModelConfig& config, int block_size,
                                                int dtype_bytes) {
  if (block_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("block_size must be >= 1, got ", block_size));
  }
  if (dtype_bytes < 1) {
    return absl::InvalidArgumentError(absl::StrCat("dtype_bytes must be >= 1, got ", dtype_bytes));
  }
  if (static_cast<int>(config.layer_types.size()) != config.num_layers) {
    return absl::InvalidArgumentError("layer_types does not have num_layers entries");
  }
  KvGeometry g;
  g.global.block_size = g.sliding.block_size = block_size;
  g.global.dtype_bytes = g.sliding.dtype_bytes = dtype_bytes;
  for (int l = 0; l < config.num_layers; ++l) {
    if (config.IsKvShared(l)) continue;
    KvPageShape& s = config.IsGlobal(l) ? g.global : g.sliding;
    const int heads = config.NumKvHeads(l);
    const int dim = config.HeadDim(l);
    const int tensors = KeysDerivedFromValues(config, l) ? 1 : 2;
    if (s.num_layers == 0) {
      s.num_kv_heads = heads;
      s.head_dim = dim;
      s.tensors = tensors;
    } else if (s.num_kv_heads != heads || s.head_dim != dim || s.tensors != tensors) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer ", l, ": KV shape ", tensors, "x", heads, "x", dim, " differs from the other ",
          config.IsGlobal(l) ? "global" : "sliding", " layers (", s.tensors, "x", s.num_kv_heads,
          "x", s.head_dim, ")"));
    }
    ++s.num_layers;
  }
  g.sliding_window = g.sliding.num_layers > 0 ? config.sliding_window : 0;
  if (g.sliding.num_layers > 0 && g.sliding_window < 1) {
    return absl::InvalidArgumentError("sliding layers need sliding_window >= 1");
  }
  return g;
}

}  // namespace g4
