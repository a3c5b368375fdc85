// How much stack the calling thread has left. Recursive code that walks input whose nesting it
// does not control (template source, template recursion) checks it and fails with an error
// instead of overflowing the stack, whatever the thread's stack size and however large the
// build's frames are (sanitizer builds' frames are several times larger than Release ones, so a
// fixed depth limit that fits 8 MiB in Release overflows there). Linux (glibc) only.
#ifndef G4SERVE_COMMON_STACK_HEADROOM_H_
#define G4SERVE_COMMON_STACK_HEADROOM_H_

#include <pthread.h>

#include <cstddef>
#include <cstdint>

namespace g4 {

// Recursion stops, with an error, when less than this is left: enough for the error path and for
// library code below the check.
inline constexpr size_t kMinStackHeadroom = size_t{256} << 10;

// Bytes between the current frame and the end of this thread's stack.
inline size_t StackHeadroom() {
  // The lowest address of this thread's stack (stacks grow down), looked up once per thread.
  thread_local const uintptr_t stack_low = [] {
    uintptr_t low = 0;
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      void* addr = nullptr;
      size_t size = 0;
      if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
        low = reinterpret_cast<uintptr_t>(addr);
      }
      pthread_attr_destroy(&attr);
    }
    return low;
  }();
  // The real frame: with ASan, locals may live on a fake stack.
  const uintptr_t here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  if (stack_low == 0) return SIZE_MAX;  // unknown: do not stop anything
  return here > stack_low ? here - stack_low : 0;
}

// True when recursion should stop.
inline bool StackNearlyExhausted() { return StackHeadroom() < kMinStackHeadroom; }

}  // namespace g4

#endif  // G4SERVE_COMMON_STACK_HEADROOM_H_
