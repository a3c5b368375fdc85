// Giving a long-running server's free heap back to the kernel.
//
// glibc's malloc keeps memory that the program has freed inside its arenas (one per group of
// threads, up to 8 per core) and returns it to the kernel only from the top of each heap. A
// server whose threads come and go -- gRPC's synchronous server runs a thread per stream, the
// HTTP server and the tokenization pool have their own -- spreads its short-lived allocations
// over every arena, and each arena keeps the free pages of its busiest moment. The live heap
// stays flat, but the resident set creeps up: in the soak (docs/resilience.md) the coordinator's
// arenas held 8 MiB of which 6.9 MiB were free chunks, and its RSS grew by ~0.3 MiB a minute.
// malloc_trim(0) walks every arena and hands whole free pages back (madvise(MADV_DONTNEED)).
//
// What trimming cannot give back is a page that still holds one live chunk, and every arena has
// some: fewer arenas, fewer such pages. glibc sizes its arena limit for the machine (8 per
// core of the node), not for the CPUs a container may use; on a 64-core node a 2-CPU pod gets
// up to 512 arenas. The long-running binaries cap it at the CPUs they may run on. In the
// kill-heavy soak (a worker killed every 25 s) that halved the coordinator's anonymous memory
// growth (docs/resilience.md, "Soak").
#ifndef G4SERVE_COMMON_HEAP_HEAP_RELEASE_H_
#define G4SERVE_COMMON_HEAP_HEAP_RELEASE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace g4 {

// Caps glibc's malloc arenas at the number of CPUs this process may run on (sched_getaffinity,
// at least 2) unless the operator chose a limit (MALLOC_ARENA_MAX, or arena_max in
// GLIBC_TUNABLES). Call before the process starts threads. Returns the cap it set, 0 if none
// (chosen by the operator, or not glibc's allocator).
int LimitMallocArenas();

// Serves every allocation of at least `bytes` with a mapping of its own, unmapped when freed.
// glibc's threshold otherwise rises to the size of the largest block freed (up to 32 MiB), and a
// buffer that is freed and allocated again larger stays resident in the heap next to its
// successor. No-op where the allocator is not glibc's.
void SetMmapThreshold(size_t bytes);

// Returns the free pages of every malloc arena to the kernel now. A no-op where the allocator
// is not glibc's (sanitizer builds replace malloc; their allocator has no such call).
void ReleaseFreeHeap();

// Calls ReleaseFreeHeap() every `interval` on a thread of its own until destroyed. A zero
// interval starts no thread (the flag's "off").
class HeapReleaser {
 public:
  explicit HeapReleaser(absl::Duration interval);
  ~HeapReleaser();

  HeapReleaser(const HeapReleaser&) = delete;
  HeapReleaser& operator=(const HeapReleaser&) = delete;

  // How many releases have run (for tests and the log).
  int64_t releases() const { return releases_.load(std::memory_order_relaxed); }

 private:
  const absl::Duration interval_;
  absl::Notification stop_;
  std::atomic<int64_t> releases_{0};
  std::thread thread_;
};

}  // namespace g4

#endif  // G4SERVE_COMMON_HEAP_HEAP_RELEASE_H_
