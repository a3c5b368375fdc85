#include "common/tokenizer/tokenizer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tokenizer/json_util.h"
#include "common/tokenizer/tokenizer_json.h"
#include "common/tokenizer/utf8.h"

namespace g4 {

using tokenizer_internal::AddedToken;
using tokenizer_internal::AddedTokenMatcher;

namespace {

absl::StatusOr<std::vector<AddedToken>> ParseAddedTokens(const nlohmann::json& root) {
  std::vector<AddedToken> out;
  auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return out;
  if (!it->is_array()) return absl::InvalidArgumentError("added_tokens must be an array");
  for (size_t i = 0; i < it->size(); ++i) {
    const nlohmann::json& t = (*it)[i];
    const std::string what = absl::StrCat("added_tokens[", i, "]");
    if (!t.is_object()) return absl::InvalidArgumentError(absl::StrCat(what, ": not an object"));
    AddedToken a;
    auto id = t.find("id");
    if (id == t.end() || !id->is_number_unsigned() || id->get<uint64_t>() >= (1u << 30)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": missing or bad \"id\""));
    }
    a.id = id->get<int32_t>();
    G4_ASSIGN_OR_RETURN(a.content, tokenizer_internal::GetString(t, "content", what));
    G4_ASSIGN_OR_RETURN(a.single_word, tokenizer_internal::GetBool(t, "single_word", false, what));
    G4_ASSIGN_OR_RETURN(a.lstrip, tokenizer_internal::GetBool(t, "lstrip", false, what));
    G4_ASSIGN_OR_RETURN(a.rstrip, tokenizer_internal::GetBool(t, "rstrip", false, what));
    G4_ASSIGN_OR_RETURN(a.normalized, tokenizer_internal::GetBool(t, "normalized", true, what));
    G4_ASSIGN_OR_RETURN(a.special, tokenizer_internal::GetBool(t, "special", false, what));
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::LoadFromFile(const std::string& path) {
  G4_ASSIGN_OR_RETURN(std::string text, tokenizer_internal::ReadMaybeXzFile(path));
  auto tok = LoadFromJson(text);
  if (!tok.ok()) return Annotate(tok.status(), path);
  return tok;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::LoadFromJson(absl::string_view json) {
  G4_ASSIGN_OR_RETURN(tokenizer_internal::TokenizerJson parsed,
                      tokenizer_internal::ParseTokenizerJson(json));
  const nlohmann::json& root = parsed.root;
  auto model_it = root.find("model");
  if (model_it == root.end() || !model_it->is_object()) {
    return absl::InvalidArgumentError("tokenizer.json: missing object \"model\"");
  }
  G4_ASSIGN_OR_RETURN(tokenizer_internal::BpeModel model,
                      tokenizer_internal::BpeModel::Build(*model_it, std::move(parsed.vocab),
                                                          std::move(parsed.merges)));
  std::unique_ptr<Tokenizer> t(new Tokenizer(std::move(model)));
  static const nlohmann::json kNull;
  auto field = [&](const char* k) -> const nlohmann::json& {
    auto it = root.find(k);
    return it == root.end() ? kNull : *it;
  };
  G4_ASSIGN_OR_RETURN(t->normalizer_,
                      tokenizer_internal::Normalizer::FromJson(field("normalizer")));
  G4_ASSIGN_OR_RETURN(t->pre_tokenizer_,
                      tokenizer_internal::PreTokenizer::FromJson(field("pre_tokenizer")));
  G4_ASSIGN_OR_RETURN(t->decoder_, tokenizer_internal::Decoder::FromJson(field("decoder")));
  G4_ASSIGN_OR_RETURN(t->post_processor_,
                      tokenizer_internal::PostProcessor::FromJson(field("post_processor")));
  G4_ASSIGN_OR_RETURN(t->added_, ParseAddedTokens(root));

  int32_t max_id = t->model_.size() - 1;
  std::vector<const AddedToken*> raw, norm;
  std::vector<std::string> raw_pat, norm_pat;
  for (size_t i = 0; i < t->added_.size(); ++i) {
    const AddedToken& a = t->added_[i];
    max_id = std::max(max_id, a.id);
    t->added_by_id_[a.id] = i;
    t->added_by_content_.emplace(a.content, a.id);
    if (a.normalized) {
      norm.push_back(&a);
      norm_pat.push_back(t->normalizer_.Apply(a.content));
    } else {
      raw.push_back(&a);
      raw_pat.push_back(a.content);
    }
  }
  t->raw_matcher_.Build(raw, raw_pat);
  t->normalized_matcher_.Build(norm, norm_pat);
  t->vocab_size_ = max_id + 1;
  for (int32_t id = 0; id < t->vocab_size_; ++id) {
    t->max_token_bytes_ = std::max(t->max_token_bytes_, static_cast<int>(t->IdToToken(id).size()));
  }
  t->unknown_runs_fuse_ = t->model_.unknown_runs_fuse();
  for (const std::string& p : norm_pat) {  // normalized added tokens match their normalized form
    t->max_token_bytes_ = std::max(t->max_token_bytes_, static_cast<int>(p.size()));
  }
  for (int32_t id : t->post_processor_.prefix()) {
    if (id < 0 || id >= t->vocab_size_) {
      return absl::InvalidArgumentError(
          absl::StrCat("post_processor: id ", id, " is outside the vocabulary"));
    }
  }
  t->special_.assign(t->vocab_size_, false);
  for (const AddedToken& a : t->added_) t->special_[a.id] = a.special || t->special_[a.id];
  t->byte_token_.assign(t->vocab_size_, false);
  if (t->decoder_.has_byte_fallback()) {
    for (int32_t id = 0; id < t->vocab_size_; ++id) {
      t->byte_token_[id] = tokenizer_internal::ByteFallbackValue(t->IdToToken(id)).has_value();
    }
  }
  auto id_of = [&](absl::string_view s) { return t->TokenToId(s).value_or(-1); };
  t->bos_id_ = id_of("<bos>");
  t->eos_id_ = id_of("<eos>");
  t->pad_id_ = id_of("<pad>");
  t->unk_id_ = id_of("<unk>");
  return t;
}

bool Tokenizer::EncodeWords(absl::string_view text, std::vector<int32_t>* out,
                            size_t max_tokens) const {
  std::vector<absl::string_view> words;
  pre_tokenizer_.Split(text, &words);
  for (absl::string_view w : words) {
    // Every token of `w` covers at most max_token_bytes_ of its bytes.
    const size_t least = (w.size() + max_token_bytes_ - 1) / max_token_bytes_;
    if (!unknown_runs_fuse_ && out->size() + least > max_tokens) return false;
    model_.Tokenize(w, out);
    if (out->size() > max_tokens) return false;
  }
  return true;
}

bool Tokenizer::EncodeSegment(absl::string_view text, std::vector<int32_t>* out,
                              size_t max_tokens) const {
  if (normalizer_.is_identity()) return EncodeWords(text, out, max_tokens);
  const std::string normalized = normalizer_.Apply(text);
  std::vector<AddedTokenMatcher::Piece> pieces;
  normalized_matcher_.Split(normalized, &pieces);
  for (const auto& p : pieces) {
    if (p.id >= 0) {
      out->push_back(p.id);
      if (out->size() > max_tokens) return false;
      continue;
    }
    if (!EncodeWords(absl::string_view(normalized).substr(p.begin, p.end - p.begin), out,
                     max_tokens)) {
      return false;
    }
  }
  return true;
}

std::optional<std::vector<int32_t>> Tokenizer::EncodeImpl(absl::string_view text,
                                                          size_t max_tokens,
                                                          bool add_special_tokens) const {
  std::string repaired;
  if (!tokenizer_internal::IsValidUtf8(text)) {
    repaired = tokenizer_internal::SanitizeUtf8(text);
    text = repaired;
  }
  const size_t added =
      add_special_tokens ? post_processor_.prefix().size() + post_processor_.suffix().size() : 0;
  if (added > max_tokens) return std::nullopt;
  const size_t limit = max_tokens - added;
  std::vector<int32_t> ids;
  ids.reserve(std::min(text.size() / 3 + 4, limit + 1));
  std::vector<AddedTokenMatcher::Piece> pieces;
  raw_matcher_.Split(text, &pieces);
  for (const auto& p : pieces) {
    if (p.id >= 0) {
      ids.push_back(p.id);
      if (ids.size() > limit) return std::nullopt;
    } else if (!EncodeSegment(text.substr(p.begin, p.end - p.begin), &ids, limit)) {
      return std::nullopt;
    }
  }
  if (add_special_tokens) return post_processor_.Apply(std::move(ids));
  return ids;
}

std::vector<int32_t> Tokenizer::Encode(absl::string_view text, bool add_special_tokens) const {
  return *EncodeImpl(text, std::numeric_limits<size_t>::max(), add_special_tokens);
}

std::optional<std::vector<int32_t>> Tokenizer::EncodeAtMost(absl::string_view text,
                                                            size_t max_tokens,
                                                            bool add_special_tokens) const {
  return EncodeImpl(text, max_tokens, add_special_tokens);
}

int Tokenizer::max_input_bytes_per_token() const {
  if (!normalizer_.never_shrinks() || unknown_runs_fuse_) return 0;
  return max_token_bytes_;
}

std::optional<int32_t> Tokenizer::TokenToId(absl::string_view token) const {
  if (auto it = added_by_content_.find(token); it != added_by_content_.end()) return it->second;
  return model_.TokenToId(token);
}

absl::string_view Tokenizer::IdToToken(int32_t id) const {
  if (auto it = added_by_id_.find(id); it != added_by_id_.end()) return added_[it->second].content;
  return model_.IdToToken(id);
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size_ && special_[id];
}

bool Tokenizer::HasToken(int32_t id) const {
  return added_by_id_.contains(id) || model_.Contains(id);
}

bool Tokenizer::IsByteToken(int32_t id) const {
  return id >= 0 && id < vocab_size_ && byte_token_[id];
}

std::string Tokenizer::DecodeTokens(absl::Span<const int32_t> ids) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) tokens.emplace_back(IdToToken(id));
  return decoder_.Decode(std::move(tokens));
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids,
                                              bool skip_special_tokens) const {
  std::vector<int32_t> kept;
  kept.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= vocab_size_) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", id, " at position ", i,
                                                     " is out of range [0, ", vocab_size_, ")"));
    }
    if (!HasToken(id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id, " at position ", i, " has no token"));
    }
    if (skip_special_tokens && special_[id]) continue;
    kept.push_back(id);
  }
  return DecodeTokens(kept);
}

}  // namespace g4
