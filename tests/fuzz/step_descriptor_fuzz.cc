// StepDescriptor::Parse on arbitrary bytes (the leader's per-step message as a follower rank
// reads it off the network). Property: whatever parses serializes back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tests/fuzz/fuzz_util.h"
#include "worker/engine/step_descriptor.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using g4::StepDescriptor;
  std::vector<std::string> seeds;
  StepDescriptor heartbeat;
  heartbeat.kind = StepDescriptor::Kind::kHeartbeat;
  heartbeat.step = 7;
  seeds.push_back(heartbeat.Serialize());
  StepDescriptor shutdown;
  shutdown.kind = StepDescriptor::Kind::kShutdown;
  seeds.push_back(shutdown.Serialize());
  StepDescriptor run;
  run.step = 42;
  run.kv = {16, 1024, 256};
  run.freed = {3, 9};
  g4::StepChunk prefill;
  prefill.seq_id = 11;
  prefill.start = 0;
  prefill.tokens = {2, 651, 1234, 99, 7};
  prefill.table.global_append = {0, 1};
  prefill.table.sliding_append = {5};
  run.chunks.push_back(prefill);
  g4::StepChunk decode;
  decode.seq_id = 12;
  decode.start = 300;
  decode.tokens = {17};
  decode.table.sliding_first_block = 17;
  run.chunks.push_back(decode);
  seeds.push_back(run.Serialize());
  StepDescriptor contiguous;  // no paged KV
  contiguous.chunks.push_back(decode);
  seeds.push_back(contiguous.Serialize());
  g4::fuzz::WriteSeedsIfAsked(seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto d = g4::StepDescriptor::Parse(bytes);
  if (!d.ok()) return 0;
  if (d->Serialize() != bytes) __builtin_trap();
  return 0;
}
