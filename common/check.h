// Invariant checks. A failed G4_CHECK is a programming error, never a reaction to bad input (bad
// input gets an absl::Status): it prints the location and aborts.
#ifndef G4SERVE_COMMON_CHECK_H_
#define G4SERVE_COMMON_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define G4_CHECK(cond)                                                          \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                             \
    }                                                                           \
  } while (false)

#define G4_CHECK_MSG(cond, msg)                                                      \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, #cond, \
                   (msg));                                                           \
      std::abort();                                                                  \
    }                                                                                \
  } while (false)

#endif  // G4SERVE_COMMON_CHECK_H_
