// Base64 (RFC 4648) encodings for tokens: standard with padding (bytes inside JSON claims) and
// URL-safe without padding (JWS segments). Decoding is strict: any other byte, bad padding, or
// a non-canonical last character (unused bits not zero) is an error.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cellar::auth {

std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);
std::string Base64UrlEncode(std::string_view bytes);
std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace cellar::auth
