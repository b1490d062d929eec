#include "auth/token.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <memory>

#include "auth/base64.h"

namespace cellar::auth {

namespace {

struct JsonDeleter {
  void operator()(json_t* j) const { json_decref(j); }
};
using Json = std::unique_ptr<json_t, JsonDeleter>;

constexpr std::string_view kKinds[] = {"api", "disposable", "refresh"};
// The "t" claim of a Momento v2 API key ("global api key").
constexpr char kV2Type[] = "g";

std::string Dump(json_t* j) {
  char* text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  std::string out = text != nullptr ? text : "";
  free(text);
  return out;
}

std::string Sign(const SigningKey& key, std::string_view signing_input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.secret.data(), static_cast<int>(key.secret.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
       &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

Status Unauthenticated(std::string why) { return Status(Code::kUnauthenticated, std::move(why)); }

const char* String(json_t* obj, const char* field) {
  json_t* v = json_object_get(obj, field);
  return json_is_string(v) ? json_string_value(v) : nullptr;
}

}  // namespace

StatusOr<std::string> Mint(const SigningKeyStore& keys, Claims c) {
  auto key = keys.Current();
  if (key == nullptr) return Status(Code::kFailedPrecondition, "every signing key is revoked");
  Json header(json_object());
  json_object_set_new(header.get(), "alg", json_string("HS256"));
  json_object_set_new(header.get(), "kid", json_string(key->id.c_str()));
  json_object_set_new(header.get(), "typ", json_string("JWT"));
  Json payload(json_object());
  json_object_set_new(payload.get(), "tn", json_stringn(c.tenant.data(), c.tenant.size()));
  json_object_set_new(payload.get(), "jti", json_stringn(c.token_id.data(), c.token_id.size()));
  json_object_set_new(payload.get(), "k",
                      json_string(std::string(kKinds[static_cast<int>(c.kind)]).c_str()));
  json_object_set_new(payload.get(), "iat", json_integer(c.issued_at));
  // A nonce: two tokens minted with the same claims in the same second still differ.
  unsigned char nonce[9];
  if (RAND_bytes(nonce, sizeof(nonce)) != 1) return Status(Code::kInternal, "no randomness");
  json_object_set_new(
      payload.get(), "n",
      json_string(Base64UrlEncode(std::string_view(reinterpret_cast<char*>(nonce), sizeof(nonce)))
                      .c_str()));
  if (c.expires_at != 0) json_object_set_new(payload.get(), "exp", json_integer(c.expires_at));
  if (c.not_after != 0) json_object_set_new(payload.get(), "nax", json_integer(c.not_after));
  if (c.v2) json_object_set_new(payload.get(), "t", json_string(kV2Type));
  json_error_t err;
  const std::string perms = ToJson(c.perms);
  json_object_set_new(payload.get(), "p", json_loadb(perms.data(), perms.size(), 0, &err));
  if (json_object_get(payload.get(), "tn") == nullptr ||
      json_object_get(payload.get(), "jti") == nullptr) {
    return Status(Code::kInvalidArgument, "tenant and token id must be UTF-8 text");
  }
  const std::string input =
      Base64UrlEncode(Dump(header.get())) + "." + Base64UrlEncode(Dump(payload.get()));
  return input + "." + Base64UrlEncode(Sign(*key, input));
}

StatusOr<Claims> Verify(const SigningKeyStore& keys, std::string_view token, int64_t now_s) {
  if (token.empty()) return Unauthenticated("missing token");
  if (token.size() > kMaxTokenBytes) return Unauthenticated("malformed token: too long");
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos ||
      dot1 == 0 || dot2 == dot1 + 1 || dot2 + 1 == token.size()) {
    return Unauthenticated("malformed token: not three non-empty dot-separated parts");
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view sig_b64 = token.substr(dot2 + 1);

  auto header_text = Base64UrlDecode(header_b64);
  if (!header_text) return Unauthenticated("malformed token: header is not base64url");
  json_error_t err;
  Json header(json_loadb(header_text->data(), header_text->size(), JSON_REJECT_DUPLICATES, &err));
  if (!header || !json_is_object(header.get())) {
    return Unauthenticated("malformed token: header is not a JSON object");
  }
  const char* alg = String(header.get(), "alg");
  if (alg == nullptr || std::string_view(alg) != "HS256") {
    return Unauthenticated("token algorithm not accepted (only HS256)");
  }
  const char* kid = String(header.get(), "kid");
  if (kid == nullptr) return Unauthenticated("malformed token: no key id");
  auto key = keys.Find(kid);
  if (key == nullptr) return Unauthenticated("token signed by an unknown key");
  if (key->revoked) return Unauthenticated(std::string(kRevokedText));

  auto sig = Base64UrlDecode(sig_b64);
  const std::string expected = Sign(*key, token.substr(0, dot2));
  if (!sig || sig->size() != expected.size() ||
      CRYPTO_memcmp(sig->data(), expected.data(), expected.size()) != 0) {
    return Unauthenticated("invalid token signature");
  }

  auto payload_text = Base64UrlDecode(payload_b64);
  if (!payload_text) return Unauthenticated("malformed token: payload is not base64url");
  Json payload(json_loadb(payload_text->data(), payload_text->size(), JSON_REJECT_DUPLICATES, &err));
  if (!payload || !json_is_object(payload.get())) {
    return Unauthenticated("malformed token: payload is not a JSON object");
  }
  Claims c;
  c.key_id = kid;
  const char* tenant = String(payload.get(), "tn");
  const char* jti = String(payload.get(), "jti");
  const char* kind = String(payload.get(), "k");
  json_t* iat = json_object_get(payload.get(), "iat");
  json_t* exp = json_object_get(payload.get(), "exp");
  json_t* nax = json_object_get(payload.get(), "nax");
  json_t* perms = json_object_get(payload.get(), "p");
  json_t* type = json_object_get(payload.get(), "t");
  if (type != nullptr &&
      !(json_is_string(type) && std::string_view(json_string_value(type)) == kV2Type)) {
    return Unauthenticated("malformed token: the \"t\" claim is not \"g\"");
  }
  c.v2 = type != nullptr;
  if (tenant == nullptr || jti == nullptr || kind == nullptr || !json_is_integer(iat) ||
      (exp != nullptr && !json_is_integer(exp)) || (nax != nullptr && !json_is_integer(nax)) ||
      !json_is_object(perms)) {
    return Unauthenticated("malformed token: missing or mistyped claims");
  }
  c.tenant = tenant;
  c.token_id = jti;
  bool kind_ok = false;
  for (size_t i = 0; i < std::size(kKinds); ++i) {
    if (kKinds[i] == kind) {
      c.kind = static_cast<TokenKind>(i);
      kind_ok = true;
    }
  }
  if (!kind_ok) return Unauthenticated("malformed token: unknown kind");
  c.issued_at = json_integer_value(iat);
  c.expires_at = exp != nullptr ? json_integer_value(exp) : 0;
  if (exp != nullptr && c.expires_at <= 0) return Unauthenticated("malformed token: bad expiry");
  c.not_after = nax != nullptr ? json_integer_value(nax) : 0;
  if (nax != nullptr && c.not_after <= 0) return Unauthenticated("malformed token: bad limit");
  auto p = FromJson(Dump(perms));
  if (!p.ok()) return Unauthenticated("the token's permissions cannot be parsed");
  c.perms = std::move(*p);
  if (c.expires_at != 0 && now_s >= c.expires_at) return Unauthenticated(std::string(kExpiredText));
  return c;
}

}  // namespace cellar::auth
