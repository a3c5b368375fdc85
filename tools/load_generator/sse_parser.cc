#include "tools/load_generator/sse_parser.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace g4::load {

std::vector<std::string> SseParser::Feed(absl::string_view bytes) {
  std::vector<std::string> events;
  pending_.append(bytes.data(), bytes.size());
  size_t start = 0;
  for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
    absl::string_view line(pending_.data() + start, nl - start);
    if (absl::EndsWith(line, "\r")) line.remove_suffix(1);
    if (line.empty()) {
      if (has_data_) events.push_back(std::move(data_));
      data_.clear();
      has_data_ = false;
      continue;
    }
    if (!absl::StartsWith(line, "data:")) continue;
    line.remove_prefix(5);
    if (absl::StartsWith(line, " ")) line.remove_prefix(1);
    if (has_data_) data_.push_back('\n');
    absl::StrAppend(&data_, line);
    has_data_ = true;
  }
  pending_.erase(0, start);
  return events;
}

}  // namespace g4::load
