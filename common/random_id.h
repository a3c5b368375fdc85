// Unguessable identifiers: 128 bits from the kernel's CSPRNG (getrandom(2)), as 32 lowercase hex
// digits. Used for the request ids the server assigns (knowing one must not let anyone guess
// another, docs/api.md "Request ids").
#ifndef G4SERVE_COMMON_RANDOM_ID_H_
#define G4SERVE_COMMON_RANDOM_ID_H_

#include <string>

#include "absl/strings/string_view.h"

namespace g4 {

// `prefix` followed by 32 random hex digits. Never fails: if getrandom is unavailable it reads
// /dev/urandom, and if that fails too the process aborts (it must not hand out guessable ids).
std::string RandomId(absl::string_view prefix = "");

}  // namespace g4

#endif  // G4SERVE_COMMON_RANDOM_ID_H_
