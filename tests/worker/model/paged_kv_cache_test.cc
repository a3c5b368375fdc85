// The paged KV path (PagedKvStorage read and written through KvBlockManager block tables) against
// the contiguous SequenceKvCache path on the tiny golden models: identical logits for full and
// chunked prefill across the sliding window, long decodes across many windows and blocks, batches,
// and sequences that share cached prefix pages.
#include "worker/model/paged_kv_cache.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"
#include "kernels/ops.h"
#include "tests/worker/model/golden_reference.h"
#include "worker/kv_cache/kv_block_manager.h"
#include "worker/kv_cache/kv_geometry.h"
#include "worker/model/gemma4_model.h"

namespace g4 {
namespace {

// ≤ 1e-6 relative to the row's largest logit (the paths are bitwise equal in practice).
void ExpectSame(const std::vector<float>& got, const std::vector<float>& want,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_ref = std::max(max_ref, std::abs(static_cast<double>(want[i])));
    max_diff = std::max(max_diff, std::abs(static_cast<double>(got[i]) - want[i]));
  }
  EXPECT_LE(max_diff, 1e-6 * max_ref) << what;
}

// Drives paged sequences as the engine does: Allocate → TakeDelta → mirror → Forward → Commit.
class PagedDriver {
 public:
  PagedDriver(Gemma4Model* model, int block_size, int64_t pages, bool prefix_caching = true)
      : model_(model) {
    const ModelConfig& c = model->config();
    KvBlockManagerOptions o;
    o.block_size = block_size;
    o.num_global_pages = pages;
    o.num_sliding_pages = pages;
    o.sliding_window = c.sliding_window;
    o.enable_prefix_caching = prefix_caching;
    auto kv = KvBlockManager::Create(o);
    EXPECT_TRUE(kv.ok()) << kv.status();
    kv_ = std::move(*kv);
    auto storage = model->NewPagedStorage({block_size, pages, pages});
    EXPECT_TRUE(storage.ok()) << storage.status();
    storage_ = std::move(*storage);
  }

  // Registers a sequence whose prompt is `prompt`; returns the cached prefix length.
  int64_t Add(uint64_t id, const std::vector<int32_t>& prompt) {
    auto cached = kv_->AddSequence(id, prompt);
    EXPECT_TRUE(cached.ok()) << cached.status();
    seqs_[id] = storage_->NewSequence(*cached);
    history_[id].assign(prompt.begin(), prompt.begin() + *cached);
    return *cached;
  }

  std::vector<float> Forward(const std::vector<std::pair<uint64_t, std::vector<int32_t>>>& batch,
                             LogitsFor which) {
    std::vector<SequenceChunk> chunks;
    for (const auto& [id, tokens] : batch) {
      EXPECT_TRUE(kv_->Allocate(id, static_cast<int64_t>(tokens.size())).ok());
      seqs_[id]->table().Apply(kv_->TakeDelta(id));
      chunks.push_back({seqs_[id].get(), tokens});
    }
    auto logits = model_->Forward(chunks, which);
    EXPECT_TRUE(logits.ok()) << logits.status();
    for (const auto& [id, tokens] : batch) {
      history_[id].insert(history_[id].end(), tokens.begin(), tokens.end());
      EXPECT_TRUE(kv_->CommitFullBlocks(id, history_[id]).ok());
    }
    EXPECT_TRUE(kv_->Validate().ok());
    return logits.ok() ? *logits : std::vector<float>();
  }

  void Free(uint64_t id) {
    EXPECT_TRUE(kv_->Free(id).ok());
    seqs_.erase(id);
    history_.erase(id);
  }

  KvBlockManager& kv() { return *kv_; }

 private:
  Gemma4Model* model_;
  std::unique_ptr<KvBlockManager> kv_;
  std::unique_ptr<PagedKvStorage> storage_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<PagedSequenceKv>> seqs_;
  absl::flat_hash_map<uint64_t, std::vector<int32_t>> history_;
};

class PagedKvTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ref_ = testing::LoadGoldenReference(GetParam());
    auto model = Gemma4Model::Load(testing::GoldenDir(GetParam()), CreateCpuOps());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }

  std::vector<float> Contiguous(SequenceKvCache* seq, const std::vector<int32_t>& tokens,
                                LogitsFor which) {
    SequenceChunk chunk{seq, tokens};
    auto logits = model_->Forward({&chunk, 1}, which);
    EXPECT_TRUE(logits.ok()) << logits.status();
    return logits.ok() ? *logits : std::vector<float>();
  }

  // A long token stream: the golden prompt repeated (ids stay in the vocabulary).
  std::vector<int32_t> LongTokens(size_t n) const {
    std::vector<int32_t> out;
    while (out.size() < n) {
      for (int32_t t : ref_.prefill.tokens) {
        if (out.size() < n) out.push_back(t);
      }
    }
    return out;
  }

  testing::GoldenReference ref_;
  std::unique_ptr<Gemma4Model> model_;
};

// Same chunking on both paths (the projections' rounding depends on the chunk's row count).
TEST_P(PagedKvTest, ChunkedPrefillMatchesContiguous) {
  const std::vector<int32_t> tokens = LongTokens(40);
  for (size_t chunk : {1, 2, 5, 40}) {
    auto contiguous = model_->NewSequence();
    std::vector<float> want;
    for (size_t p = 0; p < tokens.size(); p += chunk) {
      const size_t end = std::min(tokens.size(), p + chunk);
      std::vector<float> part = Contiguous(contiguous.get(), {tokens.begin() + p, tokens.begin() + end},
                                           LogitsFor::kAllTokens);
      want.insert(want.end(), part.begin(), part.end());
    }
    for (int block_size : {1, 3, 16}) {
      PagedDriver d(model_.get(), block_size, 64);
      d.Add(1, tokens);
      std::vector<float> got;
      for (size_t p = 0; p < tokens.size(); p += chunk) {
        const size_t end = std::min(tokens.size(), p + chunk);
        std::vector<float> part =
            d.Forward({{1, {tokens.begin() + p, tokens.begin() + end}}}, LogitsFor::kAllTokens);
        got.insert(got.end(), part.begin(), part.end());
      }
      ExpectSame(got, want, "block " + std::to_string(block_size) + " chunk " +
                                std::to_string(chunk));
    }
  }
}

// Decoding far past the sliding window: sliding pages are recycled, global pages keep growing.
TEST_P(PagedKvTest, LongDecodeAcrossManyWindowsMatchesContiguous) {
  const std::vector<int32_t> tokens = LongTokens(70);
  const size_t prompt = 5;
  auto contiguous = model_->NewSequence();
  PagedDriver d(model_.get(), /*block_size=*/2, /*pages=*/40);
  d.Add(7, {tokens.begin(), tokens.begin() + prompt});
  ExpectSame(d.Forward({{7, {tokens.begin(), tokens.begin() + prompt}}}, LogitsFor::kLastToken),
             Contiguous(contiguous.get(), {tokens.begin(), tokens.begin() + prompt},
                        LogitsFor::kLastToken),
             "prefill");
  for (size_t p = prompt; p < tokens.size(); ++p) {
    ExpectSame(d.Forward({{7, {tokens[p]}}}, LogitsFor::kLastToken),
               Contiguous(contiguous.get(), {tokens[p]}, LogitsFor::kLastToken),
               "decode " + std::to_string(p));
  }
  // The window bound: only a handful of sliding pages stay in use.
  EXPECT_LE(d.kv().Usage(KvPool::kSliding).used, 4);
  EXPECT_EQ(d.kv().Usage(KvPool::kGlobal).used, 35);
}

// Different lengths and a prefill mixed with a decode in one forward.
TEST_P(PagedKvTest, MixedBatchMatchesContiguous) {
  PagedDriver d(model_.get(), 4, 64);
  std::vector<std::unique_ptr<SequenceKvCache>> contiguous;
  std::vector<std::pair<uint64_t, std::vector<int32_t>>> batch;
  std::vector<SequenceChunk> chunks;
  for (size_t i = 0; i < ref_.batch.size(); ++i) {
    d.Add(i, ref_.batch[i].tokens);
    batch.push_back({i, ref_.batch[i].tokens});
    contiguous.push_back(model_->NewSequence());
    chunks.push_back({contiguous.back().get(), ref_.batch[i].tokens});
  }
  auto want = model_->Forward(chunks, LogitsFor::kAllTokens);
  ASSERT_TRUE(want.ok());
  ExpectSame(d.Forward(batch, LogitsFor::kAllTokens), *want, "batch");
  // Next: a decode of sequence 0 next to a fresh 9-token prefill.
  const std::vector<int32_t> fresh = LongTokens(9);
  d.Add(100, fresh);
  auto fresh_seq = model_->NewSequence();
  std::vector<SequenceChunk> step{{contiguous[0].get(), {ref_.batch[0].tokens.data(), 1}},
                                  {fresh_seq.get(), fresh}};
  want = model_->Forward(step, LogitsFor::kAllTokens);
  ASSERT_TRUE(want.ok());
  ExpectSame(d.Forward({{0, {ref_.batch[0].tokens[0]}}, {100, fresh}}, LogitsFor::kAllTokens),
             *want, "mixed");
}

// A second sequence with the same 24-token prefix adopts the cached pages (both pools), computes
// only its tail, and gets the logits of a contiguous prefill chunked at the same boundaries;
// a third one, after the first two are freed (cached pages outlive their sequences), reuses the
// second one's 28 tokens.
TEST_P(PagedKvTest, SharedPrefixPagesMatchContiguous) {
  const std::vector<int32_t> a = LongTokens(30);
  std::vector<int32_t> b(a.begin(), a.begin() + 24);
  for (int32_t t : {3, 5, 7, 11, 13}) b.push_back(t);
  PagedDriver d(model_.get(), 4, 64);
  ASSERT_EQ(d.Add(1, a), 0);
  d.Forward({{1, {a.begin(), a.begin() + 24}}}, LogitsFor::kLastToken);
  d.Forward({{1, {a.begin() + 24, a.end()}}}, LogitsFor::kLastToken);

  const int64_t vocab = model_->config().vocab_size;
  for (auto [id, expected_cached] : {std::pair<uint64_t, int64_t>{2, 24}, {3, 28}}) {
    // Both paths cut the tail at 24 and 28 (the row count of a chunk changes its rounding).
    auto contiguous = model_->NewSequence();
    std::vector<float> want;
    for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 24}, {24, 28}, {28, 29}}) {
      std::vector<float> part = Contiguous(contiguous.get(), {b.begin() + begin, b.begin() + end},
                                           LogitsFor::kAllTokens);
      if (begin >= expected_cached) want.insert(want.end(), part.begin(), part.end());
    }
    const int64_t cached = d.Add(id, b);
    ASSERT_EQ(cached, expected_cached) << id;
    std::vector<float> got;
    if (cached < 28) got = d.Forward({{id, {b.begin() + cached, b.begin() + 28}}}, LogitsFor::kAllTokens);
    std::vector<float> last = d.Forward({{id, {b.begin() + 28, b.end()}}}, LogitsFor::kAllTokens);
    got.insert(got.end(), last.begin(), last.end());
    ExpectSame(got, want, "seq " + std::to_string(id));
    // Decodes on top of the shared prefix.
    for (int32_t t : {17, 19, 23}) {
      ExpectSame(d.Forward({{id, {t}}}, LogitsFor::kLastToken),
                 Contiguous(contiguous.get(), {t}, LogitsFor::kLastToken), "decode");
    }
    if (id == 2) d.Free(1);
    d.Free(id);
  }
  EXPECT_EQ(d.kv().prefix_stats().hit_tokens, 24 + 28);
  EXPECT_EQ(d.kv().Usage(KvPool::kGlobal).used, 0);
}

TEST_P(PagedKvTest, RejectsChunkWithoutSlots) {
  PagedDriver d(model_.get(), 4, 64);
  auto storage = model_->NewPagedStorage({4, 8, 8});
  ASSERT_TRUE(storage.ok());
  auto seq = (*storage)->NewSequence(0);  // empty table
  const std::vector<int32_t> tokens = {2, 3};
  SequenceChunk chunk{seq.get(), tokens};
  auto logits = model_->Forward({&chunk, 1}, LogitsFor::kLastToken);
  EXPECT_EQ(logits.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(seq->length(), 0);
}

// The pools hold what KvGeometry counts: on k_eq_v models (dense, moe) the global pool has V
// only and attention derives K from it; the E-model features variant (global layers with v_proj)
// keeps K and V.
TEST_P(PagedKvTest, PoolsHoldWhatTheGeometryCounts) {
  const ModelConfig& c = model_->config();
  auto storage = model_->NewPagedStorage({4, 8, 8});
  ASSERT_TRUE(storage.ok()) << storage.status();
  auto geo = KvGeometryFromConfig(c, 4, /*dtype_bytes=*/4);
  ASSERT_TRUE(geo.ok()) << geo.status();
  EXPECT_EQ((*storage)->AllocatedFloats() * 4,
            8 * geo->global.BytesPerPage() + 8 * geo->sliding.BytesPerPage());
  const int global_layer = 2;  // [S, S, F, ...] in every tiny variant
  ASSERT_TRUE(c.IsGlobal(global_layer));
  EXPECT_EQ(geo->global.tensors, c.attention_k_eq_v ? 1 : 2);
  EXPECT_EQ(KeysDerivedFromValues(c, global_layer), c.attention_k_eq_v);

  auto seq = (*storage)->NewSequence(0);
  BlockTableMirror& t = seq->table();
  t.global = {3};
  t.sliding = {5};
  seq->Reserve(2);
  const int64_t width = c.NumKvHeads(global_layer) * c.HeadDim(global_layer);
  std::vector<float> k(2 * width, 1.5f), v(2 * width, -2.5f);
  seq->Write(global_layer, c.attention_k_eq_v ? nullptr : k.data(), v.data());
  const KvCacheView::Keys keys = seq->Read(global_layer);
  EXPECT_EQ(keys.rows, 2);
  EXPECT_EQ(keys.v[2 * width - 1], -2.5f);
  if (c.attention_k_eq_v) {
    EXPECT_EQ(keys.k, nullptr);
  } else {
    ASSERT_NE(keys.k, nullptr);
    EXPECT_EQ(keys.k[2 * width - 1], 1.5f);
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, PagedKvTest,
                         ::testing::Values("dense", "moe", "efeat", "dense-bf16"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace g4
