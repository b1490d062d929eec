#include "auth/permissions.h"

#include <jansson.h>

#include <memory>

#include "auth/base64.h"

namespace cellar::auth {

namespace {

bool Matches(const std::optional<std::string>& selector, std::string_view name) {
  return !selector || *selector == name;
}

bool ItemMatches(const std::optional<std::string>& exact, const std::optional<std::string>& prefix,
                 std::string_view item) {
  if (exact) return *exact == item;
  if (prefix) return item.starts_with(*prefix);
  return true;
}

bool CacheRoleAllows(CacheRole role, Access a) {
  switch (role) {
    case CacheRole::kReadWrite:
      return a == Access::kRead || a == Access::kWrite || a == Access::kConditionalWrite;
    case CacheRole::kReadOnly: return a == Access::kRead;
    case CacheRole::kWriteOnly: return a == Access::kWrite;
    case CacheRole::kNone: return false;
  }
  return false;
}

bool TopicRoleAllows(TopicRole role, Access a) {
  switch (role) {
    case TopicRole::kPublishSubscribe: return a == Access::kPublish || a == Access::kSubscribe;
    case TopicRole::kSubscribeOnly: return a == Access::kSubscribe;
    case TopicRole::kPublishOnly: return a == Access::kPublish;
    case TopicRole::kNone: return false;
  }
  return false;
}

// Whether selector `wide` covers every name `narrow` covers (nullopt = every name).
bool SelectorCovers(const std::optional<std::string>& wide,
                    const std::optional<std::string>& narrow) {
  return !wide || (narrow && *wide == *narrow);
}

// The same for (exact, prefix) item selectors.
bool ItemCovers(const std::optional<std::string>& w_exact, const std::optional<std::string>& w_prefix,
                const std::optional<std::string>& n_exact,
                const std::optional<std::string>& n_prefix) {
  if (!w_exact && !w_prefix) return true;
  if (w_exact) return n_exact && *n_exact == *w_exact;
  if (n_exact) return n_exact->starts_with(*w_prefix);
  return n_prefix && n_prefix->starts_with(*w_prefix);
}

bool CacheRoleCovers(CacheRole wide, CacheRole narrow) {
  return wide == CacheRole::kReadWrite || wide == narrow;
}
bool TopicRoleCovers(TopicRole wide, TopicRole narrow) {
  return wide == TopicRole::kPublishSubscribe || wide == narrow;
}

constexpr std::string_view kCacheRoles[] = {"none", "rw", "ro", "wo"};
constexpr std::string_view kTopicRoles[] = {"none", "ps", "so", "po"};

struct JsonDeleter {
  void operator()(json_t* j) const { json_decref(j); }
};
using Json = std::unique_ptr<json_t, JsonDeleter>;

void SetBytes(json_t* obj, const char* field, const std::optional<std::string>& v) {
  if (v) json_object_set_new(obj, field, json_string(Base64Encode(*v).c_str()));
}

// A base64 string field: absent -> nullopt; present but malformed -> error.
bool GetBytes(json_t* obj, const char* field, std::optional<std::string>& out) {
  json_t* v = json_object_get(obj, field);
  if (v == nullptr) return true;
  if (!json_is_string(v)) return false;
  auto bytes = Base64Decode(json_string_value(v));
  if (!bytes) return false;
  out = std::move(*bytes);
  return true;
}

template <typename Role, size_t N>
bool GetRole(json_t* obj, const std::string_view (&names)[N], Role& out) {
  json_t* v = json_object_get(obj, "r");
  if (!json_is_string(v)) return false;
  std::string_view s = json_string_value(v);
  for (size_t i = 1; i < N; ++i) {  // "none" is never valid on the wire
    if (names[i] == s) {
      out = static_cast<Role>(i);
      return true;
    }
  }
  return false;
}

}  // namespace

bool Allows(const Permissions& p, std::string_view cache, std::string_view key, Access a) {
  if (p.super_user) return true;
  if (a == Access::kControl) return false;
  if (a == Access::kPublish || a == Access::kSubscribe) {
    for (const TopicGrant& g : p.topics) {
      if (Matches(g.cache, cache) && ItemMatches(g.topic, g.topic_prefix, key) &&
          TopicRoleAllows(g.role, a)) {
        return true;
      }
    }
    return false;
  }
  for (const CacheGrant& g : p.caches) {
    if (Matches(g.cache, cache) && ItemMatches(g.key, g.key_prefix, key) &&
        CacheRoleAllows(g.role, a)) {
      return true;
    }
  }
  return false;
}

bool AllowsWholeCache(const Permissions& p, std::string_view cache, Access a) {
  if (p.super_user) return true;
  if (a == Access::kControl || a == Access::kPublish || a == Access::kSubscribe) return false;
  for (const CacheGrant& g : p.caches) {
    if (Matches(g.cache, cache) && !g.key && !g.key_prefix && CacheRoleAllows(g.role, a)) {
      return true;
    }
  }
  return false;
}

bool Contains(const Permissions& wide, const Permissions& narrow) {
  if (wide.super_user) return true;
  if (narrow.super_user) return false;
  for (const CacheGrant& n : narrow.caches) {
    bool covered = false;
    for (const CacheGrant& w : wide.caches) {
      if (SelectorCovers(w.cache, n.cache) && ItemCovers(w.key, w.key_prefix, n.key, n.key_prefix) &&
          CacheRoleCovers(w.role, n.role)) {
        covered = true;
        break;
      }
    }
    if (!covered) return false;
  }
  for (const TopicGrant& n : narrow.topics) {
    bool covered = false;
    for (const TopicGrant& w : wide.topics) {
      if (SelectorCovers(w.cache, n.cache) &&
          ItemCovers(w.topic, w.topic_prefix, n.topic, n.topic_prefix) &&
          TopicRoleCovers(w.role, n.role)) {
        covered = true;
        break;
      }
    }
    if (!covered) return false;
  }
  return true;
}

Status Validate(const Permissions& p) {
  if (p.super_user) return Status::Ok();
  if (p.caches.empty() && p.topics.empty()) {
    return Status(Code::kInvalidArgument, "the permission list is empty");
  }
  auto where = [](const std::optional<std::string>& cache) {
    return cache ? "cache '" + *cache + "'" : std::string("all caches");
  };
  auto empty = [](const std::optional<std::string>& v) { return v && v->empty(); };
  for (size_t i = 0; i < p.caches.size(); ++i) {
    const CacheGrant& a = p.caches[i];
    if (a.role == CacheRole::kNone) {
      return Status(Code::kInvalidArgument, "a cache permission has no role");
    }
    if (empty(a.cache)) {
      return Status(Code::kInvalidArgument, "a cache permission names the empty cache name");
    }
    if (empty(a.key) || empty(a.key_prefix)) {
      return Status(Code::kInvalidArgument,
                    "a cache permission's key or key prefix is empty (to grant every item of "
                    "the cache, give no item selector)");
    }
    if (a.key && a.key_prefix) {
      return Status(Code::kInvalidArgument, "a cache permission names both a key and a key prefix");
    }
    for (size_t j = 0; j < i; ++j) {
      const CacheGrant& b = p.caches[j];
      if (a.cache == b.cache && a.key == b.key && a.key_prefix == b.key_prefix) {
        return Status(Code::kInvalidArgument, "conflicting permissions for " + where(a.cache));
      }
    }
  }
  for (size_t i = 0; i < p.topics.size(); ++i) {
    const TopicGrant& a = p.topics[i];
    if (a.role == TopicRole::kNone) {
      return Status(Code::kInvalidArgument, "a topic permission has no role");
    }
    if (empty(a.cache)) {
      return Status(Code::kInvalidArgument, "a topic permission names the empty cache name");
    }
    if (empty(a.topic) || empty(a.topic_prefix)) {
      return Status(Code::kInvalidArgument,
                    "a topic permission's topic or topic prefix is empty (to grant every topic "
                    "of the cache, give no topic selector)");
    }
    if (a.topic && a.topic_prefix) {
      return Status(Code::kInvalidArgument,
                    "a topic permission names both a topic and a topic prefix");
    }
    for (size_t j = 0; j < i; ++j) {
      const TopicGrant& b = p.topics[j];
      if (a.cache == b.cache && a.topic == b.topic && a.topic_prefix == b.topic_prefix) {
        return Status(Code::kInvalidArgument,
                      "conflicting topic permissions for " + where(a.cache));
      }
    }
  }
  return Status::Ok();
}

std::string ToJson(const Permissions& p) {
  Json root(json_object());
  if (p.super_user) {
    json_object_set_new(root.get(), "su", json_true());
  } else {
    json_t* caches = json_array();
    for (const CacheGrant& g : p.caches) {
      json_t* o = json_object();
      json_object_set_new(o, "r", json_string(std::string(kCacheRoles[static_cast<int>(g.role)]).c_str()));
      if (g.cache) json_object_set_new(o, "n", json_string(Base64Encode(*g.cache).c_str()));
      SetBytes(o, "k", g.key);
      SetBytes(o, "kp", g.key_prefix);
      json_array_append_new(caches, o);
    }
    json_object_set_new(root.get(), "c", caches);
    json_t* topics = json_array();
    for (const TopicGrant& g : p.topics) {
      json_t* o = json_object();
      json_object_set_new(o, "r", json_string(std::string(kTopicRoles[static_cast<int>(g.role)]).c_str()));
      if (g.cache) json_object_set_new(o, "n", json_string(Base64Encode(*g.cache).c_str()));
      SetBytes(o, "t", g.topic);
      SetBytes(o, "tp", g.topic_prefix);
      json_array_append_new(topics, o);
    }
    json_object_set_new(root.get(), "t", topics);
  }
  char* text = json_dumps(root.get(), JSON_COMPACT | JSON_SORT_KEYS);
  std::string out = text != nullptr ? text : "{}";
  free(text);
  return out;
}

StatusOr<Permissions> FromJson(std::string_view text) {
  const Status bad(Code::kInvalidArgument, "the token's permissions cannot be parsed");
  json_error_t err;
  Json root(json_loadb(text.data(), text.size(), JSON_REJECT_DUPLICATES, &err));
  if (!root || !json_is_object(root.get())) return bad;
  Permissions p;
  if (json_t* su = json_object_get(root.get(), "su")) {
    if (!json_is_true(su)) return bad;
    p.super_user = true;
    return p;
  }
  json_t* caches = json_object_get(root.get(), "c");
  json_t* topics = json_object_get(root.get(), "t");
  if ((caches != nullptr && !json_is_array(caches)) || (topics != nullptr && !json_is_array(topics))) {
    return bad;
  }
  size_t i;
  json_t* o;
  json_array_foreach(caches, i, o) {
    if (!json_is_object(o)) return bad;
    CacheGrant g;
    if (!GetRole(o, kCacheRoles, g.role) || !GetBytes(o, "n", g.cache) || !GetBytes(o, "k", g.key) ||
        !GetBytes(o, "kp", g.key_prefix)) {
      return bad;
    }
    p.caches.push_back(std::move(g));
  }
  json_array_foreach(topics, i, o) {
    if (!json_is_object(o)) return bad;
    TopicGrant g;
    if (!GetRole(o, kTopicRoles, g.role) || !GetBytes(o, "n", g.cache) ||
        !GetBytes(o, "t", g.topic) || !GetBytes(o, "tp", g.topic_prefix)) {
      return bad;
    }
    p.topics.push_back(std::move(g));
  }
  if (Status st = Validate(p); !st.ok()) return bad;
  return p;
}

}  // namespace cellar::auth
