// Permissions a token carries and the one checker every protocol asks (PROTOCOL.md §3.2):
// super-user, or a list of grants on caches (optionally narrowed to one key or a key prefix)
// and on topics (optionally one topic or a topic-name prefix).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cellar::auth {

enum class CacheRole : uint8_t { kNone, kReadWrite, kReadOnly, kWriteOnly };
enum class TopicRole : uint8_t { kNone, kPublishSubscribe, kSubscribeOnly, kPublishOnly };

// What a call needs. Conditional writes (SetIf*, Increment, UpdateTtl, ...) are writes that
// also read: write-only tokens may not make them (the proto's rule).
enum class Access : uint8_t { kRead, kWrite, kConditionalWrite, kPublish, kSubscribe, kControl };

struct CacheGrant {
  CacheRole role = CacheRole::kNone;
  std::optional<std::string> cache;       // nullopt: every cache
  std::optional<std::string> key;         // exactly this key
  std::optional<std::string> key_prefix;  // keys starting with this
};

struct TopicGrant {
  TopicRole role = TopicRole::kNone;
  std::optional<std::string> cache;
  std::optional<std::string> topic;
  std::optional<std::string> topic_prefix;
};

struct Permissions {
  bool super_user = false;
  std::vector<CacheGrant> caches;
  std::vector<TopicGrant> topics;
};

// Whether `perms` allow `access` on (cache, key) — for topics, key is the topic name. Control
// (creating caches, minting super-user tokens) needs super-user.
bool Allows(const Permissions& perms, std::string_view cache, std::string_view key, Access access);

// Whether `perms` allow `access` on every item of `cache`: what calls that name no key need
// (SCAN, KEYS, DBSIZE, RANDOMKEY, FLUSHDB, INFO). Only a cache grant without a key or key
// prefix selector gives it; a key-scoped token never reaches keys it was not given.
bool AllowsWholeCache(const Permissions& perms, std::string_view cache, Access access);

// Whether every call `narrow` allows is also allowed by `wide` (a token may mint only tokens
// no stronger than itself). Super-user contains everything.
bool Contains(const Permissions& wide, const Permissions& narrow);

// Empty or conflicting grant lists (two grants for the same cache, or the same cache and
// topic) are INVALID_ARGUMENT, as Momento answers. So are empty selectors: a cache name, key,
// key prefix, topic or topic prefix that is "" (Momento's names and keys are never empty; an
// empty prefix would be a whole-cache grant in disguise: omit the selector for that).
Status Validate(const Permissions& perms);

// The compact JSON form kept in a token's "p" claim. Keys and prefixes are base64 (bytes).
std::string ToJson(const Permissions& perms);
StatusOr<Permissions> FromJson(std::string_view json);

}  // namespace cellar::auth
