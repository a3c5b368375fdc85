// A TLS certificate and its private key read from PEM files and checked together, for every
// TLS server of the project (docs/security.md): the internal plane's mutual TLS
// (proto/internal_tls.h), the public gRPC port and the OpenAI HTTP port
// (coordinator/http/tls_context.h). One set of checks, so that a mistake reads the same
// whichever listener it is for: a file that cannot be read or is empty, one that holds no PEM
// certificate or no (unencrypted) PEM private key, a key that is not the certificate's. Errors
// are INVALID_ARGUMENT and name the flag and the file ("--tls-key FILE: not the key of
// --tls-cert FILE").
#ifndef G4SERVE_COMMON_TLS_KEY_PAIR_H_
#define G4SERVE_COMMON_TLS_KEY_PAIR_H_

#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace g4 {

// The public plane's flags (g4-coordinator): one certificate for the gRPC and the HTTP port.
inline constexpr char kPublicTlsCertFlag[] = "--tls-cert";
inline constexpr char kPublicTlsKeyFlag[] = "--tls-key";

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

// The text of `path`; INVALID_ARGUMENT "FLAG PATH: cannot be read" / ": empty".
absl::StatusOr<std::string> ReadTlsFile(const std::string& flag, const std::string& path);

// Every certificate of a PEM text, in order (none: not PEM).
std::vector<X509Ptr> ReadPemCertificates(const std::string& pem);

// Where a certificate and its key come from: the flags that name them (for errors) and the files.
struct TlsKeyPairFiles {
  std::string cert_flag;  // e.g. "--tls-cert"
  std::string cert_file;
  std::string key_flag;  // e.g. "--tls-key"
  std::string key_file;
};

// A checked pair: the PEM texts as read (build a TLS context from these, not from the files
// again, so that what was checked is what is used) and the parsed certificate chain.
struct TlsKeyPair {
  std::string cert_pem;
  std::string key_pem;
  std::vector<X509Ptr> chain;  // leaf first; never empty
};

// Reads both files and checks them: PEM, a private key, the key of the chain's first certificate.
absl::StatusOr<TlsKeyPair> ReadTlsKeyPair(const TlsKeyPairFiles& files);

}  // namespace g4

#endif  // G4SERVE_COMMON_TLS_KEY_PAIR_H_
