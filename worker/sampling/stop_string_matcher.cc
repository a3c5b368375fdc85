#include "worker/sampling/stop_string_matcher.h"

#include <algorithm>
#include <utility>

namespace g4 {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings)
    : stops_(std::move(stop_strings)) {}

StopStringMatcher::Update StopStringMatcher::Append(absl::string_view chunk) {
  Update update;
  if (stopped_) {
    update.stopped = true;
    update.stop_index = stop_index_;
    return update;
  }
  pending_.append(chunk.data(), chunk.size());
  // pending_ held no complete stop string before this chunk, so any match found is new; the
  // first occurrence of each stop string is also its earliest-ending one.
  size_t best_end = std::string::npos, best_start = 0;
  std::optional<size_t> best;
  for (size_t s = 0; s < stops_.size(); ++s) {
    const std::string& stop = stops_[s];
    if (stop.empty()) continue;
    const size_t pos = pending_.find(stop);
    if (pos == std::string::npos) continue;
    const size_t end = pos + stop.size();
    if (!best.has_value() || end < best_end || (end == best_end && pos < best_start)) {
      best = s;
      best_end = end;
      best_start = pos;
    }
  }
  if (best.has_value()) {
    stopped_ = true;
    stop_index_ = best;
    update.text = pending_.substr(0, best_start);
    update.stopped = true;
    update.stop_index = best;
    pending_.clear();
    return update;
  }
  // Hold back the longest suffix that is a proper prefix of a stop string.
  size_t hold = 0;
  for (const std::string& stop : stops_) {
    const size_t limit = std::min(stop.size() == 0 ? 0 : stop.size() - 1, pending_.size());
    for (size_t k = limit; k > hold; --k) {
      if (absl::string_view(pending_).substr(pending_.size() - k) ==
          absl::string_view(stop).substr(0, k)) {
        hold = k;
        break;
      }
    }
  }
  update.text = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return update;
}

std::string StopStringMatcher::Flush() {
  std::string out = std::move(pending_);
  pending_.clear();
  return out;
}

}  // namespace g4
