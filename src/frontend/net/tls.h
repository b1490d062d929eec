// Server-side TLS settings shared by the front-ends: TLS 1.2+, a PEM certificate chain and key,
// and ALPN that picks h2 when the client offers it.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

namespace cellar::net {

// Throws std::runtime_error naming the file on a bad certificate or key (start-up only).
std::unique_ptr<boost::asio::ssl::context> MakeServerTlsContext(const std::string& cert_file,
                                                                const std::string& key_file);

// The first byte of a TLS ClientHello record (content type "handshake").
inline constexpr unsigned char kTlsHandshakeByte = 0x16;

}  // namespace cellar::net
