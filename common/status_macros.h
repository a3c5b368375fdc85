// Status propagation helpers.
//
// Debian's Abseil (20220623) predates ABSL_RETURN_IF_ERROR / ABSL_ASSIGN_OR_RETURN, so the project
// carries its own two macros, modelled on upstream's status_macros.h.
#ifndef G4SERVE_COMMON_STATUS_MACROS_H_
#define G4SERVE_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#define G4_STATUS_CONCAT_INNER_(a, b) a##b
#define G4_STATUS_CONCAT_(a, b) G4_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the enclosing function if it is not OK.
#define G4_RETURN_IF_ERROR(expr)                      \
  do {                                                \
    ::absl::Status g4_status_ = (expr);               \
    if (!g4_status_.ok()) return g4_status_;          \
  } while (false)

// `G4_ASSIGN_OR_RETURN(auto x, Foo());` assigns the value of an absl::StatusOr<T> or returns its
// error from the enclosing function.
#define G4_ASSIGN_OR_RETURN(lhs, rexpr) \
  G4_ASSIGN_OR_RETURN_IMPL_(G4_STATUS_CONCAT_(g4_statusor_, __LINE__), lhs, rexpr)

#define G4_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                              \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

namespace g4 {

// Returns `status` with `context: ` prepended to its message (OK stays OK).
inline absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace g4

#endif  // G4SERVE_COMMON_STATUS_MACROS_H_
