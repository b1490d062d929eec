#include "auth/token.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <string>

#include "auth/base64.h"
#include "metadata/local_store.h"

namespace cellar::auth {
namespace {

constexpr int64_t kNow = 1'800'000'000;

Claims SampleClaims() {
  Claims c;
  c.tenant = "acme";
  c.token_id = "tok-1";
  c.issued_at = kNow;
  c.expires_at = kNow + 3600;
  c.kind = TokenKind::kDisposable;
  CacheGrant g;
  g.role = CacheRole::kReadOnly;
  g.cache = "sessions";
  g.key_prefix = std::string("user:\0x", 7);
  c.perms.caches.push_back(g);
  return c;
}

std::string Segment(const std::string& token, int i) {
  size_t a = 0;
  for (int k = 0; k < i; ++k) a = token.find('.', a) + 1;
  size_t b = token.find('.', a);
  return token.substr(a, b == std::string::npos ? std::string::npos : b - a);
}

TEST(Token, RoundTripCarriesEveryClaim) {
  SigningKeyStore keys;
  auto token = Mint(keys, SampleClaims());
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  auto c = Verify(keys, *token, kNow);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->tenant, "acme");
  EXPECT_EQ(c->token_id, "tok-1");
  EXPECT_EQ(c->kind, TokenKind::kDisposable);
  EXPECT_EQ(c->expires_at, kNow + 3600);
  EXPECT_EQ(c->key_id, keys.Current()->id);
  ASSERT_EQ(c->perms.caches.size(), 1u);
  EXPECT_EQ(c->perms.caches[0].key_prefix, std::string("user:\0x", 7));
  EXPECT_EQ(c->perms.caches[0].role, CacheRole::kReadOnly);
}

TEST(Token, NotAfterRoundTripsAndIsAbsentWhenZero) {
  SigningKeyStore keys;
  Claims claims = SampleClaims();
  claims.not_after = kNow + 60;
  auto token = Mint(keys, claims);
  ASSERT_TRUE(token.ok());
  auto c = Verify(keys, *token, kNow);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->not_after, kNow + 60);
  claims.not_after = 0;
  token = Mint(keys, claims);
  EXPECT_EQ(Base64UrlDecode(Segment(*token, 1))->find("\"nax\""), std::string::npos);
  EXPECT_EQ(Verify(keys, *token, kNow)->not_after, 0);
  EXPECT_EQ(EarliestEnd(0, 5), 5);
  EXPECT_EQ(EarliestEnd(7, 0), 7);
  EXPECT_EQ(EarliestEnd(7, 5), 5);
  EXPECT_EQ(EarliestEnd(0, 0), 0);
}

TEST(Token, NeverExpiringTokenHasNoExp) {
  SigningKeyStore keys;
  Claims claims = SampleClaims();
  claims.expires_at = 0;
  auto token = Mint(keys, claims);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(Base64UrlDecode(Segment(*token, 1))->find("\"exp\""), std::string::npos);
  EXPECT_TRUE(Verify(keys, *token, kNow + 100LL * 365 * 86400).ok());
}

TEST(Token, ExpiredIsRefused) {
  SigningKeyStore keys;
  auto token = Mint(keys, SampleClaims());
  ASSERT_TRUE(token.ok());
  auto c = Verify(keys, *token, kNow + 3600);
  EXPECT_EQ(c.status().code(), Code::kUnauthenticated);
  EXPECT_EQ(c.status().message(), "token expired");
}

TEST(Token, ForgedPayloadIsRefused) {
  SigningKeyStore keys;
  auto token = Mint(keys, SampleClaims());
  ASSERT_TRUE(token.ok());
  // Same header and signature, payload claiming super-user.
  std::string payload = *Base64UrlDecode(Segment(*token, 1));
  const size_t p = payload.find("\"p\":");
  ASSERT_NE(p, std::string::npos);
  payload = payload.substr(0, p) + "\"p\":{\"su\":true}}";
  const std::string forged =
      Segment(*token, 0) + "." + Base64UrlEncode(payload) + "." + Segment(*token, 2);
  auto c = Verify(keys, forged, kNow);
  EXPECT_EQ(c.status().code(), Code::kUnauthenticated);
  EXPECT_EQ(c.status().message(), "invalid token signature");
}

TEST(Token, TruncatedIsRefused) {
  SigningKeyStore keys;
  auto token = Mint(keys, SampleClaims());
  ASSERT_TRUE(token.ok());
  for (size_t cut : {size_t{0}, size_t{5}, token->find('.'), token->rfind('.'),
                     token->rfind('.') + 1, token->size() - 1}) {
    auto c = Verify(keys, token->substr(0, cut), kNow);
    EXPECT_EQ(c.status().code(), Code::kUnauthenticated) << cut;
    // The message never contains the token.
    if (cut > 8) {
      EXPECT_EQ(c.status().message().find(token->substr(0, 8)), std::string::npos);
    }
  }
}

TEST(Token, ResignedWithAnotherKeyIsRefused) {
  SigningKeyStore keys;
  SigningKeyStore other;
  auto token = Mint(other, SampleClaims());
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(Verify(keys, *token, kNow).status().message(), "token signed by an unknown key");
  // Same key id, other secret: a signature made with a key we do not hold.
  std::string header = *Base64UrlDecode(Segment(*token, 0));
  const std::string their_kid = other.Current()->id, our_kid = keys.Current()->id;
  header.replace(header.find(their_kid), their_kid.size(), our_kid);
  const std::string resigned =
      Base64UrlEncode(header) + "." + Segment(*token, 1) + "." + Segment(*token, 2);
  EXPECT_EQ(Verify(keys, resigned, kNow).status().message(), "invalid token signature");
}

TEST(Token, AlgNoneAndOtherAlgorithmsAreRefused) {
  SigningKeyStore keys;
  auto token = Mint(keys, SampleClaims());
  ASSERT_TRUE(token.ok());
  const std::string kid = keys.Current()->id;
  for (const char* alg : {"none", "None", "HS512", "RS256", "hs256"}) {
    const std::string header =
        std::string("{\"alg\":\"") + alg + "\",\"kid\":\"" + kid + "\",\"typ\":\"JWT\"}";
    for (const std::string& sig : {std::string(), Segment(*token, 2)}) {
      const std::string t = Base64UrlEncode(header) + "." + Segment(*token, 1) + "." + sig;
      auto c = Verify(keys, t, kNow);
      EXPECT_EQ(c.status().code(), Code::kUnauthenticated) << alg;
      EXPECT_FALSE(c.ok()) << alg;
    }
  }
}

TEST(Token, RevokedKeyStopsItsTokensAtOnceAndRotationKeepsOthers) {
  SigningKeyStore keys;
  auto old_token = Mint(keys, SampleClaims());
  ASSERT_TRUE(old_token.ok());
  const std::string old_kid = keys.Current()->id;
  auto new_kid = keys.Rotate();
  ASSERT_TRUE(new_kid.ok());
  EXPECT_NE(*new_kid, old_kid);
  auto new_token = Mint(keys, SampleClaims());
  ASSERT_TRUE(new_token.ok());
  EXPECT_TRUE(Verify(keys, *old_token, kNow).ok());  // rotation alone keeps old tokens
  ASSERT_TRUE(keys.Revoke(old_kid).ok());
  EXPECT_EQ(Verify(keys, *old_token, kNow).status().message(), "token's signing key was revoked");
  EXPECT_TRUE(Verify(keys, *new_token, kNow).ok());
  EXPECT_EQ(keys.Revoke("k-unknown").code(), Code::kNotFound);
  ASSERT_TRUE(keys.Revoke(*new_kid).ok());
  EXPECT_EQ(Mint(keys, SampleClaims()).status().code(), Code::kFailedPrecondition);
}

TEST(Token, GarbageIsRefusedWithAClearMessage) {
  SigningKeyStore keys;
  for (const char* t : {"", "abc", "a.b", "a.b.c.d", "..", "!!!.###.$$$", "e30.e30.e30",
                        "eyJhbGciOiJIUzI1NiJ9.e30.AAAA"}) {
    auto c = Verify(keys, t, kNow);
    EXPECT_EQ(c.status().code(), Code::kUnauthenticated) << t;
    EXPECT_FALSE(c.status().message().empty());
  }
  EXPECT_EQ(Verify(keys, std::string(kMaxTokenBytes + 1, 'a'), kNow).status().message(),
            "malformed token: too long");
}

// A token over any header and payload text, signed with `keys`' current secret: what a holder
// of the secret could make, to test claims that Mint never writes.
std::string SignedWith(const SigningKeyStore& keys, const std::string& header,
                       const std::string& payload) {
  const std::string input = Base64UrlEncode(header) + "." + Base64UrlEncode(payload);
  const std::string& secret = keys.Current()->secret;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + Base64UrlEncode(std::string_view(reinterpret_cast<char*>(mac), len));
}

std::string HeaderOf(const SigningKeyStore& keys) {
  return "{\"alg\":\"HS256\",\"kid\":\"" + keys.Current()->id + "\",\"typ\":\"JWT\"}";
}

// A v2 key over SampleClaims().
StatusOr<std::string> MintV2(const SigningKeyStore& keys) {
  Claims claims = SampleClaims();
  claims.v2 = true;
  return Mint(keys, claims);
}

TEST(TokenV2, MintedWithTheGlobalKeyClaimAndVerified) {
  SigningKeyStore keys;
  Claims claims = SampleClaims();
  claims.kind = TokenKind::kApi;
  claims.v2 = true;
  auto token = Mint(keys, claims);
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  // What the SDK's isV2ApiKey reads: a three-part JWT (so not base64) whose payload has t = "g".
  EXPECT_EQ(std::count(token->begin(), token->end(), '.'), 2);
  EXPECT_EQ(token->find('='), std::string::npos);  // base64url without padding
  const std::string payload = *Base64UrlDecode(Segment(*token, 1));
  EXPECT_NE(payload.find("\"t\":\"g\""), std::string::npos) << payload;
  const std::string header = *Base64UrlDecode(Segment(*token, 0));
  EXPECT_NE(header.find("\"alg\":\"HS256\""), std::string::npos) << header;
  EXPECT_NE(header.find("\"kid\":\"" + keys.Current()->id + "\""), std::string::npos) << header;
  auto c = Verify(keys, *token, kNow);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->v2);
  EXPECT_EQ(c->tenant, "acme");
  EXPECT_EQ(c->kind, TokenKind::kApi);
  EXPECT_EQ(c->expires_at, kNow + 3600);
  ASSERT_EQ(c->perms.caches.size(), 1u);
  EXPECT_EQ(c->perms.caches[0].cache, "sessions");
}

TEST(TokenV2, PlainTokensHaveNoTypeClaimAndStillVerify) {
  SigningKeyStore keys;
  auto token = Mint(keys, SampleClaims());
  ASSERT_TRUE(token.ok());
  // (The permissions object has a "t" of its own: topic grants.)
  EXPECT_EQ(Base64UrlDecode(Segment(*token, 1))->find("\"t\":\""), std::string::npos);
  auto c = Verify(keys, *token, kNow);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->v2);
}

TEST(TokenV2, ExpiredBadSignatureUnknownKeyAndTamperingAreRefused) {
  SigningKeyStore keys;
  auto token = MintV2(keys);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(Verify(keys, *token, kNow + 3600).status().message(), "token expired");

  // A character inside the signature (the last one's low bits are padding that decodes to the
  // same bytes: changing only those changes nothing).
  std::string bad_sig = *token;
  char& sig_char = bad_sig[bad_sig.rfind('.') + 1];
  sig_char = sig_char == 'A' ? 'B' : 'A';
  EXPECT_EQ(Verify(keys, bad_sig, kNow).status().message(), "invalid token signature");

  // The signature's last character carries 2 unused bits: a look-alike that only sets them
  // decodes to the same bytes, and is refused all the same (one spelling per token).
  std::string look_alike = *token;
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const size_t last = kAlphabet.find(look_alike.back());
  ASSERT_NE(last, std::string_view::npos);
  look_alike.back() = kAlphabet[last ^ 1];
  EXPECT_FALSE(Verify(keys, look_alike, kNow).ok());

  SigningKeyStore other;
  auto foreign = MintV2(other);
  ASSERT_TRUE(foreign.ok());
  EXPECT_EQ(Verify(keys, *foreign, kNow).status().message(), "token signed by an unknown key");

  // Dropping "t":"g" from a v2 key, or adding it to a plain token, breaks the signature.
  std::string payload = *Base64UrlDecode(Segment(*token, 1));
  const size_t t = payload.find(",\"t\":\"g\"");
  ASSERT_NE(t, std::string::npos) << payload;
  payload.erase(t, 8);
  const std::string stripped =
      Segment(*token, 0) + "." + Base64UrlEncode(payload) + "." + Segment(*token, 2);
  EXPECT_EQ(Verify(keys, stripped, kNow).status().message(), "invalid token signature");
  auto plain = Mint(keys, SampleClaims());
  std::string plain_payload = *Base64UrlDecode(Segment(*plain, 1));
  plain_payload.insert(plain_payload.size() - 1, ",\"t\":\"g\"");
  const std::string promoted =
      Segment(*plain, 0) + "." + Base64UrlEncode(plain_payload) + "." + Segment(*plain, 2);
  EXPECT_EQ(Verify(keys, promoted, kNow).status().message(), "invalid token signature");

  // alg none with the v2 claim: refused before any claim is read.
  const std::string none = Base64UrlEncode("{\"alg\":\"none\",\"typ\":\"JWT\"}") + "." +
                           Segment(*token, 1) + ".AAAA";
  EXPECT_EQ(Verify(keys, none, kNow).status().message(),
            "token algorithm not accepted (only HS256)");
}

TEST(TokenV2, AnotherTypeClaimIsRefusedEvenWhenSigned) {
  SigningKeyStore keys;
  const std::string claims = "\"iat\":1,\"jti\":\"x\",\"k\":\"api\",\"p\":{\"su\":true},\"tn\":\"acme\"";
  for (const char* t : {"\"t\":\"x\"", "\"t\":\"G\"", "\"t\":\"\"", "\"t\":1", "\"t\":null"}) {
    auto c = Verify(keys, SignedWith(keys, HeaderOf(keys), "{" + claims + "," + t + "}"), kNow);
    EXPECT_EQ(c.status().code(), Code::kUnauthenticated) << t;
    EXPECT_EQ(c.status().message(), "malformed token: the \"t\" claim is not \"g\"") << t;
  }
  auto good = Verify(keys, SignedWith(keys, HeaderOf(keys), "{" + claims + ",\"t\":\"g\"}"), kNow);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_TRUE(good->v2);
  // The SDK's minimal v2 key ({"t":"g"} alone) is a v2 shape, but not a Cellar key.
  EXPECT_EQ(Verify(keys, SignedWith(keys, HeaderOf(keys), "{\"t\":\"g\"}"), kNow).status().message(),
            "malformed token: missing or mistyped claims");
}

TEST(TokenV2, NotAJwtIsRefused) {
  SigningKeyStore keys;
  auto token = MintV2(keys);
  ASSERT_TRUE(token.ok());
  // A v1 key (base64 JSON wrapping the JWT) is unwrapped by the SDK, never sent as is.
  const std::string v1 =
      Base64Encode("{\"endpoint\":\"cellar.test\",\"api_key\":\"" + *token + "\"}");
  EXPECT_EQ(Verify(keys, v1, kNow).status().message(),
            "malformed token: not three non-empty dot-separated parts");
  EXPECT_EQ(Verify(keys, Segment(*token, 1), kNow).status().code(), Code::kUnauthenticated);
}

TEST(SigningKeys, PersistedWithMode0600AndReloaded) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("cellar-keys-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string token, kid;
  {
    metadata::LocalStore store(dir.string());
    SigningKeyStore keys(store);
    kid = keys.Current()->id;
    auto t = Mint(keys, SampleClaims());
    ASSERT_TRUE(t.ok());
    token = *t;
    ASSERT_TRUE(keys.Rotate().ok());
    ASSERT_TRUE(keys.Revoke(kid).ok());
  }
  const auto perms = std::filesystem::status(dir / "metadata.tsv").permissions();
  EXPECT_EQ(perms & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  metadata::LocalStore store(dir.string());
  SigningKeyStore again(store);
  ASSERT_EQ(again.List().size(), 2u);
  EXPECT_TRUE(again.List()[0].revoked);
  EXPECT_TRUE(again.List()[0].secret.empty());  // List never hands out secrets
  EXPECT_EQ(Verify(again, token, kNow).status().message(), "token's signing key was revoked");
  std::filesystem::remove_all(dir);
}

TEST(SigningKeys, TheOldKeyFileIsImportedOnceAndItsTokensStillVerify) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("cellar-keys-old-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string token;
  {
    // A key file as the versions before the metadata store wrote it.
    SigningKeyStore keys;
    token = *Mint(keys, SampleClaims());
    const auto k = keys.Current();
    std::string hex;
    for (unsigned char c : k->secret) hex += fmt::format("{:02x}", c);
    std::ofstream(dir / "signing_keys.tsv")
        << "# id\tsecret (hex)\tcreated_ms\tstate\n"
        << k->id << "\t" << hex << "\t" << k->created_ms << "\tactive\n";
  }
  metadata::LocalStore store(dir.string());
  ImportLegacySigningKeys(store, dir.string());
  EXPECT_TRUE(std::filesystem::exists(dir / "signing_keys.tsv.imported"));
  EXPECT_FALSE(std::filesystem::exists(dir / "signing_keys.tsv"));
  SigningKeyStore keys(store);
  EXPECT_EQ(keys.List().size(), 1u);  // imported, no fresh key added
  EXPECT_TRUE(Verify(keys, token, kNow).ok());
  ASSERT_TRUE(keys.Rotate().ok());  // a rotation in the same millisecond is still the newest
  EXPECT_NE(keys.Current()->id, keys.List()[0].id);
  std::filesystem::remove_all(dir);
}

TEST(Base64, StrictDecoding) {
  EXPECT_EQ(Base64Decode("aGk="), "hi");
  EXPECT_EQ(Base64Decode(""), "");
  EXPECT_FALSE(Base64Decode("aGk"));
  EXPECT_FALSE(Base64Decode("a=Gk"));
  EXPECT_FALSE(Base64Decode("aGk*"));
  EXPECT_EQ(Base64UrlDecode("aGk"), "hi");
  EXPECT_FALSE(Base64UrlDecode("aGk="));
  EXPECT_FALSE(Base64UrlDecode("a"));
  for (int n = 0; n < 40; ++n) {
    std::string bytes;
    for (int i = 0; i < n; ++i) bytes.push_back(static_cast<char>(i * 37 + n));
    EXPECT_EQ(Base64Decode(Base64Encode(bytes)), bytes);
    EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(bytes)), bytes);
  }
}

}  // namespace
}  // namespace cellar::auth
