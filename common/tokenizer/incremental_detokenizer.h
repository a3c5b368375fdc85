// Streaming detokenization for one sequence.
//
// Guarantees (for a streamable decoder chain, which Gemma's Replace/ByteFallback/Fuse is):
//  * the concatenation of every Feed() output followed by Flush() equals
//    Tokenizer::Decode(all fed ids, skip_special_tokens) byte for byte: nothing is repeated or
//    dropped;
//  * every output is valid UTF-8; a character never comes out in halves.
// Text is held back only while the fed tokens end in a run of byte-fallback tokens ("<0xHH>"): HF
// decodes such a run as a whole (valid UTF-8, or one U+FFFD per byte when any byte is bad), so the
// run is released when a non-byte token arrives or at Flush().
#ifndef G4SERVE_COMMON_TOKENIZER_INCREMENTAL_DETOKENIZER_H_
#define G4SERVE_COMMON_TOKENIZER_INCREMENTAL_DETOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tokenizer/tokenizer.h"

namespace g4 {

class IncrementalDetokenizer {
 public:
  // `tokenizer` must outlive the detokenizer. Fails with Unimplemented when the tokenizer's
  // decoder chain is not streamable (a step other than Fuse after Fuse).
  static absl::StatusOr<std::unique_ptr<IncrementalDetokenizer>> Create(
      const Tokenizer* tokenizer, bool skip_special_tokens = false);

  // Adds one generated token; returns the text that became final (possibly empty). An id Decode
  // would reject gives InvalidArgument and leaves the state unchanged.
  absl::StatusOr<std::string> Feed(int32_t id);
  // Returns whatever is still held back and resets the detokenizer for reuse.
  std::string Flush();

 private:
  IncrementalDetokenizer(const Tokenizer* tokenizer, bool skip_special_tokens)
      : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> pending_;  // trailing run of byte-fallback tokens
};

}  // namespace g4

#endif  // G4SERVE_COMMON_TOKENIZER_INCREMENTAL_DETOKENIZER_H_
