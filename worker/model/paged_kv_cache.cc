#include "worker/model/paged_kv_cache.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "kernels/cpu/attention_workspace.h"

namespace g4 {
namespace {

KvPool PoolOf(const ModelConfig& c, int layer) {
  return c.IsGlobal(layer) ? KvPool::kGlobal : KvPool::kSliding;
}

}  // namespace

PagedKvStorage::PagedKvStorage(const ModelConfig& config, const PagedKvOptions& options)
    : config_(config), options_(options) {}

absl::StatusOr<std::unique_ptr<PagedKvStorage>> PagedKvStorage::Create(
    const ModelConfig& config, const std::vector<int>& kv_heads, const PagedKvOptions& options) {
  if (options.block_size < 1) return absl::InvalidArgumentError("paged kv: block_size < 1");
  if (static_cast<int>(kv_heads.size()) != config.num_layers) {
    return absl::InvalidArgumentError("paged kv: kv_heads must list every layer");
  }
  std::unique_ptr<PagedKvStorage> s(new PagedKvStorage(config, options));
  s->layer_index_.assign(config.num_layers, -1);
  int64_t head_dim[kNumKvPools] = {0, 0};
  int heads[kNumKvPools] = {0, 0};
  for (int l = 0; l < config.num_layers; ++l) {
    if (config.IsKvShared(l)) continue;
    const int p = static_cast<int>(PoolOf(config, l));
    Pool& pool = s->pools_[p];
    const bool v_only = KeysDerivedFromValues(config, l);
    if (pool.num_layers == 0) {
      heads[p] = kv_heads[l];
      head_dim[p] = config.HeadDim(l);
      pool.v_only = v_only;
    } else if (heads[p] != kv_heads[l] || head_dim[p] != config.HeadDim(l) ||
               pool.v_only != v_only) {
      return absl::InvalidArgumentError(absl::StrCat(
          "paged kv: layer ", l, " differs in kv heads, head_dim or cached tensors from the other ",
          KvPoolName(static_cast<KvPool>(p)), " layers"));
    }
    s->layer_index_[l] = pool.num_layers++;
  }
  const int64_t pages[kNumKvPools] = {options.num_global_pages, options.num_sliding_pages};
  for (int p = 0; p < kNumKvPools; ++p) {
    Pool& pool = s->pools_[p];
    if (pool.num_layers == 0) continue;
    if (pages[p] < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "paged kv: the ", KvPoolName(static_cast<KvPool>(p)), " pool needs pages"));
    }
    pool.row_width = heads[p] * head_dim[p];
    pool.num_pages = pages[p];
    const int64_t floats = pages[p] * options.block_size * pool.num_layers * pool.row_width;
    if (!pool.v_only) pool.k.assign(floats, 0.0f);
    pool.v.assign(floats, 0.0f);
  }
  return s;
}

std::unique_ptr<PagedSequenceKv> PagedKvStorage::NewSequence(int64_t length) {
  return std::make_unique<PagedSequenceKv>(this, length);
}

int64_t PagedKvStorage::AllocatedFloats() const {
  int64_t total = 0;
  for (const Pool& p : pools_) total += static_cast<int64_t>(p.k.size() + p.v.size());
  return total;
}

int64_t PagedSequenceKv::WindowStart(int64_t pos) const {
  return std::max<int64_t>(0, pos - s_->config_.sliding_window + 1);
}

absl::Status PagedSequenceKv::CanReserve(int64_t n) const {
  const int64_t B = s_->block_size();
  const int64_t end = length_ + n;  // slots needed for [0, end) resp. [window start, end)
  if (s_->pools_[0].num_layers > 0 &&
      static_cast<int64_t>(table_.global.size()) * B < end) {
    return absl::FailedPreconditionError(absl::StrCat(
        "paged kv: global block table covers ", table_.global.size() * B, " tokens, need ", end));
  }
  if (s_->pools_[1].num_layers > 0) {
    const int64_t first = WindowStart(length_) / B;
    const int64_t table_end =
        (table_.sliding_first_block + static_cast<int64_t>(table_.sliding.size())) * B;
    if (table_.sliding_first_block > first || table_end < end) {
      return absl::FailedPreconditionError(absl::StrCat(
          "paged kv: sliding block table covers blocks [", table_.sliding_first_block, ", ",
          table_.sliding_first_block + table_.sliding.size(), "), need positions [",
          WindowStart(length_), ", ", end, ")"));
    }
  }
  for (const PageId page : table_.global) {
    if (page < 0 || page >= s_->pools_[0].num_pages) {
      return absl::FailedPreconditionError(absl::StrCat("paged kv: global page ", page));
    }
  }
  for (const PageId page : table_.sliding) {
    if (page < 0 || page >= s_->pools_[1].num_pages) {
      return absl::FailedPreconditionError(absl::StrCat("paged kv: sliding page ", page));
    }
  }
  return absl::OkStatus();
}

void PagedSequenceKv::Reserve(int64_t n) {
  G4_CHECK(reserved_ == 0);
  reserved_ = n;
}

void PagedSequenceKv::Write(int layer, const float* k, const float* v) {
  const KvPool pool = PoolOf(s_->config_, layer);
  PagedKvStorage::Pool& p = s_->pools_[static_cast<int>(pool)];
  const int li = s_->layer_index_[layer];
  G4_CHECK(li >= 0);
  G4_CHECK((k == nullptr) == p.v_only);
  const int64_t B = s_->block_size(), W = p.row_width;
  for (int64_t t = 0; t < reserved_; ++t) {
    const int64_t pos = length_ + t;
    const PageId page = PageOf(pool, pos / B);
    if (!p.v_only) {
      std::memcpy(s_->Row(p.k, p, page, pos % B, li), k + t * W, W * sizeof(float));
    }
    std::memcpy(s_->Row(p.v, p, page, pos % B, li), v + t * W, W * sizeof(float));
  }
}

namespace {

// Makes `buf` hold n floats. Its contents are rewritten on every read, so when it must grow it is
// freed first and reallocated in kGatherGranuleFloats steps: never the old and the new buffer at
// once, and exactly the size the plan counts (cpu::GatherScratchFloats).
void GrowGather(std::vector<float>& buf, int64_t n) {
  if (static_cast<int64_t>(buf.size()) >= n) return;
  if (static_cast<int64_t>(buf.capacity()) < n) {
    std::vector<float>().swap(buf);
    buf.reserve(cpu::GatherScratchFloats(n, 1));
  }
  buf.resize(n);
}

}  // namespace

KvCacheView::Keys PagedSequenceKv::Read(int layer) {
  const ModelConfig& c = s_->config_;
  const int src = c.KvSourceLayer(layer);
  const KvPool pool = PoolOf(c, src);
  PagedKvStorage::Pool& p = s_->pools_[static_cast<int>(pool)];
  const int li = s_->layer_index_[src];
  G4_CHECK(li >= 0);
  const int64_t B = s_->block_size(), W = p.row_width;
  const int64_t begin = pool == KvPool::kGlobal ? 0 : WindowStart(length_);
  const int64_t end = length_ + reserved_;
  const int64_t rows = end - begin;
  GrowGather(s_->v_scratch_, rows * W);
  if (!p.v_only) GrowGather(s_->k_scratch_, rows * W);
  float* kd = p.v_only ? nullptr : s_->k_scratch_.data();
  float* vd = s_->v_scratch_.data();
  // Gather block by block: within a page the rows of one layer are strided by num_layers rows.
  for (int64_t pos = begin; pos < end;) {
    const int64_t block = pos / B;
    const PageId page = PageOf(pool, block);
    const int64_t stop = std::min(end, (block + 1) * B);
    for (; pos < stop; ++pos) {
      const int64_t r = pos - begin;
      if (kd != nullptr) {
        std::memcpy(kd + r * W, s_->Row(p.k, p, page, pos % B, li), W * sizeof(float));
      }
      std::memcpy(vd + r * W, s_->Row(p.v, p, page, pos % B, li), W * sizeof(float));
    }
  }
  return Keys{kd, vd, begin, rows, W};
}

void PagedSequenceKv::Commit(int64_t n) {
  G4_CHECK(n == reserved_);
  length_ += n;
  reserved_ = 0;
}

}  // namespace g4
