#include "worker/comm/communicator.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace g4 {

absl::Status Communicator::BroadcastBytes(std::string* payload, int root) {
  if (payload == nullptr) return absl::InvalidArgumentError("BroadcastBytes: payload is null");
  if (root < 0 || root >= size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("BroadcastBytes: root ", root, " out of range [0, ", size(), ")"));
  }
  uint64_t length = rank() == root ? payload->size() : 0;
  G4_RETURN_IF_ERROR(Annotate(Broadcast(&length, sizeof(length), root), "BroadcastBytes(length)"));
  if (rank() != root) payload->resize(length);
  if (length == 0) return absl::OkStatus();
  return Annotate(Broadcast(payload->data(), static_cast<int64_t>(length), root),
                  "BroadcastBytes(payload)");
}

}  // namespace g4
