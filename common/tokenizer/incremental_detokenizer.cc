#include "common/tokenizer/incremental_detokenizer.h"

#include "absl/strings/str_cat.h"

namespace g4 {

absl::StatusOr<std::unique_ptr<IncrementalDetokenizer>> IncrementalDetokenizer::Create(
    const Tokenizer* tokenizer, bool skip_special_tokens) {
  if (tokenizer == nullptr) return absl::InvalidArgumentError("null tokenizer");
  if (!tokenizer->decoder().is_streamable()) {
    return absl::UnimplementedError(
        "the tokenizer's decoder chain has steps after Fuse; incremental decoding unsupported");
  }
  return std::unique_ptr<IncrementalDetokenizer>(
      new IncrementalDetokenizer(tokenizer, skip_special_tokens));
}

absl::StatusOr<std::string> IncrementalDetokenizer::Feed(int32_t id) {
  if (!tokenizer_->HasToken(id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("token id ", id, " is out of range [0, ", tokenizer_->vocab_size(), ")"));
  }
  // Skipped special tokens vanish before decoding, so byte runs on both sides join (as in HF).
  if (skip_special_tokens_ && tokenizer_->IsSpecial(id)) return std::string();
  pending_.push_back(id);
  if (tokenizer_->IsByteToken(id)) return std::string();
  std::string out = tokenizer_->DecodeTokens(pending_);
  pending_.clear();
  return out;
}

std::string IncrementalDetokenizer::Flush() {
  std::string out = tokenizer_->DecodeTokens(pending_);
  pending_.clear();
  return out;
}

}  // namespace g4
