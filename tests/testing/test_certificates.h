// Certificates for the internal plane's mutual TLS, made at test time by
// tests/testing/make_test_certificates.sh (openssl; tests run from the repository root).
#ifndef G4SERVE_TESTS_TESTING_TEST_CERTIFICATES_H_
#define G4SERVE_TESTS_TESTING_TEST_CERTIFICATES_H_

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace g4::testing {

inline ::testing::AssertionResult RunCertificateScript(const std::string& args) {
  const std::string cmd = "bash tests/testing/make_test_certificates.sh " + args;
  if (std::system(cmd.c_str()) != 0) return ::testing::AssertionFailure() << "failed: " << cmd;
  return ::testing::AssertionSuccess();
}

// DIR/ca, DIR/rogue-ca (CAs), DIR/coordinator (of ca, g4serve-coordinator), DIR/worker (of ca,
// g4serve-worker), DIR/rogue-worker (of rogue-ca, g4serve-worker); each NAME.crt + NAME.key.
inline ::testing::AssertionResult MakeTestCertificates(const std::string& dir) {
  return RunCertificateScript("'" + dir + "'");
}

// Another CA, DIR/NAME.{crt,key}.
inline ::testing::AssertionResult MakeTestCa(const std::string& dir, const std::string& name) {
  return RunCertificateScript("'" + dir + "' ca " + name);
}

// A leaf of DIR/CA naming `dns`, DIR/NAME.{crt,key}.
inline ::testing::AssertionResult IssueTestCertificate(const std::string& dir,
                                                       const std::string& name,
                                                       const std::string& ca,
                                                       const std::string& dns) {
  return RunCertificateScript("'" + dir + "' issue " + name + " " + ca + " " + dns);
}

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_TESTING_TEST_CERTIFICATES_H_
