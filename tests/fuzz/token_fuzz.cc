// libFuzzer target for token verification on untrusted bytes (what AUTH and the
// `authorization` header hand to auth::Verify). A fixed in-memory key store; the input is the
// token. Checked:
//   * Verify never crashes, and refuses with UNAUTHENTICATED and one of its fixed messages
//     (so nothing of the token is ever echoed);
//   * anything accepted carries valid permissions and re-mints to a token that verifies to
//     the same claims (no half-parsed acceptance).
//   * in the second mode, the permissions parser (what a verified payload's "p" claim goes
//     through) never crashes, and whatever it accepts round-trips through ToJson.
// Byte 0: bit 0 picks the mode (token / permissions JSON), bit 7 picks "now" (before or after
// typical expiries); the rest is the token or the JSON.
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/token.h"
#include "fuzz_check.h"

namespace {

cellar::auth::SigningKeyStore& Keys() {
  static cellar::auth::SigningKeyStore keys;
  return keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cellar;
  if (size < 1) return 0;
  const int64_t now = data[0] < 128 ? 1'700'000'000 : 1'900'000'000;
  std::string_view token(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    auto perms = auth::FromJson(token);
    if (perms.ok()) {
      FUZZ_CHECK(auth::Validate(*perms).ok());
      auto again = auth::FromJson(auth::ToJson(*perms));
      FUZZ_CHECK(again.ok() && auth::ToJson(*again) == auth::ToJson(*perms));
    }
    return 0;
  }
  auto claims = auth::Verify(Keys(), token, now);
  if (!claims.ok()) {
    FUZZ_CHECK(claims.status().code() == Code::kUnauthenticated);
    // Every refusal is one of these fixed texts: nothing of the input is ever echoed.
    static const std::string_view kMessages[] = {
        "missing token",
        "malformed token: too long",
        "malformed token: not three non-empty dot-separated parts",
        "malformed token: header is not base64url",
        "malformed token: header is not a JSON object",
        "token algorithm not accepted (only HS256)",
        "malformed token: no key id",
        "token signed by an unknown key",
        "token's signing key was revoked",
        "invalid token signature",
        "malformed token: payload is not base64url",
        "malformed token: payload is not a JSON object",
        "malformed token: missing or mistyped claims",
        "malformed token: unknown kind",
        "malformed token: bad expiry",
        "malformed token: bad limit",
        "malformed token: the \"t\" claim is not \"g\"",
        "the token's permissions cannot be parsed",
        "token expired",
    };
    bool known = false;
    for (std::string_view m : kMessages) known = known || claims.status().message() == m;
    FUZZ_CHECK(known);
    return 0;
  }
  FUZZ_CHECK(auth::Validate(claims->perms).ok());
  auto again = auth::Mint(Keys(), *claims);
  FUZZ_CHECK(again.ok());
  auto back = auth::Verify(Keys(), *again, now);
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(back->tenant == claims->tenant && back->token_id == claims->token_id &&
             back->v2 == claims->v2);
  FUZZ_CHECK(auth::ToJson(back->perms) == auth::ToJson(claims->perms));
  return 0;
}
