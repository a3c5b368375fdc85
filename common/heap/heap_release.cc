#include "common/heap/heap_release.h"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace g4 {

int LimitMallocArenas() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_ARENA_MAX") != nullptr) return 0;
  if (const char* tunables = std::getenv("GLIBC_TUNABLES");
      tunables != nullptr && std::strstr(tunables, "arena_max") != nullptr) {
    return 0;
  }
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  int n = 0;
  if (sched_getaffinity(0, sizeof cpus, &cpus) == 0) n = CPU_COUNT(&cpus);
  n = std::max(n, 2);
  return mallopt(M_ARENA_MAX, n) == 1 ? n : 0;
#else
  return 0;
#endif
}

void SetMmapThreshold(size_t bytes) {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(std::min<size_t>(bytes, 1 << 30)));
#endif
}

void ReleaseFreeHeap() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

HeapReleaser::HeapReleaser(absl::Duration interval) : interval_(interval) {
  if (interval_ <= absl::ZeroDuration()) return;
  thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(interval_)) {
      ReleaseFreeHeap();
      releases_.fetch_add(1, std::memory_order_relaxed);
    }
  });
}

HeapReleaser::~HeapReleaser() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

}  // namespace g4
