// Runs a function on a thread with a given stack size, so that tests of recursion bounds fail
// deterministically (a crash) when a bound is missing, whatever the machine's default stack.
#ifndef G4SERVE_TESTS_TESTING_RUN_WITH_STACK_H_
#define G4SERVE_TESTS_TESTING_RUN_WITH_STACK_H_

#include <pthread.h>

#include <cstddef>
#include <functional>

#include "gtest/gtest.h"

namespace g4::testing {

inline void RunWithStack(size_t stack_bytes, std::function<void()> fn) {
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, stack_bytes), 0);
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
