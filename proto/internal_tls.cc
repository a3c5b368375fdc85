#include "proto/internal_tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpc/grpc_security_constants.h>

#include "absl/strings/str_cat.h"
#include "common/tls_key_pair.h"
#include "grpcpp/security/auth_metadata_processor.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace g4 {
namespace {

constexpr char kCertFlag[] = "--internal-tls-cert";
constexpr char kKeyFlag[] = "--internal-tls-key";
constexpr char kCaFlag[] = "--internal-tls-ca";

struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};

// OpenSSL's words for why a chain does not verify.
std::string VerifyChain(const std::vector<X509Ptr>& chain, const std::vector<X509Ptr>& cas) {
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  for (const X509Ptr& ca : cas) X509_STORE_add_cert(store.get(), ca.get());
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  for (size_t i = 1; i < chain.size(); ++i) {
    X509_up_ref(chain[i].get());
    sk_X509_push(untrusted.get(), chain[i].get());
  }
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  if (X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get()) != 1) {
    return "cannot set up the verification";
  }
  if (X509_verify_cert(ctx.get()) == 1) return "";
  return X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
}

// Server side: the call's peer (already verified against the CA by the handshake) must carry
// `peer_name` among its subjectAltNames.
class PeerNameProcessor : public grpc::AuthMetadataProcessor {
 public:
  explicit PeerNameProcessor(std::string peer_name) : peer_name_(std::move(peer_name)) {}

  bool IsBlocking() const override { return false; }  // a lookup: no need for another thread

  grpc::Status Process(const InputMetadata& /*auth_metadata*/, grpc::AuthContext* context,
                       OutputMetadata* /*consumed*/, OutputMetadata* /*response*/) override {
    for (const grpc::string_ref& name :
         context->FindPropertyValues("x509_subject_alternative_name")) {
      if (name.size() == peer_name_.size() &&
          std::equal(name.begin(), name.end(), peer_name_.begin())) {
        return grpc::Status::OK;
      }
    }
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("internal plane: the peer's certificate does not name ",
                                     peer_name_, " (docs/security.md)"));
  }

 private:
  const std::string peer_name_;
};

}  // namespace

absl::Status CheckInternalTlsOptions(const InternalTlsOptions& o) {
  if (!o.enabled()) return absl::OkStatus();
  const std::pair<const char*, const std::string*> files[] = {
      {kCertFlag, &o.cert_file}, {kKeyFlag, &o.key_file}, {kCaFlag, &o.ca_file}};
  for (const auto& [flag, path] : files) {
    if (!path->empty()) continue;
    const char* given = !o.cert_file.empty() ? kCertFlag : !o.key_file.empty() ? kKeyFlag : kCaFlag;
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": needed with ", given, " (mutual TLS takes all three)"));
  }
  if (o.peer_name.empty()) return absl::InvalidArgumentError("internal TLS: empty peer name");
  if (o.refresh_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--internal-tls-refresh-interval: at least 1s");
  }
  absl::StatusOr<TlsKeyPair> pair =
      ReadTlsKeyPair({kCertFlag, o.cert_file, kKeyFlag, o.key_file});
  if (!pair.ok()) return pair.status();
  absl::StatusOr<std::string> ca_pem = ReadTlsFile(kCaFlag, o.ca_file);
  if (!ca_pem.ok()) return ca_pem.status();
  const std::vector<X509Ptr> cas = ReadPemCertificates(*ca_pem);
  if (cas.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kCaFlag, " ", o.ca_file, ": no PEM certificate"));
  }
  if (const std::string why = VerifyChain(pair->chain, cas); !why.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(kCertFlag, " ", o.cert_file,
                                                   ": does not verify against ", kCaFlag, " ",
                                                   o.ca_file, ": ", why));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> PublicTlsServerCredentials(
    const std::string& cert_file, const std::string& key_file, absl::Duration refresh_interval) {
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError(cert_file.empty() ? "--tls-cert: needed with --tls-key"
                                                        : "--tls-key: needed with --tls-cert");
  }
  if (refresh_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--tls-refresh-interval: at least 1s");
  }
  absl::StatusOr<TlsKeyPair> pair =
      ReadTlsKeyPair({kPublicTlsCertFlag, cert_file, kPublicTlsKeyFlag, key_file});
  if (!pair.ok()) return pair.status();
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      key_file, cert_file, static_cast<unsigned int>(absl::ToInt64Seconds(refresh_interval)));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  return grpc::experimental::TlsServerCredentials(options);
}

absl::StatusOr<std::unique_ptr<InternalTls>> InternalTls::Create(InternalTlsOptions options) {
  if (absl::Status s = CheckInternalTlsOptions(options); !s.ok()) return s;
  std::unique_ptr<InternalTls> tls(new InternalTls(std::move(options)));
  const InternalTlsOptions& o = tls->options_;
  if (!o.enabled()) {
    tls->server_credentials_ = grpc::InsecureServerCredentials();
    tls->channel_credentials_ = grpc::InsecureChannelCredentials();
    return tls;
  }
  // One watcher per process: it re-reads the three files every refresh_interval.
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      o.key_file, o.cert_file, o.ca_file,
      static_cast<unsigned int>(absl::ToInt64Seconds(o.refresh_interval)));

  grpc::experimental::TlsServerCredentialsOptions server(provider);
  server.watch_root_certs();
  server.watch_identity_key_cert_pairs();
  server.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  tls->server_credentials_ = grpc::experimental::TlsServerCredentials(server);
  tls->server_credentials_->SetAuthMetadataProcessor(
      std::make_shared<PeerNameProcessor>(o.peer_name));

  grpc::experimental::TlsChannelCredentialsOptions channel;
  channel.set_certificate_provider(provider);
  channel.watch_root_certs();
  channel.watch_identity_key_cert_pairs();
  // The default verifier checks the server's certificate against the channel's target name,
  // which Dial sets to peer_name.
  tls->channel_credentials_ = grpc::experimental::TlsCredentials(channel);
  return tls;
}

std::shared_ptr<grpc::ServerCredentials> InternalTls::ServerCredentials() const {
  return server_credentials_;
}

std::shared_ptr<grpc::Channel> InternalTls::Dial(const std::string& target,
                                                 grpc::ChannelArguments args) const {
  if (enabled()) args.SetSslTargetNameOverride(options_.peer_name);
  return grpc::CreateCustomChannel(target, channel_credentials_, args);
}

}  // namespace g4
