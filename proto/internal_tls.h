// Mutual TLS on the internal plane (docs/security.md): the coordinator's Fleet service and
// rendezvous store, every worker's Worker service, and the channels between them.
//
// Both sides present a certificate of one CA (--internal-tls-cert, --internal-tls-key,
// --internal-tls-ca), and each side checks the other's identity: a DNS name in the peer
// certificate's subjectAltName. The coordinator requires `peer_name` "g4serve-worker" (by
// default) of everything that calls its internal port and of every worker it dials; a worker
// requires "g4serve-coordinator" of everything that calls its Worker service and of the
// coordinator it dials. Server side, gRPC's handshake verifies the chain (a client without a
// certificate, or with one of another CA, never gets a call through) and an
// AuthMetadataProcessor refuses, with PERMISSION_DENIED, a call whose peer certificate does not
// name `peer_name`. Client side, the channel's TLS target name is `peer_name`, so gRPC's host
// name check refuses a server whose certificate does not name it.
//
// The files are re-read every `refresh_interval` (gRPC's FileWatcherCertificateProvider): a
// renewed certificate and key, or a new CA bundle, apply to every handshake after the next
// refresh, without a restart (cert-manager rotation). Connections already open keep the
// credentials they were made with.
//
// Without files (InternalTlsOptions::enabled() false) everything is plaintext, as for local
// development; the binaries then warn on stderr.
#ifndef G4SERVE_PROTO_INTERNAL_TLS_H_
#define G4SERVE_PROTO_INTERNAL_TLS_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace g4 {

inline constexpr char kDefaultCoordinatorIdentity[] = "g4serve-coordinator";
inline constexpr char kDefaultWorkerIdentity[] = "g4serve-worker";

struct InternalTlsOptions {
  std::string cert_file;  // PEM: this process's certificate (then any intermediates)
  std::string key_file;   // PEM: its private key
  std::string ca_file;    // PEM: the CA bundle peers' certificates must chain to
  // The DNS subjectAltName the other side's certificate must carry.
  std::string peer_name;
  absl::Duration refresh_interval = absl::Seconds(60);

  bool enabled() const { return !cert_file.empty() || !key_file.empty() || !ca_file.empty(); }
};

// No files (plaintext until a binary's flags give them), requiring `peer_name` of the other side.
inline InternalTlsOptions InternalTlsRequiring(std::string peer_name) {
  InternalTlsOptions o;
  o.peer_name = std::move(peer_name);
  return o;
}

// Checks options the way a binary's flags give them, naming the flag in the error
// (INVALID_ARGUMENT): all three files or none ("--internal-tls-key: needed with
// --internal-tls-cert"), each readable and PEM ("--internal-tls-cert FILE: ..."), the key
// matching the certificate, the certificate chaining to the CA bundle and valid now, a
// non-empty peer name, a refresh interval of at least 1 s.
absl::Status CheckInternalTlsOptions(const InternalTlsOptions& options);

// Server TLS without client certificates, for the coordinator's public gRPC port (--tls-cert,
// --tls-key; docs/security.md): the pair is checked like CheckInternalTlsOptions' (naming those
// flags; INVALID_ARGUMENT) and re-read every `refresh_interval`.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> PublicTlsServerCredentials(
    const std::string& cert_file, const std::string& key_file, absl::Duration refresh_interval);

// The credentials of one process's side of the internal plane. Plaintext when
// !options.enabled(). Thread-safe; share one per process (the file watcher is one thread).
class InternalTls {
 public:
  // CheckInternalTlsOptions, then the credentials.
  static absl::StatusOr<std::unique_ptr<InternalTls>> Create(InternalTlsOptions options);

  bool enabled() const { return options_.enabled(); }
  const InternalTlsOptions& options() const { return options_; }

  // For a server of the internal plane: mTLS requiring a client certificate of the CA that
  // names peer_name; plaintext when disabled.
  std::shared_ptr<grpc::ServerCredentials> ServerCredentials() const;
  // A channel to a server of the internal plane whose certificate must name peer_name.
  std::shared_ptr<grpc::Channel> Dial(const std::string& target,
                                      grpc::ChannelArguments args) const;

 private:
  explicit InternalTls(InternalTlsOptions options) : options_(std::move(options)) {}

  const InternalTlsOptions options_;
  std::shared_ptr<grpc::ServerCredentials> server_credentials_;
  std::shared_ptr<grpc::ChannelCredentials> channel_credentials_;
};

}  // namespace g4

#endif  // G4SERVE_PROTO_INTERNAL_TLS_H_
