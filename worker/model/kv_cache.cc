#include "worker/model/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "common/check.h"
#include "worker/kv_cache/kv_geometry.h"

namespace g4 {

namespace {

std::vector<int> AllKvHeads(const ModelConfig& config) {
  std::vector<int> heads(config.num_layers);
  for (int l = 0; l < config.num_layers; ++l) heads[l] = config.NumKvHeads(l);
  return heads;
}

}  // namespace

SequenceKvCache::SequenceKvCache(const ModelConfig& config)
    : SequenceKvCache(config, AllKvHeads(config)) {}

SequenceKvCache::SequenceKvCache(const ModelConfig& config, const std::vector<int>& kv_heads)
    : config_(config) {
  layers_.resize(config.num_layers);
  for (int l = 0; l < config.num_layers; ++l) {
    if (config.IsKvShared(l)) continue;
    layers_[l].sliding = !config.IsGlobal(l);
    layers_[l].v_only = KeysDerivedFromValues(config, l);
    layers_[l].row_width = static_cast<int64_t>(kv_heads[l]) * config.HeadDim(l);
  }
}

void SequenceKvCache::Reserve(int64_t n) {
  G4_CHECK(reserved_ == 0);
  reserved_ = n;
  const int64_t keep = config_.sliding_window - 1;  // old positions a future query can see
  for (LayerKv& L : layers_) {
    if (L.row_width == 0) continue;
    const int64_t capacity = static_cast<int64_t>(L.v.size()) / L.row_width;
    if (L.sliding && L.rows + n > capacity && L.rows > keep) {
      // Drop rows no query at position >= length_ can see; amortized by the 2× capacity below.
      const int64_t drop = L.rows - keep;
      if (!L.v_only) {
        std::memmove(L.k.data(), L.k.data() + drop * L.row_width,
                     keep * L.row_width * sizeof(float));
      }
      std::memmove(L.v.data(), L.v.data() + drop * L.row_width, keep * L.row_width * sizeof(float));
      L.rows = keep;
      L.pos0 += drop;
    }
    if (L.rows + n > capacity) {
      int64_t want = std::max<int64_t>(L.rows + n, 2 * capacity);
      if (L.sliding) want = std::max<int64_t>(L.rows + n, 2 * (keep + 1));
      if (!L.v_only) L.k.resize(want * L.row_width);
      L.v.resize(want * L.row_width);
    }
  }
}

SequenceKvCache::LayerRows SequenceKvCache::Rows(int layer) {
  LayerKv& L = layers_[config_.KvSourceLayer(layer)];
  G4_CHECK(L.row_width > 0);
  return LayerRows{L.v_only ? nullptr : L.k.data(), L.v.data(), L.pos0, L.rows + reserved_,
                   L.row_width};
}

void SequenceKvCache::Write(int layer, const float* k, const float* v) {
  LayerKv& L = layers_[layer];
  G4_CHECK(L.row_width > 0);
  G4_CHECK((k == nullptr) == L.v_only);
  const int64_t first_new = L.rows;
  if (!L.v_only) {
    std::memcpy(L.k.data() + first_new * L.row_width, k, reserved_ * L.row_width * sizeof(float));
  }
  std::memcpy(L.v.data() + first_new * L.row_width, v, reserved_ * L.row_width * sizeof(float));
}

KvCacheView::Keys SequenceKvCache::Read(int layer) {
  const LayerRows r = Rows(layer);
  return Keys{r.k, r.v, r.pos0, r.rows, r.row_width};
}

void SequenceKvCache::Commit(int64_t n) {
  G4_CHECK(n == reserved_);
  for (LayerKv& L : layers_) L.rows += (L.row_width > 0 ? n : 0);
  length_ += n;
  reserved_ = 0;
}

int64_t SequenceKvCache::AllocatedFloats() const {
  int64_t total = 0;
  for (const LayerKv& L : layers_) total += static_cast<int64_t>(L.k.size() + L.v.size());
  return total;
}

}  // namespace g4
