#include "worker/comm/communicator.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace g4 {

// One collective for the common case: a fixed frame of kFrameBytes carries the 8-byte length
// and up to kFrameBytes − 8 payload bytes inline (a decode step descriptor for 100+ sequences);
// only a longer payload pays a second broadcast for the rest. Per-step control latency is one
// round of the collective, not two.
absl::Status Communicator::BroadcastBytes(std::string* payload, int root) {
  constexpr size_t kFrameBytes = 4096;
  constexpr size_t kInline = kFrameBytes - sizeof(uint64_t);
  if (payload == nullptr) return absl::InvalidArgumentError("BroadcastBytes: payload is null");
  if (root < 0 || root >= size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("BroadcastBytes: root ", root, " out of range [0, ", size(), ")"));
  }
  char frame[kFrameBytes];
  uint64_t length = 0;
  if (rank() == root) {
    length = payload->size();
    std::memcpy(frame, &length, sizeof(length));
    std::memcpy(frame + sizeof(length), payload->data(), std::min<size_t>(length, kInline));
  }
  G4_RETURN_IF_ERROR(Annotate(Broadcast(frame, kFrameBytes, root), "BroadcastBytes(frame)"));
  if (rank() != root) {
    std::memcpy(&length, frame, sizeof(length));
    payload->assign(frame + sizeof(length), std::min<size_t>(length, kInline));
    payload->resize(length);
  }
  if (length <= kInline) return absl::OkStatus();
  return Annotate(Broadcast(payload->data() + kInline, static_cast<int64_t>(length - kInline), root),
                  "BroadcastBytes(rest)");
}

}  // namespace g4
