// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}), bit-for-bit like HF tokenizers'
// `BPE::tokenize` (merge_word + Word::merge_all) without dropout.
#ifndef G4SERVE_COMMON_TOKENIZER_BPE_MODEL_H_
#define G4SERVE_COMMON_TOKENIZER_BPE_MODEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace g4::tokenizer_internal {

class BpeModel {
 public:
  // `model` is the "model" object with its "vocab" and "merges" fields already taken out and given
  // as `vocab` (token, id) and `merges` (left, right) in file order.
  static absl::StatusOr<BpeModel> Build(const nlohmann::json& model,
                                        std::vector<std::pair<std::string, int64_t>> vocab,
                                        std::vector<std::pair<std::string, std::string>> merges);

  BpeModel(BpeModel&&) = default;
  BpeModel& operator=(BpeModel&&) = default;

  // Appends the ids of one pre-tokenized piece (valid UTF-8) to `out`.
  void Tokenize(absl::string_view word, std::vector<int32_t>* out) const;

  std::optional<int32_t> TokenToId(absl::string_view token) const;
  // Empty for ids with no token (holes or out of range).
  absl::string_view IdToToken(int32_t id) const;
  // One past the largest id.
  int32_t size() const { return static_cast<int32_t>(id_to_token_.size()); }
  // True when `id` has a token.
  bool Contains(int32_t id) const {
    return id >= 0 && id < size() && id_to_token_[id].second != UINT32_MAX;
  }
  size_t num_merges() const { return merges_.size(); }
  // True when a run of unknown characters can become one token (fuse_unk, and no byte fallback or
  // a byte without its <0xHH> token): then a token can stand for any number of input bytes.
  bool unknown_runs_fuse() const {
    if (!fuse_unk_ || unk_id_ < 0) return false;
    if (!byte_fallback_) return true;
    for (int32_t id : byte_ids_) {
      if (id < 0) return true;
    }
    return false;
  }

 private:
  BpeModel() = default;
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  const Merge* FindMerge(int32_t a, int32_t b) const {
    auto it = merges_.find(PairKey(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }
  // Id of the single code point `cp`, or -1.
  int32_t CharId(uint32_t cp) const {
    if (cp < bmp_ids_.size()) return bmp_ids_[cp];
    auto it = astral_ids_.find(cp);
    return it == astral_ids_.end() ? -1 : it->second;
  }

  std::string arena_;                             // all token bytes
  std::vector<std::pair<uint32_t, uint32_t>> id_to_token_;  // (offset, length) into arena_, or
                                                  // (0, UINT32_MAX) for a hole
  absl::flat_hash_map<absl::string_view, int32_t> vocab_;  // views into arena_
  absl::flat_hash_map<uint64_t, Merge> merges_;
  std::vector<int32_t> bmp_ids_;                  // code point < 0x10000 -> id or -1
  absl::flat_hash_map<uint32_t, int32_t> astral_ids_;
  int32_t byte_ids_[256];                         // "<0xHH>" ids or -1
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  int32_t unk_id_ = -1;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool simple_chars_ = true;  // no prefix/suffix: initial symbols are single code points
};

}  // namespace g4::tokenizer_internal

#endif  // G4SERVE_COMMON_TOKENIZER_BPE_MODEL_H_
