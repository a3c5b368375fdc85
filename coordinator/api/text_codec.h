// Text ↔ token ids for the API layer, behind a small interface so the service can run without a
// tokenizer (token-id prompts only) and tests can use a fake.
//
// HfTextCodec wraps the model directory's tokenizer.json (common/tokenizer) and, when present,
// chat_template.jinja (common/chat_template).
#ifndef G4SERVE_COORDINATOR_API_TEXT_CODEC_H_
#define G4SERVE_COORDINATOR_API_TEXT_CODEC_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/chat_template/chat_template.h"
#include "common/tokenizer/tokenizer.h"

namespace g4 {

// Streaming detokenization of one sequence.
class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;
  // Text that became final with `id` (possibly empty).
  virtual absl::StatusOr<std::string> Feed(int32_t id) = 0;
  // Whatever is still held back.
  virtual std::string Flush() = 0;
};

// Thread-safe (const methods may be called concurrently).
class TextCodec {
 public:
  virtual ~TextCodec() = default;
  virtual absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                                      bool add_special_tokens) const = 0;
  // Like Encode, but OUT_OF_RANGE as soon as the text is known to have more than `max_tokens`
  // tokens (Tokenizer::EncodeAtMost: a text far over the limit costs one pass, not its
  // tokenization).
  virtual absl::StatusOr<std::vector<int32_t>> EncodeAtMost(absl::string_view text,
                                                            bool add_special_tokens,
                                                            size_t max_tokens) const = 0;
  // The most bytes of text one token can stand for; 0 when there is no such bound
  // (Tokenizer::max_input_bytes_per_token). A text longer than N times this has more than N
  // tokens: the early byte bound for prompts.
  virtual int MaxInputBytesPerToken() const = 0;
  // Renders a chat request JSON {messages, tools, enable_thinking, add_generation_prompt} to
  // prompt text (with <bos>). FAILED_PRECONDITION when the model has no chat template;
  // INVALID_ARGUMENT naming "chat_json" for a bad request, JSON nested deeper than
  // kMaxJsonDepth (checked before parsing) or more than kMaxTools tools.
  virtual absl::StatusOr<std::string> RenderChat(absl::string_view chat_json) const = 0;
  // A decoder that keeps special tokens in the text.
  virtual absl::StatusOr<std::unique_ptr<StreamDecoder>> NewDecoder() const = 0;
  // The token's text (for matched_stop when a stop token ended generation).
  virtual std::string TokenText(int32_t id) const = 0;
};

class HfTextCodec final : public TextCodec {
 public:
  // Loads `tokenizer_path`; `chat_template_path` may be empty or missing (no template).
  static absl::StatusOr<std::unique_ptr<HfTextCodec>> Load(const std::string& tokenizer_path,
                                                           const std::string& chat_template_path);
  // From a model directory: <dir>/tokenizer.json (else tokenizer.json.xz) and
  // <dir>/chat_template.jinja. Returns null (not an error) when the directory has no tokenizer.
  static absl::StatusOr<std::unique_ptr<HfTextCodec>> LoadFromModelDir(const std::string& dir);

  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                              bool add_special_tokens) const override;
  absl::StatusOr<std::vector<int32_t>> EncodeAtMost(absl::string_view text,
                                                    bool add_special_tokens,
                                                    size_t max_tokens) const override;
  int MaxInputBytesPerToken() const override { return tokenizer_->max_input_bytes_per_token(); }
  absl::StatusOr<std::string> RenderChat(absl::string_view chat_json) const override;
  absl::StatusOr<std::unique_ptr<StreamDecoder>> NewDecoder() const override;
  std::string TokenText(int32_t id) const override;

  const Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  HfTextCodec(std::unique_ptr<Tokenizer> tokenizer, std::optional<ChatTemplate> chat_template)
      : tokenizer_(std::move(tokenizer)), chat_template_(std::move(chat_template)) {}

  std::unique_ptr<Tokenizer> tokenizer_;
  std::optional<ChatTemplate> chat_template_;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_API_TEXT_CODEC_H_
