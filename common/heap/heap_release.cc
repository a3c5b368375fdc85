#include "common/heap/heap_release.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace g4 {

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
