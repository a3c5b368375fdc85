#include "proto/internal_tls_flags.h"

#include "absl/time/time.h"

namespace g4 {

void DeclareInternalTlsFlags(FlagSet& flags, InternalTlsOptions& options,
                             const InternalTlsFlagText& text) {
  flags.Add("internal-tls-cert", &options.cert_file, text.cert_help)
      .Value("PATH")
      .Default(text.cert_default);
  flags.Add("internal-tls-key", &options.key_file,
            "mutual TLS: the private key of --internal-tls-cert (PEM)")
      .Value("PATH");
  flags.Add("internal-tls-ca", &options.ca_file, text.ca_help).Value("PATH");
  flags.Add("internal-tls-refresh-interval", &options.refresh_interval,
            "mutual TLS: how often the three files are re-read (rotation without restart)")
      .MinExclusive(absl::ZeroDuration());
  flags.Add(text.peer_flag, &options.peer_name, text.peer_help).Value("NAME").NonEmpty();
}

}  // namespace g4
