#include "common/tokenizer/bpe_model.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "common/tokenizer/json_util.h"
#include "common/tokenizer/utf8.h"

namespace g4::tokenizer_internal {
namespace {

constexpr uint32_t kHole = UINT32_MAX;

absl::StatusOr<std::string> OptionalString(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("model: field \"", key, "\" must be a string"));
  }
  return it->get<std::string>();
}

}  // namespace

absl::StatusOr<BpeModel> BpeModel::Build(
    const nlohmann::json& model, std::vector<std::pair<std::string, int64_t>> vocab,
    std::vector<std::pair<std::string, std::string>> merges) {
  G4_ASSIGN_OR_RETURN(std::string type, ComponentType(model, "model"));
  if (type != "BPE") {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported model type \"", type, "\" (supported: BPE)"));
  }
  if (auto it = model.find("dropout"); it != model.end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() != 0.0) {
      return absl::UnimplementedError("model: BPE dropout is not supported");
    }
  }
  BpeModel m;
  G4_ASSIGN_OR_RETURN(m.byte_fallback_, GetBool(model, "byte_fallback", false, "model"));
  G4_ASSIGN_OR_RETURN(m.fuse_unk_, GetBool(model, "fuse_unk", false, "model"));
  G4_ASSIGN_OR_RETURN(m.ignore_merges_, GetBool(model, "ignore_merges", false, "model"));
  G4_ASSIGN_OR_RETURN(m.continuing_subword_prefix_,
                      OptionalString(model, "continuing_subword_prefix"));
  G4_ASSIGN_OR_RETURN(m.end_of_word_suffix_, OptionalString(model, "end_of_word_suffix"));
  G4_ASSIGN_OR_RETURN(std::string unk, OptionalString(model, "unk_token"));
  m.simple_chars_ = m.continuing_subword_prefix_.empty() && m.end_of_word_suffix_.empty();

  // Vocabulary: one arena, views in the map.
  int64_t max_id = -1;
  size_t total = 0;
  for (const auto& [tok, id] : vocab) {
    if (id < 0 || id >= (int64_t{1} << 30)) {
      return absl::InvalidArgumentError(absl::StrCat("model.vocab: id ", id, " of \"", tok,
                                                     "\" is out of range"));
    }
    max_id = std::max(max_id, id);
    total += tok.size();
  }
  m.arena_.reserve(total);
  m.id_to_token_.assign(static_cast<size_t>(max_id + 1), {0, kHole});
  for (const auto& [tok, id] : vocab) {
    if (m.id_to_token_[id].second != kHole) {
      return absl::InvalidArgumentError(absl::StrCat("model.vocab: id ", id, " used twice"));
    }
    m.id_to_token_[id] = {static_cast<uint32_t>(m.arena_.size()),
                          static_cast<uint32_t>(tok.size())};
    m.arena_.append(tok);
  }
  vocab.clear();
  vocab.shrink_to_fit();
  m.vocab_.reserve(m.id_to_token_.size());
  m.bmp_ids_.assign(0x10000, -1);
  std::fill(std::begin(m.byte_ids_), std::end(m.byte_ids_), -1);
  for (int32_t id = 0; id < static_cast<int32_t>(m.id_to_token_.size()); ++id) {
    if (m.id_to_token_[id].second == kHole) continue;
    absl::string_view tok = m.IdToToken(id);
    if (!m.vocab_.emplace(tok, id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.vocab: token \"", tok, "\" appears twice"));
    }
    if (!tok.empty()) {
      const size_t len = ValidSequenceLength(tok, 0);
      if (len == tok.size()) {
        const uint32_t cp = DecodeCodePoint(tok.data(), len);
        if (cp < 0x10000) {
          m.bmp_ids_[cp] = id;
        } else {
          m.astral_ids_[cp] = id;
        }
      }
    }
  }
  for (int b = 0; b < 256; ++b) {
    auto id = m.TokenToId(absl::StrFormat("<0x%02X>", b));
    m.byte_ids_[b] = id ? *id : -1;
  }
  if (!unk.empty()) {
    auto id = m.TokenToId(unk);
    if (!id) {
      return absl::InvalidArgumentError(
          absl::StrCat("model: unk_token \"", unk, "\" is not in the vocabulary"));
    }
    m.unk_id_ = *id;
  }

  // Merges: (left id, right id) -> (rank, id of left+right). Later duplicates win, as in HF.
  // Resolving ~1.5M strings to ids is the slow part of loading; it is read-only, so two threads
  // share it. Errors are reported for the first bad merge.
  struct Resolved {
    int32_t a, b, n;  // -1: missing (a/b), -2: merged token missing (n)
  };
  std::vector<Resolved> resolved(merges.size());
  const size_t prefix_len = m.continuing_subword_prefix_.size();
  auto resolve = [&](size_t begin, size_t end) {
    std::string joined;
    for (size_t r = begin; r < end; ++r) {
      const auto& [a, b] = merges[r];
      Resolved& out = resolved[r];
      out.a = m.TokenToId(a).value_or(-1);
      out.b = m.TokenToId(b).value_or(-1);
      out.n = -1;
      if (out.a < 0 || out.b < 0 || b.size() < prefix_len) continue;
      joined.assign(a);
      joined.append(b, prefix_len, std::string::npos);
      out.n = m.TokenToId(joined).value_or(-2);
    }
  };
  {
    const size_t half = merges.size() / 2;
    std::thread helper(resolve, half, merges.size());
    resolve(0, half);
    helper.join();
  }
  m.merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const Resolved& r = resolved[rank];
    const auto& [a, b] = merges[rank];
    if (r.a < 0 || r.b < 0) {
      return absl::InvalidArgumentError(absl::StrCat("model.merges[", rank, "]: token \"",
                                                     r.a >= 0 ? b : a,
                                                     "\" is not in the vocabulary"));
    }
    if (r.n < 0) {
      return absl::InvalidArgumentError(absl::StrCat("model.merges[", rank, "]: merged token \"",
                                                     a, b.substr(std::min(b.size(), prefix_len)),
                                                     "\" is not in the vocabulary"));
    }
    // Later duplicates win, as in HF.
    m.merges_.insert_or_assign(PairKey(r.a, r.b), Merge{static_cast<int32_t>(rank), r.n});
  }
  return m;
}

std::optional<int32_t> BpeModel::TokenToId(absl::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

absl::string_view BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || id >= size() || id_to_token_[id].second == kHole) return {};
  return absl::string_view(arena_.data() + id_to_token_[id].first, id_to_token_[id].second);
}

void BpeModel::Tokenize(absl::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto id = TokenToId(word)) {
      out->push_back(*id);
      return;
    }
  }
  struct Sym {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  struct Entry {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
  };
  thread_local std::vector<Sym> syms;
  thread_local std::vector<Entry> heap;
  thread_local std::string scratch;
  syms.clear();
  heap.clear();

  auto add = [&](int32_t id) {
    const int32_t n = static_cast<int32_t>(syms.size());
    syms.push_back({id, n - 1, n + 1, true});
  };
  // Pending unknown run (HF merge_word): id >= 0 when pending.
  int32_t pending_unk = -1;
  size_t i = 0;
  const size_t n = word.size();
  while (i < n) {
    size_t len = ValidSequenceLength(word, i);
    if (len == 0) len = 1;  // never happens for sanitized input
    int32_t id;
    if (simple_chars_) {
      id = CharId(DecodeCodePoint(word.data() + i, len));
    } else {
      scratch.clear();
      if (i != 0) scratch.append(continuing_subword_prefix_);
      scratch.append(word.data() + i, len);
      if (i + len == n) scratch.append(end_of_word_suffix_);
      auto found = TokenToId(scratch);
      id = found ? *found : -1;
    }
    if (id >= 0) {
      if (pending_unk >= 0) {
        add(pending_unk);
        pending_unk = -1;
      }
      add(id);
    } else {
      bool done = false;
      if (byte_fallback_) {
        // Byte fallback covers the bytes of the looked-up string (prefix/suffix included).
        absl::string_view s = simple_chars_ ? word.substr(i, len) : absl::string_view(scratch);
        bool all = true;
        for (char c : s) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
        if (all) {
          for (char c : s) add(byte_ids_[static_cast<uint8_t>(c)]);
          done = true;
        }
      }
      if (!done && unk_id_ >= 0) {
        if (pending_unk >= 0 && !fuse_unk_) add(pending_unk);
        pending_unk = unk_id_;
      }
    }
    i += len;
  }
  if (pending_unk >= 0) add(pending_unk);
  if (syms.empty()) return;
  syms.back().next = -1;

  auto less = [](const Entry& x, const Entry& y) {  // max-heap comparator: smallest rank/pos on top
    return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos;
  };
  for (size_t k = 0; k + 1 < syms.size(); ++k) {
    if (const Merge* m = FindMerge(syms[k].id, syms[k + 1].id)) {
      heap.push_back({m->rank, static_cast<int32_t>(k), m->new_id});
    }
  }
  std::make_heap(heap.begin(), heap.end(), less);
  const int32_t count = static_cast<int32_t>(syms.size());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), less);
    const Entry top = heap.back();
    heap.pop_back();
    Sym& cur = syms[top.pos];
    if (!cur.alive || cur.next < 0) continue;
    const int32_t next_pos = cur.next;
    const Sym right = syms[next_pos];
    const Merge* m = FindMerge(cur.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;  // stale entry
    cur.id = top.new_id;
    cur.next = right.next;
    syms[next_pos].alive = false;
    if (right.next >= 0 && right.next < count) syms[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (const Merge* pm = FindMerge(syms[cur.prev].id, cur.id)) {
        heap.push_back({pm->rank, cur.prev, pm->new_id});
        std::push_heap(heap.begin(), heap.end(), less);
      }
    }
    if (cur.next >= 0) {
      if (const Merge* nm = FindMerge(cur.id, syms[cur.next].id)) {
        heap.push_back({nm->rank, top.pos, nm->new_id});
        std::push_heap(heap.begin(), heap.end(), less);
      }
    }
  }
  for (int32_t k = 0; k >= 0; k = syms[k].next) out->push_back(syms[k].id);
}

}  // namespace g4::tokenizer_internal
