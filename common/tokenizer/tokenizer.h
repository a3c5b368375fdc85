// Hugging Face `tokenizer.json` tokenizer (the format Gemma 3/4 ship), matching HF `tokenizers`
// encode/decode exactly for the components listed in docs/tokenizer.md.
//
// Thread safety: a loaded Tokenizer is immutable; Encode/Decode may be called concurrently.
#ifndef G4SERVE_COMMON_TOKENIZER_TOKENIZER_H_
#define G4SERVE_COMMON_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/tokenizer/added_tokens.h"
#include "common/tokenizer/bpe_model.h"
#include "common/tokenizer/decoder.h"
#include "common/tokenizer/normalizer.h"
#include "common/tokenizer/post_processor.h"
#include "common/tokenizer/pre_tokenizer.h"

namespace g4 {

class Tokenizer {
 public:
  // Loads a tokenizer.json file; a path ending in ".xz" is decompressed first.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> LoadFromFile(const std::string& path);
  // Parses tokenizer.json text. Unknown component types give InvalidArgument naming the type.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> LoadFromJson(absl::string_view json);

  // Token ids of `text`. Added tokens (special or not) in the text are always recognised. With
  // `add_special_tokens` the post-processor template is applied (Gemma: a leading <bos>).
  // Invalid UTF-8 is first repaired: every maximal ill-formed subsequence becomes U+FFFD (as
  // Python's bytes.decode("utf-8", "replace") does), and the result is tokenized.
  std::vector<int32_t> Encode(absl::string_view text, bool add_special_tokens = false) const;

  // Like Encode, but gives up as soon as the ids are known to number more than `max_tokens`
  // (the post-processor's ids included) and returns nullopt: before tokenizing each
  // pre-tokenized piece it adds that piece's least possible token count (its bytes divided by
  // max_token_bytes(), rounded up), so a text far over the limit costs one pass over it, not
  // its tokenization. Same ids as Encode otherwise.
  std::optional<std::vector<int32_t>> EncodeAtMost(absl::string_view text, size_t max_tokens,
                                                   bool add_special_tokens = false) const;

  // The longest token, vocabulary or added, in bytes (at least 4, one unknown code point).
  int max_token_bytes() const { return max_token_bytes_; }
  // The most bytes of INPUT text one token can stand for, 0 when there is no such bound (a
  // normalizer that can shrink text, or fused unknown runs). A text of n bytes has at least
  // ceil(n / max_input_bytes_per_token()) tokens: the server's early byte bound for prompts.
  int max_input_bytes_per_token() const;

  // Text of `ids` through the decoder chain. An id outside [0, vocab_size()) or without a token
  // gives InvalidArgument naming the id (HF silently drops such ids). With
  // `skip_special_tokens`, added tokens marked special are left out before decoding.
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                     bool skip_special_tokens = false) const;

  // One past the largest id of the model vocabulary and the added tokens.
  int32_t vocab_size() const { return vocab_size_; }
  std::optional<int32_t> TokenToId(absl::string_view token) const;
  // The token string of `id`; empty when there is none.
  absl::string_view IdToToken(int32_t id) const;
  // True for added tokens marked "special".
  bool IsSpecial(int32_t id) const;
  // True when `id` is in range and has a token (Decode accepts exactly these ids).
  bool HasToken(int32_t id) const;
  // Id of <bos>, <eos>, <pad>, <unk> (-1 when the vocabulary has no such token).
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }

  // Internals used by IncrementalDetokenizer.
  const tokenizer_internal::Decoder& decoder() const { return decoder_; }
  // Decoder output of a run of tokens (no id checks).
  std::string DecodeTokens(absl::Span<const int32_t> ids) const;
  // True when the token of `id` is a byte-fallback token "<0xHH>" and the decoder turns such
  // tokens into bytes.
  bool IsByteToken(int32_t id) const;

 private:
  Tokenizer(tokenizer_internal::BpeModel model) : model_(std::move(model)) {}
  // Appends the ids of `text` (no added tokens in it) to `out`; false as soon as `out` would
  // exceed `max_tokens` (the ids appended so far are then meaningless).
  bool EncodeSegment(absl::string_view text, std::vector<int32_t>* out,
                     size_t max_tokens = SIZE_MAX) const;
  // Tokenizes the pre-tokenized pieces of `text`; false as EncodeSegment.
  bool EncodeWords(absl::string_view text, std::vector<int32_t>* out, size_t max_tokens) const;
  std::optional<std::vector<int32_t>> EncodeImpl(absl::string_view text, size_t max_tokens,
                                                 bool add_special_tokens) const;

  tokenizer_internal::BpeModel model_;
  tokenizer_internal::Normalizer normalizer_;
  tokenizer_internal::PreTokenizer pre_tokenizer_;
  tokenizer_internal::Decoder decoder_;
  tokenizer_internal::PostProcessor post_processor_;
  std::vector<tokenizer_internal::AddedToken> added_;
  absl::flat_hash_map<int32_t, size_t> added_by_id_;  // id -> index in added_
  absl::flat_hash_map<std::string, int32_t> added_by_content_;
  tokenizer_internal::AddedTokenMatcher raw_matcher_;         // normalized=false tokens
  tokenizer_internal::AddedTokenMatcher normalized_matcher_;  // normalized=true tokens
  std::vector<bool> special_;
  std::vector<bool> byte_token_;
  int32_t vocab_size_ = 0;
  int max_token_bytes_ = 4;
  bool unknown_runs_fuse_ = false;  // model_.unknown_runs_fuse()
  int32_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1, unk_id_ = -1;
};

}  // namespace g4

#endif  // G4SERVE_COMMON_TOKENIZER_TOKENIZER_H_
