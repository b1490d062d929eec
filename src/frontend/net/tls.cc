#include "frontend/net/tls.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include <stdexcept>

#include <boost/asio/ip/address.hpp>

namespace cellar::net {

namespace ssl = boost::asio::ssl;

namespace {

// ALPN: h2 if offered; otherwise no protocol is agreed (the connection is then told apart by
// what the client sends, as on the plaintext port).
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void* arg) {
  static constexpr unsigned char kH2[] = {2, 'h', '2'};
  static constexpr unsigned char kHttp1[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  const bool h2 = arg != nullptr;
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, h2 ? kH2 : kHttp1,
                            h2 ? sizeof(kH2) : sizeof(kHttp1), in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

std::unique_ptr<ssl::context> MakeServerTlsContext(const std::string& cert_file,
                                                   const std::string& key_file, bool alpn_h2) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) throw std::runtime_error("--tls-cert " + cert_file + ": " + ec.message());
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) throw std::runtime_error("--tls-key " + key_file + ": " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    throw std::runtime_error("--tls-key " + key_file + " does not match --tls-cert " + cert_file);
  }
  static int h2_marker;
  SSL_CTX_set_alpn_select_cb(ctx->native_handle(), SelectAlpn, alpn_h2 ? &h2_marker : nullptr);
  return ctx;
}

std::shared_ptr<ssl::context> MakeClientTlsContext(const std::string& ca_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (ca_file.empty()) {
    ctx->set_verify_mode(ssl::verify_none);
    return ctx;
  }
  boost::system::error_code ec;
  ctx->load_verify_file(ca_file, ec);
  if (ec) throw std::runtime_error("--cluster-tls-ca " + ca_file + ": " + ec.message());
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

TlsConfig::TlsConfig(std::string cert_file, std::string key_file, bool required, bool alpn_h2)
    : cert_file_(std::move(cert_file)),
      key_file_(std::move(key_file)),
      required_(required),
      alpn_h2_(alpn_h2) {
  current_ = MakeServerTlsContext(cert_file_, key_file_, alpn_h2_);
}

std::shared_ptr<ssl::context> TlsConfig::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

std::string TlsConfig::Reload() {
  try {
    std::shared_ptr<ssl::context> fresh = MakeServerTlsContext(cert_file_, key_file_, alpn_h2_);
    std::lock_guard lock(mu_);
    current_ = std::move(fresh);
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::vector<std::string> EndpointHostNames(std::string_view public_endpoint) {
  std::string_view host = public_endpoint;
  if (host.empty() || host.front() == '[') return {};  // empty, or a bracketed IPv6 address
  if (const size_t colon = host.find(':'); colon != std::string_view::npos) {
    if (host.find(':', colon + 1) != std::string_view::npos) return {};  // bare IPv6
    host = host.substr(0, colon);
  }
  boost::system::error_code ec;
  boost::asio::ip::make_address(std::string(host), ec);
  if (host.empty() || !ec) return {};  // an IP address: clients cannot prefix it
  std::vector<std::string> names;
  for (const char* prefix : {"cache.", "control.", "token.", "api.cache.", "web.cache."}) {
    names.push_back(prefix + std::string(host));
  }
  return names;
}

namespace {

// Whether the certificate in `cert_file` is readable and names every one of `dns_names`.
bool CoversNames(const std::string& cert_file, const std::vector<std::string>& dns_names) {
  FILE* f = std::fopen(cert_file.c_str(), "r");
  if (f == nullptr) return false;
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_X509(f, nullptr, nullptr, nullptr),
                                                   X509_free);
  std::fclose(f);
  if (!cert) return false;
  for (const std::string& name : dns_names) {
    if (X509_check_host(cert.get(), name.data(), name.size(), X509_CHECK_FLAG_NO_WILDCARDS,
                        nullptr) != 1) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool EnsureSelfSignedCertificate(const std::string& cert_file, const std::string& key_file,
                                 const std::string& host,
                                 const std::vector<std::string>& dns_names) {
  if (std::filesystem::exists(cert_file) && std::filesystem::exists(key_file) &&
      CoversNames(cert_file, dns_names)) {
    return false;
  }
  auto fail = [](const char* what) { return std::runtime_error(std::string("self-signed certificate: ") + what); };
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!pkey) throw fail("cannot generate a key");
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_pubkey(cert.get(), pkey.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("cellar development"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::string san = "DNS:localhost,IP:127.0.0.1,IP:::1";
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(host, ec);
  if (!ec && !addr.is_loopback() && !addr.is_unspecified()) san += ",IP:" + host;
  for (const std::string& name : dns_names) san += ",DNS:" + name;
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : {std::pair<int, std::string>{NID_subject_alt_name, san},
                                   {NID_basic_constraints, "critical,CA:TRUE"},
                                   {NID_key_usage, "critical,digitalSignature,keyCertSign"},
                                   {NID_ext_key_usage, "serverAuth"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    if (ext == nullptr) throw fail("cannot add an extension");
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), pkey.get(), EVP_sha256()) == 0) throw fail("cannot sign");
  std::filesystem::create_directories(std::filesystem::path(cert_file).parent_path());
  const int fd = ::open(key_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FILE* kf = fd >= 0 ? ::fdopen(fd, "w") : nullptr;
  if (kf == nullptr || PEM_write_PrivateKey(kf, pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    if (kf) std::fclose(kf);
    throw fail("cannot write the key file");
  }
  std::fclose(kf);
  FILE* cf = std::fopen(cert_file.c_str(), "w");
  if (cf == nullptr || PEM_write_X509(cf, cert.get()) != 1) {
    if (cf) std::fclose(cf);
    throw fail("cannot write the certificate file");
  }
  std::fclose(cf);
  return true;
}

}  // namespace cellar::net
