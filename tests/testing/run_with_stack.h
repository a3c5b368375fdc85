// Runs a function on a thread with a given stack size, so that tests of recursion bounds fail
// deterministically (a crash) when a bound is missing, whatever the machine's default stack.
#ifndef G4SERVE_TESTS_TESTING_RUN_WITH_STACK_H_
#define G4SERVE_TESTS_TESTING_RUN_WITH_STACK_H_

#include <pthread.h>

#include <cstddef>
#include <functional>

#include "gtest/gtest.h"

namespace g4::testing {

// AddressSanitizer's frames are several times larger than Release ones (redzones around every
// local, less merging of frames): a bound that a Release build reaches on `stack_bytes` needs a
// proportionally larger stack there. The code under test measures the stack it has left
// (common/stack_headroom.h), so a larger stack changes where it stops, never whether it crashes.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr size_t kSanitizerStackScale = 8;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr size_t kSanitizerStackScale = 8;
#else
inline constexpr size_t kSanitizerStackScale = 1;
#endif
#else
inline constexpr size_t kSanitizerStackScale = 1;
#endif

// Runs `fn` on a new thread whose stack is `stack_bytes` (times kSanitizerStackScale).
inline void RunWithStack(size_t stack_bytes, std::function<void()> fn) {
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, stack_bytes * kSanitizerStackScale), 0);
  pthread_t thread;
  auto trampoline = +[](void* arg) -> void* {
    (*static_cast<std::function<void()>*>(arg))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attr, trampoline, &fn), 0);
  pthread_attr_destroy(&attr);
  pthread_join(thread, nullptr);
}

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_TESTING_RUN_WITH_STACK_H_
