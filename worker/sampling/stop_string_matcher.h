// Finds stop strings in a stream of detokenized text that arrives in chunks (one per token or
// per step), so that a stop string split across any number of chunks is still found and never
// reaches the client.
//
// Semantics: the stop is the occurrence that ends first in the text (the first moment the text
// contains any stop string); of those ending at the same place, the one that starts first. Output
// is the text before that occurrence; the stop string and anything after it are dropped. Until
// then, Append() returns the text that can no longer be part of a stop string and holds back only
// the longest suffix that is a proper prefix of some stop string. The result does not depend on
// how the text is split into chunks.
//
// Thread-compatible.
#ifndef G4SERVE_WORKER_SAMPLING_STOP_STRING_MATCHER_H_
#define G4SERVE_WORKER_SAMPLING_STOP_STRING_MATCHER_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace g4 {

class StopStringMatcher {
 public:
  // Empty strings in `stop_strings` are ignored (Validate rejects them earlier).
  explicit StopStringMatcher(std::vector<std::string> stop_strings);

  struct Update {
    std::string text;  // safe to emit now
    bool stopped = false;
    // When stopped: index into the stop strings of the one that matched.
    std::optional<size_t> stop_index;
  };

  // Appends a chunk. After a stop, further chunks are ignored (empty text, stopped = true).
  Update Append(absl::string_view chunk);

  // End of the stream without a stop: returns the held-back text (empty after a stop).
  std::string Flush();

  bool stopped() const { return stopped_; }
  // Bytes held back right now.
  size_t held_back() const { return pending_.size(); }

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // appended but not yet emitted
  bool stopped_ = false;
  std::optional<size_t> stop_index_;
};

}  // namespace g4

#endif  // G4SERVE_WORKER_SAMPLING_STOP_STRING_MATCHER_H_
