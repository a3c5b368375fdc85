// The mutual-TLS flags both g4-coordinator and g4-worker take (docs/security.md), declared once
// on a binary's FlagSet: --internal-tls-cert, --internal-tls-key, --internal-tls-ca,
// --internal-tls-refresh-interval, and the flag naming the identity required of the other side
// (--worker-identity on the coordinator, --coordinator-identity on a worker).
#ifndef G4SERVE_PROTO_INTERNAL_TLS_FLAGS_H_
#define G4SERVE_PROTO_INTERNAL_TLS_FLAGS_H_

#include <string>

#include "common/flags/flag_set.h"
#include "proto/internal_tls.h"

namespace g4 {

struct InternalTlsFlagText {
  std::string cert_help;         // what --internal-tls-cert is on this binary
  std::string cert_default;      // what happens without the flags
  std::string ca_help;           // whose certificates --internal-tls-ca checks
  std::string peer_flag;         // "worker-identity" / "coordinator-identity"
  std::string peer_help;
};

void DeclareInternalTlsFlags(FlagSet& flags, InternalTlsOptions& options,
                             const InternalTlsFlagText& text);

}  // namespace g4

#endif  // G4SERVE_PROTO_INTERNAL_TLS_FLAGS_H_
