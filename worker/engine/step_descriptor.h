// The per-step control message a replica leader broadcasts to its other ranks over the CPU
// channel (never gRPC): which sequence chunks to run, which sequences to free, or an idle
// heartbeat / shutdown. Compact little-endian binary; Parse() validates every length.
//
// Paged KV: `kv` names the page pools every rank sizes its PagedKvStorage by (block_size 0: the
// contiguous per-sequence caches), and each chunk carries its sequence's block-table changes
// since the previous step (BlockTableDelta), which the ranks apply to their BlockTableMirror.
#ifndef G4SERVE_WORKER_ENGINE_STEP_DESCRIPTOR_H_
#define G4SERVE_WORKER_ENGINE_STEP_DESCRIPTOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/kv_cache/kv_block_manager.h"

namespace g4 {

struct StepChunk {
  uint64_t seq_id = 0;
  int64_t start = 0;             // position of tokens[0]; equals the sequence's cached length
  std::vector<int32_t> tokens;
  BlockTableDelta table;         // paged KV only
};

// The replica's paged-KV pools; block_size 0 when the ranks use contiguous caches.
struct StepKvLayout {
  int32_t block_size = 0;
  int64_t num_global_pages = 0;
  int64_t num_sliding_pages = 0;
  bool paged() const { return block_size > 0; }
  bool operator==(const StepKvLayout&) const = default;
};

struct StepDescriptor {
  enum class Kind : uint8_t { kRun = 1, kHeartbeat = 2, kShutdown = 3 };
  Kind kind = Kind::kRun;
  uint64_t step = 0;
  StepKvLayout kv;
  std::vector<uint64_t> freed;   // sequences whose caches are dropped before running
  std::vector<StepChunk> chunks;

  std::string Serialize() const;
  static absl::StatusOr<StepDescriptor> Parse(absl::string_view bytes);
};

}  // namespace g4

#endif  // G4SERVE_WORKER_ENGINE_STEP_DESCRIPTOR_H_
