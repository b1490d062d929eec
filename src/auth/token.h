// Tokens: compact JWS (RFC 7515) with HMAC-SHA256 (OpenSSL) over a JSON payload. Header
// {"alg":"HS256","kid":...,"typ":"JWT"}; payload {"tn": tenant, "jti": token id, "k": kind,
// "iat": issued (Unix s), "exp": expiry (Unix s, absent = never), "p": permissions,
// "nax": the latest its refreshes and children may expire (absent = no limit), "n": a random
// nonce, "t": "g" on a Momento v2 API key (absent otherwise)}.
// A v2 API key is such a token whose payload also carries "t":"g": that claim is all the Momento
// SDKs look at (CredentialProvider.fromApiKeyV2 accepts a JWT only if it has it; fromString
// refuses one that has). Cellar verifies both shapes alike.
// Verification accepts exactly HS256, a known and unrevoked key id, a valid signature (compared
// in constant time), a well-formed payload, and an unexpired token. Errors never echo the token.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "auth/permissions.h"
#include "auth/signing_keys.h"
#include "common/status.h"

namespace cellar::auth {

enum class TokenKind : uint8_t { kApi, kDisposable, kRefresh };

struct Claims {
  std::string tenant;
  Permissions perms;
  TokenKind kind = TokenKind::kApi;
  std::string token_id;     // Momento's token_id (disposable tokens: echoed as publisher id)
  int64_t issued_at = 0;    // Unix seconds
  int64_t expires_at = 0;   // Unix seconds; 0: never
  // Unix seconds; 0: none. The latest that this token's refreshes, and the tokens it mints, may
  // expire: its minter's own end. A token minted by a token never outlives its parent, nor
  // does a chain of refreshes.
  int64_t not_after = 0;
  std::string key_id;       // filled by Mint and Verify
  // Momento's v2 API key shape: the payload carries "t":"g". Minted for API keys that SDKs use
  // directly (fromApiKeyV2); not for refresh or disposable tokens.
  bool v2 = false;
};

// The earliest non-zero of two Unix-second ends (0: neither ends).
constexpr int64_t EarliestEnd(int64_t a, int64_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return a < b ? a : b;
}

// The longest token accepted (a bound on what a stranger makes us parse).
inline constexpr size_t kMaxTokenBytes = 16 * 1024;

// Signs with the store's current key. FAILED_PRECONDITION if every key is revoked.
StatusOr<std::string> Mint(const SigningKeyStore& keys, Claims claims);

// The texts of the two refusals a caller may want to tell apart from "not a valid token".
inline constexpr std::string_view kExpiredText = "token expired";
inline constexpr std::string_view kRevokedText = "token's signing key was revoked";

// UNAUTHENTICATED (malformed, bad signature, unknown or revoked key, expired) with a message
// saying which; never the token itself.
StatusOr<Claims> Verify(const SigningKeyStore& keys, std::string_view token, int64_t now_s);

}  // namespace cellar::auth
