// Momento's token services: auth.Auth/GenerateApiToken, auth.Auth/RefreshApiToken and
// token.Token/GenerateDisposableToken (PROTOCOL.md §1.3, §3.3). The caller's credential is the
// request's `auth_token` (or, for a refresh, the old key and its refresh token).
//
// Who may mint what:
//   - super-user keys: only the bootstrap admin key (Momento: only a session token);
//   - API keys with explicit permissions: a super-user (admin key or super-user token);
//   - disposable tokens: a super-user, or a token minting no more than it holds;
//   - a disposable token mints nothing: it is for data calls only (Momento's tokens reach the
//     data plane only);
//   - anything else: PERMISSION_DENIED. Empty or conflicting permission lists: INVALID_ARGUMENT.
// Minted tokens belong to the caller's tenant, and never outlive the caller: a child's expiry
// (and every refresh of it) is capped at the caller's own end (auth::Claims::not_after), so a
// short-lived key cannot mint or refresh its way to a longer life.
#include <openssl/rand.h>

#include "auth.pb.h"
#include "auth/token.h"
#include "common/clock.h"
#include "control/cache_registry.h"
#include "frontend/grpc/errors.h"
#include "frontend/grpc/services.h"
#include "permissionmessages.pb.h"
#include "token.pb.h"

namespace cellar::grpc {

namespace pm = ::permission_messages;

namespace {

constexpr size_t kMaxTokenIdChars = 64;

template <typename T>
T* ParseBody(Stream& s, std::string_view m) {
  auto msg = std::make_unique<T>();
  if (!msg->ParseFromArray(m.data(), static_cast<int>(m.size()))) return nullptr;
  T* raw = msg.get();
  s.request = std::move(msg);
  return raw;
}

void Fail(Stream& s, const Respond& respond, const Status& st) {
  s.status = ToWire(st);
  respond();
}

StatusOr<auth::Permissions> FromProto(const pm::Permissions& p) {
  auth::Permissions out;
  if (p.kind_case() == pm::Permissions::kSuperUser) {
    out.super_user = true;
    return out;
  }
  if (p.kind_case() != pm::Permissions::kExplicit) {
    return Error(GrpcError::kNoPermissions);
  }
  for (const pm::PermissionsType& t : p.explicit_().permissions()) {
    if (t.has_cache_permissions()) {
      const pm::CachePermissions& c = t.cache_permissions();
      auth::CacheGrant g;
      switch (c.role()) {
        case pm::CacheReadWrite: g.role = auth::CacheRole::kReadWrite; break;
        case pm::CacheReadOnly: g.role = auth::CacheRole::kReadOnly; break;
        case pm::CacheWriteOnly: g.role = auth::CacheRole::kWriteOnly; break;
        default: return Error(GrpcError::kCacheGrantNoRole);
      }
      if (c.has_cache_selector()) {
        g.cache = c.cache_selector().cache_name();
      } else if (!c.has_all_caches()) {
        return Error(GrpcError::kCacheGrantNoCache);
      }
      if (c.has_item_selector()) {
        if (c.item_selector().kind_case() == pm::CacheItemSelector::kKey) {
          g.key = c.item_selector().key();
        } else if (c.item_selector().kind_case() == pm::CacheItemSelector::kKeyPrefix) {
          g.key_prefix = c.item_selector().key_prefix();
        } else {
          return Error(GrpcError::kItemSelectorEmpty);
        }
      }
      out.caches.push_back(std::move(g));
    } else if (t.has_topic_permissions()) {
      const pm::TopicPermissions& c = t.topic_permissions();
      auth::TopicGrant g;
      switch (c.role()) {
        case pm::TopicReadWrite: g.role = auth::TopicRole::kPublishSubscribe; break;
        case pm::TopicReadOnly: g.role = auth::TopicRole::kSubscribeOnly; break;
        case pm::TopicWriteOnly: g.role = auth::TopicRole::kPublishOnly; break;
        default: return Error(GrpcError::kTopicGrantNoRole);
      }
      if (c.has_cache_selector()) {
        g.cache = c.cache_selector().cache_name();
      } else if (!c.has_all_caches()) {
        return Error(GrpcError::kTopicGrantNoCache);
      }
      if (c.has_topic_selector()) {
        if (c.topic_selector().kind_case() == pm::TopicSelector::kTopicName) {
          g.topic = c.topic_selector().topic_name();
        } else if (c.topic_selector().kind_case() == pm::TopicSelector::kTopicNamePrefix) {
          g.topic_prefix = c.topic_selector().topic_name_prefix();
        } else {
          return Error(GrpcError::kTopicSelectorEmpty);
        }
      }
      out.topics.push_back(std::move(g));
    } else if (!t.has_function_permissions()) {
      return Error(GrpcError::kEmptyPermission);
    }
    // Function permissions grant nothing here: Cellar has no functions.
  }
  if (Status st = auth::Validate(out); !st.ok()) return st;
  return out;
}

std::string RandomTokenId() {
  unsigned char b[12];
  RAND_bytes(b, sizeof(b));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

// The caller behind a body token, with its tenant's name.
struct Caller {
  gateway::Principal principal;
  std::string tenant;
  bool admin_key;  // the bootstrap key (the only one that mints super-user keys)
};

StatusOr<Caller> CallerOf(const ServiceContext& ctx, const std::string& token, int64_t now_s) {
  auto p = ctx.gateway->Authenticate(token);
  if (!p.ok()) return p.status();
  if (Status st = ctx.gateway->StillValid(*p, now_s); !st.ok()) return st;
  auto tenant = ctx.gateway->registry().FindTenant(p->tenant);
  if (!tenant) return Error(GrpcError::kNoSuchTenant);
  if (p->kind == auth::TokenKind::kDisposable) {
    return Error(GrpcError::kDisposableMints);
  }
  const bool admin = p->key_id.empty() && p->perms.super_user;
  return Caller{std::move(*p), tenant->name, admin};
}

// The latest a token minted by `caller` may expire (0: no limit).
int64_t EndOf(const Caller& caller) {
  return auth::EarliestEnd(caller.principal.expires_at, caller.principal.not_after);
}

// Mints an API key (Momento's v2 shape, "t":"g") and its refresh token (a plain token: it is
// only ever sent back to RefreshApiToken); fills the response fields. The SDK wraps `api_key`
// and `endpoint` into a v1 key itself; the inner v2 key also works with fromApiKeyV2 and
// `endpoint`.
template <typename Resp>
Status MintPair(const ServiceContext& ctx, auth::Claims claims, Resp& resp) {
  claims.kind = auth::TokenKind::kApi;
  claims.v2 = true;
  auto api = auth::Mint(*ctx.keys, claims);
  if (!api.ok()) return api.status();
  claims.kind = auth::TokenKind::kRefresh;
  claims.v2 = false;
  auto refresh = auth::Mint(*ctx.keys, claims);
  if (!refresh.ok()) return refresh.status();
  resp.set_api_key(*api);
  resp.set_refresh_token(*refresh);
  resp.set_endpoint(ctx.endpoint);
  resp.set_valid_until(static_cast<uint64_t>(claims.expires_at));
  return Status::Ok();
}

}  // namespace

void GenerateApiToken(const ServiceContext& ctx, uint32_t, Stream& s, std::string_view m,
                      Respond respond) {
  auto* r = ParseBody<::auth::_GenerateApiTokenRequest>(s, m);
  if (r == nullptr) return Fail(s, respond, Error(GrpcError::kBadTokenRequest));
  if (ctx.keys == nullptr) return Fail(s, respond, Error(GrpcError::kTokensDisabled));
  const int64_t now_s = SystemClock::Get()->NowMillis() / 1000;
  auto caller = CallerOf(ctx, r->auth_token(), now_s);
  if (!caller.ok()) return Fail(s, respond, caller.status());
  auto perms = FromProto(r->permissions());
  if (!perms.ok()) return Fail(s, respond, perms.status());
  if (perms->super_user && !caller->admin_key) {
    return Fail(s, respond, Error(GrpcError::kSuperUserMint));
  }
  if (!caller->principal.perms.super_user) {
    return Fail(s, respond, Error(GrpcError::kApiKeyMint));
  }
  auth::Claims c;
  c.tenant = caller->tenant;
  c.perms = std::move(*perms);
  c.issued_at = now_s;
  if (r->has_expires()) {
    if (r->expires().valid_for_seconds() == 0) {
      return Fail(s, respond, Error(GrpcError::kNonPositiveValidity));
    }
    c.expires_at = now_s + r->expires().valid_for_seconds();
  } else if (!r->has_never()) {
    return Fail(s, respond, Error(GrpcError::kNoExpiry));
  }
  // A "never" asked by an expiring caller ends with the caller; valid_until says so.
  c.not_after = EndOf(*caller);
  c.expires_at = auth::EarliestEnd(c.expires_at, c.not_after);
  if (r->token_id().size() > kMaxTokenIdChars) {
    return Fail(s, respond, Error(GrpcError::kTokenIdTooLong));
  }
  c.token_id = r->token_id().empty() ? RandomTokenId() : r->token_id();
  ::auth::_GenerateApiTokenResponse resp;
  if (Status st = MintPair(ctx, std::move(c), resp); !st.ok()) {
    return Fail(s, respond, st);
  }
  AppendMessage(s.out, resp);
  respond();
}

void RefreshApiToken(const ServiceContext& ctx, uint32_t, Stream& s, std::string_view m,
                     Respond respond) {
  auto* r = ParseBody<::auth::_RefreshApiTokenRequest>(s, m);
  if (r == nullptr) return Fail(s, respond, Error(GrpcError::kBadTokenRequest));
  if (ctx.keys == nullptr) return Fail(s, respond, Error(GrpcError::kTokensDisabled));
  const int64_t now_s = SystemClock::Get()->NowMillis() / 1000;
  auto refresh = auth::Verify(*ctx.keys, r->refresh_token(), now_s);
  if (!refresh.ok()) return Fail(s, respond, refresh.status());
  // The old key may have expired (that is why it is refreshed): checked without expiry.
  auto old = auth::Verify(*ctx.keys, r->api_key(), /*now_s=*/0);
  if (!old.ok()) return Fail(s, respond, old.status());
  if (refresh->kind != auth::TokenKind::kRefresh || old->kind != auth::TokenKind::kApi ||
      refresh->token_id != old->token_id || refresh->tenant != old->tenant) {
    return Fail(s, respond, Error(GrpcError::kRefreshMismatch));
  }
  if (!ctx.gateway->registry().FindTenant(old->tenant)) {
    return Fail(s, respond, Error(GrpcError::kNoSuchTenant));
  }
  if (old->not_after != 0 && now_s >= old->not_after) {
    return Fail(s, respond, Error(GrpcError::kMinterExpired));
  }
  auth::Claims c = *old;
  c.issued_at = now_s;
  c.expires_at = old->expires_at == 0 ? 0 : now_s + (old->expires_at - old->issued_at);
  c.expires_at = auth::EarliestEnd(c.expires_at, old->not_after);
  ::auth::_RefreshApiTokenResponse resp;
  if (Status st = MintPair(ctx, std::move(c), resp); !st.ok()) {
    return Fail(s, respond, st);
  }
  AppendMessage(s.out, resp);
  respond();
}

void GenerateDisposableToken(const ServiceContext& ctx, uint32_t, Stream& s, std::string_view m,
                             Respond respond) {
  auto* r = ParseBody<::token::_GenerateDisposableTokenRequest>(s, m);
  if (r == nullptr) return Fail(s, respond, Error(GrpcError::kBadTokenRequest));
  if (ctx.keys == nullptr) return Fail(s, respond, Error(GrpcError::kTokensDisabled));
  const int64_t now_s = SystemClock::Get()->NowMillis() / 1000;
  auto caller = CallerOf(ctx, r->auth_token(), now_s);
  if (!caller.ok()) return Fail(s, respond, caller.status());
  if (!r->has_expires() || r->expires().valid_for_seconds() == 0) {
    return Fail(s, respond, Error(GrpcError::kDisposableNoExpiry));
  }
  if (r->expires().valid_for_seconds() > ctx.max_disposable_seconds) {
    return Fail(s, respond,
                Error(GrpcError::kDisposableTooLong, std::to_string(ctx.max_disposable_seconds)));
  }
  if (r->token_id().size() > kMaxTokenIdChars) {
    return Fail(s, respond, Error(GrpcError::kTokenIdTooLong));
  }
  auto perms = FromProto(r->permissions());
  if (!perms.ok()) return Fail(s, respond, perms.status());
  if (perms->super_user) {
    return Fail(s, respond, Error(GrpcError::kDisposableSuperUser));
  }
  if (!auth::Contains(caller->principal.perms, *perms)) {
    return Fail(s, respond, Error(GrpcError::kExceedsCaller));
  }
  auth::Claims c;
  c.tenant = caller->tenant;
  c.perms = std::move(*perms);
  c.kind = auth::TokenKind::kDisposable;
  c.issued_at = now_s;
  c.not_after = EndOf(*caller);
  c.expires_at = auth::EarliestEnd(now_s + r->expires().valid_for_seconds(), c.not_after);
  c.token_id = r->token_id();
  // Not a v2 key: Momento hands disposable tokens out in the v1 form only (the SDK wraps this
  // token and `endpoint` into base64 JSON, read back by fromDisposableToken).
  auto token = auth::Mint(*ctx.keys, c);
  if (!token.ok()) return Fail(s, respond, token.status());
  ::token::_GenerateDisposableTokenResponse resp;
  resp.set_api_key(*token);
  resp.set_endpoint(ctx.endpoint);
  resp.set_valid_until(static_cast<uint64_t>(c.expires_at));
  AppendMessage(s.out, resp);
  respond();
}

}  // namespace cellar::grpc
