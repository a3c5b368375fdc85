#include "proto/internal_tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <grpc/grpc_security_constants.h>

#include "absl/strings/str_cat.h"
#include "grpcpp/security/auth_metadata_processor.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace g4 {
namespace {

constexpr char kCertFlag[] = "--internal-tls-cert";
constexpr char kKeyFlag[] = "--internal-tls-key";
constexpr char kCaFlag[] = "--internal-tls-ca";

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

absl::StatusOr<std::string> ReadFile(const char* flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": cannot be read"));
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": empty"));
  }
  return text.str();
}

// Every certificate of a PEM text, in order.
std::vector<X509Ptr> ReadCertificates(const std::string& pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::vector<X509Ptr> certs;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(x);
  ERR_clear_error();  // the end of the text reads as an error
  return certs;
}

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

// The certificate chain of `cert_pem` when it holds one whose first certificate `key_pem`'s key
// matches; INVALID_ARGUMENT naming the flags otherwise.
absl::StatusOr<std::vector<X509Ptr>> CheckPair(const char* cert_flag, const std::string& cert_file,
                                               const std::string& cert_pem, const char* key_flag,
                                               const std::string& key_file,
                                               const std::string& key_pem) {
  std::vector<X509Ptr> chain = ReadCertificates(cert_pem);
  if (chain.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(cert_flag, " ", cert_file, ": no PEM certificate"));
  }
  std::unique_ptr<BIO, BioFree> key_bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(key_flag, " ", key_file, ": no PEM private key (or it is encrypted)"));
  }
  if (X509_check_private_key(chain[0].get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(key_flag, " ", key_file, ": not the key of ", cert_flag, " ", cert_file));
  }
  return chain;
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
  absl::StatusOr<std::string> cert_pem = ReadFile(kCertFlag, o.cert_file);
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = ReadFile(kKeyFlag, o.key_file);
  if (!key_pem.ok()) return key_pem.status();
  absl::StatusOr<std::string> ca_pem = ReadFile(kCaFlag, o.ca_file);
  if (!ca_pem.ok()) return ca_pem.status();

  absl::StatusOr<std::vector<X509Ptr>> chain =
      CheckPair(kCertFlag, o.cert_file, *cert_pem, kKeyFlag, o.key_file, *key_pem);
  if (!chain.ok()) return chain.status();
  const std::vector<X509Ptr> cas = ReadCertificates(*ca_pem);
  if (cas.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kCaFlag, " ", o.ca_file, ": no PEM certificate"));
  }
  if (const std::string why = VerifyChain(*chain, cas); !why.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(kCertFlag, " ", o.cert_file,
                                                   ": does not verify against ", kCaFlag, " ",
                                                   o.ca_file, ": ", why));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> PublicTlsServerCredentials(
    const std::string& cert_file, const std::string& key_file, absl::Duration refresh_interval) {
  constexpr char kPublicCertFlag[] = "--tls-cert";
  constexpr char kPublicKeyFlag[] = "--tls-key";
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError(cert_file.empty() ? "--tls-cert: needed with --tls-key"
                                                        : "--tls-key: needed with --tls-cert");
  }
  if (refresh_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--tls-refresh-interval: at least 1s");
  }
  absl::StatusOr<std::string> cert_pem = ReadFile(kPublicCertFlag, cert_file);
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = ReadFile(kPublicKeyFlag, key_file);
  if (!key_pem.ok()) return key_pem.status();
  absl::StatusOr<std::vector<X509Ptr>> chain =
      CheckPair(kPublicCertFlag, cert_file, *cert_pem, kPublicKeyFlag, key_file, *key_pem);
  if (!chain.ok()) return chain.status();
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
