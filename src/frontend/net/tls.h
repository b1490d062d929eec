// Server-side TLS settings shared by the front-ends: TLS 1.2+, a PEM certificate chain and key,
// and ALPN that picks h2 when the client offers it.
#pragma once

#include <absl/base/thread_annotations.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ssl/context.hpp>

namespace cellar::net {

// Throws std::runtime_error naming the file on a bad certificate or key (start-up only).
// alpn_h2: ALPN picks h2 (the API port); otherwise http/1.1 (the admin port).
std::unique_ptr<boost::asio::ssl::context> MakeServerTlsContext(const std::string& cert_file,
                                                                const std::string& key_file,
                                                                bool alpn_h2 = true);

// A client context for connections this process makes (a fleet's internal connections):
// TLS 1.2+; with ca_file, peers must present a certificate it signed for the name dialled;
// without, peers are not verified (the caller authenticates them otherwise). Throws
// std::runtime_error naming the file on a bad CA file.
std::shared_ptr<boost::asio::ssl::context> MakeClientTlsContext(const std::string& ca_file);

// The first byte of a TLS ClientHello record (content type "handshake").
inline constexpr unsigned char kTlsHandshakeByte = 0x16;

// The server's TLS settings, reloadable: a connection takes the current context when its
// handshake starts and keeps it (shared) for its life, so Reload (SIGHUP) never drops a
// connection. Thread-safe.
class TlsConfig {
 public:
  // Loads the files now; throws like MakeServerTlsContext. required: plaintext connections
  // on TLS-capable ports are refused (listening beyond loopback).
  TlsConfig(std::string cert_file, std::string key_file, bool required, bool alpn_h2 = true);
  std::shared_ptr<boost::asio::ssl::context> Current() const;
  // Re-reads the files; on failure keeps the old context and returns the error.
  std::string Reload();
  bool required() const { return required_; }

 private:
  const std::string cert_file_, key_file_;
  const bool required_;
  const bool alpn_h2_;
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_ ABSL_GUARDED_BY(mu_);
};

// The DNS names Momento clients reach for a public endpoint "DOMAIN[:PORT]": cache.DOMAIN,
// control.DOMAIN, token.DOMAIN (what the SDKs derive from a v2 key's endpoint),
// api.cache.DOMAIN (Momento's HTTP API) and web.cache.DOMAIN (@gomomento/sdk-web's
// grpc-web). None for an empty endpoint or an IP address.
std::vector<std::string> EndpointHostNames(std::string_view public_endpoint);

// Writes a self-signed development certificate (EC P-256, valid 1 year, SAN localhost,
// 127.0.0.1, `host` and every one of `dns_names`) to cert_file/key_file (key mode 0600) unless
// both exist and the certificate covers every one of `dns_names`. Returns whether it wrote
// them. Throws std::runtime_error on failure.
bool EnsureSelfSignedCertificate(const std::string& cert_file, const std::string& key_file,
                                 const std::string& host,
                                 const std::vector<std::string>& dns_names = {});

}  // namespace cellar::net
