#include "frontend/net/tls.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

namespace cellar::net {
namespace {

using Names = std::vector<std::string>;

TEST(EndpointHostNames, ThePrefixesMomentoClientsDerive) {
  const Names want = {"cache.cellar.example", "control.cellar.example", "token.cellar.example",
                      "api.cache.cellar.example", "web.cache.cellar.example"};
  EXPECT_EQ(EndpointHostNames("cellar.example"), want);
  EXPECT_EQ(EndpointHostNames("cellar.example:8443"), want);  // the port is not a name
  EXPECT_EQ(EndpointHostNames(""), Names{});
  EXPECT_EQ(EndpointHostNames("127.0.0.1:8080"), Names{});  // an IP cannot be prefixed
  EXPECT_EQ(EndpointHostNames("[::1]:8080"), Names{});
  EXPECT_EQ(EndpointHostNames("::1"), Names{});
  EXPECT_EQ(EndpointHostNames(":8080"), Names{});
}

bool CertNames(const std::string& cert_file, const std::string& name) {
  FILE* f = std::fopen(cert_file.c_str(), "r");
  if (f == nullptr) return false;
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (cert == nullptr) return false;
  const bool ok = X509_check_host(cert, name.data(), name.size(), 0, nullptr) == 1;
  X509_free(cert);
  return ok;
}

TEST(SelfSigned, CoversTheEndpointNamesAndIsRemadeWhenItLacksThem) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("cellar-tls-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const std::string cert = (dir / "tls" / "cert.pem").string();
  const std::string key = (dir / "tls" / "key.pem").string();

  ASSERT_TRUE(EnsureSelfSignedCertificate(cert, key, "127.0.0.1"));
  EXPECT_TRUE(CertNames(cert, "localhost"));
  EXPECT_FALSE(CertNames(cert, "cache.cellar.example"));
  EXPECT_FALSE(EnsureSelfSignedCertificate(cert, key, "127.0.0.1"));  // kept as is

  const auto names = EndpointHostNames("cellar.example:8443");
  ASSERT_TRUE(EnsureSelfSignedCertificate(cert, key, "127.0.0.1", names));  // lacked them
  for (const auto& n : names) EXPECT_TRUE(CertNames(cert, n)) << n;
  EXPECT_TRUE(CertNames(cert, "localhost"));
  EXPECT_FALSE(CertNames(cert, "other.cellar.example"));
  EXPECT_FALSE(CertNames(cert, "cellar.example"));
  EXPECT_FALSE(EnsureSelfSignedCertificate(cert, key, "127.0.0.1", names));  // now kept
  // Another domain: made again.
  EXPECT_TRUE(EnsureSelfSignedCertificate(cert, key, "127.0.0.1", EndpointHostNames("b.test")));
  EXPECT_TRUE(CertNames(cert, "token.b.test"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cellar::net
