#include "coordinator/api/text_codec.h"

#include <filesystem>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/json_depth.h"
#include "coordinator/api/request_limits.h"
#include "common/status_macros.h"
#include "common/tokenizer/incremental_detokenizer.h"
#include "nlohmann/json.hpp"

namespace g4 {
namespace {

class HfStreamDecoder final : public StreamDecoder {
 public:
  explicit HfStreamDecoder(std::unique_ptr<IncrementalDetokenizer> d) : d_(std::move(d)) {}
  absl::StatusOr<std::string> Feed(int32_t id) override { return d_->Feed(id); }
  std::string Flush() override { return d_->Flush(); }

 private:
  std::unique_ptr<IncrementalDetokenizer> d_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HfTextCodec>> HfTextCodec::Load(
    const std::string& tokenizer_path, const std::string& chat_template_path) {
  G4_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                      Tokenizer::LoadFromFile(tokenizer_path));
  std::optional<ChatTemplate> chat_template;
  std::error_code ec;
  if (!chat_template_path.empty() && std::filesystem::exists(chat_template_path, ec)) {
    absl::StatusOr<ChatTemplate> t = ChatTemplate::LoadFile(chat_template_path);
    if (!t.ok()) return Annotate(t.status(), chat_template_path);
    chat_template.emplace(*std::move(t));
  }
  return std::unique_ptr<HfTextCodec>(
      new HfTextCodec(std::move(tokenizer), std::move(chat_template)));
}

absl::StatusOr<std::unique_ptr<HfTextCodec>> HfTextCodec::LoadFromModelDir(
    const std::string& dir) {
  std::error_code ec;
  std::string tokenizer_path = dir + "/tokenizer.json";
  if (!std::filesystem::exists(tokenizer_path, ec)) {
    tokenizer_path += ".xz";
    if (!std::filesystem::exists(tokenizer_path, ec)) return std::unique_ptr<HfTextCodec>();
  }
  return Load(tokenizer_path, dir + "/chat_template.jinja");
}

absl::StatusOr<std::vector<int32_t>> HfTextCodec::Encode(absl::string_view text,
                                                         bool add_special_tokens) const {
  return tokenizer_->Encode(text, add_special_tokens);
}

absl::StatusOr<std::vector<int32_t>> HfTextCodec::EncodeAtMost(absl::string_view text,
                                                               bool add_special_tokens,
                                                               size_t max_tokens) const {
  std::optional<std::vector<int32_t>> ids =
      tokenizer_->EncodeAtMost(text, max_tokens, add_special_tokens);
  if (!ids.has_value()) {
    return absl::OutOfRangeError(absl::StrCat("more than ", max_tokens, " tokens"));
  }
  return *std::move(ids);
}

absl::StatusOr<std::string> HfTextCodec::RenderChat(absl::string_view chat_json) const {
  if (!chat_template_.has_value()) {
    return absl::FailedPreconditionError("model has no chat template (chat_template.jinja)");
  }
  G4_RETURN_IF_ERROR(CheckJsonTextDepth(chat_json, "chat_json"));
  nlohmann::ordered_json request =
      nlohmann::ordered_json::parse(chat_json.begin(), chat_json.end(), nullptr,
                                    /*allow_exceptions=*/false);
  if (request.is_discarded() || !request.is_object()) {
    return absl::InvalidArgumentError("chat_json: not a JSON object");
  }
  if (auto tools = request.find("tools"); tools != request.end() && tools->is_array() &&
                                          tools->size() > static_cast<size_t>(kMaxTools)) {
    return absl::InvalidArgumentError(absl::StrCat("chat_json: tools: at most ", kMaxTools,
                                                   " tools, got ", tools->size()));
  }
  absl::StatusOr<std::string> text = chat_template_->Render(request);
  if (!text.ok()) return Annotate(text.status(), "chat_json");
  return text;
}

absl::StatusOr<std::unique_ptr<StreamDecoder>> HfTextCodec::NewDecoder() const {
  G4_ASSIGN_OR_RETURN(std::unique_ptr<IncrementalDetokenizer> d,
                      IncrementalDetokenizer::Create(tokenizer_.get(),
                                                     /*skip_special_tokens=*/false));
  return std::unique_ptr<StreamDecoder>(new HfStreamDecoder(std::move(d)));
}

std::string HfTextCodec::TokenText(int32_t id) const {
  absl::StatusOr<std::string> text = tokenizer_->Decode({id}, /*skip_special_tokens=*/false);
  return text.ok() ? *text : std::string(tokenizer_->IdToToken(id));
}

}  // namespace g4
