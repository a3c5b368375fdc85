#include "common/tls_key_pair.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace g4 {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::unique_ptr<BIO, BioFree> MemoryBio(const std::string& text) {
  return std::unique_ptr<BIO, BioFree>(
      BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

}  // namespace

absl::StatusOr<std::string> ReadTlsFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": cannot be read"));
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": empty"));
  }
  return text.str();
}

std::vector<X509Ptr> ReadPemCertificates(const std::string& pem) {
  std::unique_ptr<BIO, BioFree> bio = MemoryBio(pem);
  std::vector<X509Ptr> certs;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(x);
  ERR_clear_error();  // the end of the text reads as an error
  return certs;
}

absl::StatusOr<TlsKeyPair> ReadTlsKeyPair(const TlsKeyPairFiles& f) {
  TlsKeyPair pair;
  absl::StatusOr<std::string> cert_pem = ReadTlsFile(f.cert_flag, f.cert_file);
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = ReadTlsFile(f.key_flag, f.key_file);
  if (!key_pem.ok()) return key_pem.status();
  pair.cert_pem = *std::move(cert_pem);
  pair.key_pem = *std::move(key_pem);
  pair.chain = ReadPemCertificates(pair.cert_pem);
  if (pair.chain.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.cert_flag, " ", f.cert_file, ": no PEM certificate"));
  }
  std::unique_ptr<BIO, BioFree> key_bio = MemoryBio(pair.key_pem);
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.key_flag, " ", f.key_file, ": no PEM private key (or it is encrypted)"));
  }
  if (X509_check_private_key(pair.chain[0].get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(f.key_flag, " ", f.key_file, ": not the key of ",
                                                   f.cert_flag, " ", f.cert_file));
  }
  return pair;
}

}  // namespace g4
