// Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB.
// Channels are the topics of the connection's cache (topics::Topics), shared with the gRPC
// front-end: a message published through the Momento SDK reaches a RESP subscriber and back.
// Replies are Redis 7.0's, byte for byte; the subscriptions themselves live in the connection
// (ConnectionPort), which is the topics sink and writes the messages.
#include <string>
#include <vector>

#include "auth/permissions.h"
#include "frontend/resp/commands.h"
#include "topics/topics.h"

namespace cellar::resp {
namespace {

// The literal start of a Redis glob (escapes resolved) and whether anything follows that is
// not literal: "news.\*x" is exact ("news.*x"), "news.*" is the prefix "news." and more.
std::pair<std::string, bool> GlobPrefix(std::string_view pattern) {
  std::string lit;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      lit.push_back(pattern[++i]);
    } else if (c == '*' || c == '?' || c == '[') {
      return {std::move(lit), true};
    } else {
      lit.push_back(c);
    }
  }
  return {std::move(lit), false};
}

// A pattern may be subscribed only if every channel it can match is granted: an exact
// pattern is its one channel; a wildcard needs a grant on every topic of the cache or on a
// topic prefix that the pattern's literal start begins with.
bool MaySubscribe(const auth::Permissions& perms, std::string_view cache, std::string_view name,
                  bool pattern) {
  if (perms.super_user) return true;
  if (!pattern) return auth::Allows(perms, cache, name, auth::Access::kSubscribe);
  auto [lit, wild] = GlobPrefix(name);
  if (!wild) return auth::Allows(perms, cache, lit, auth::Access::kSubscribe);
  for (const auth::TopicGrant& g : perms.topics) {
    if (g.role != auth::TopicRole::kPublishSubscribe && g.role != auth::TopicRole::kSubscribeOnly) {
      continue;
    }
    if (g.cache && *g.cache != cache) continue;
    if (!g.topic && !g.topic_prefix) return true;
    if (g.topic_prefix && std::string_view(lit).starts_with(*g.topic_prefix)) return true;
  }
  return false;
}

// PUBSUB answers about channels the token can use (subscribe or publish) only.
bool MayInspect(const auth::Permissions& perms, std::string_view cache, std::string_view channel) {
  return auth::Allows(perms, cache, channel, auth::Access::kSubscribe) ||
         auth::Allows(perms, cache, channel, auth::Access::kPublish);
}

void WriteConfirmation(ReplyWriter& w, std::string_view kind, const std::string_view* name,
                       size_t count) {
  w.Push(3);
  w.Bulk(kind);
  if (name != nullptr) {
    w.Bulk(*name);
  } else {
    w.Null();
  }
  w.Int(static_cast<int64_t>(count));
}

void Subscribe(CommandContext& ctx, bool pattern) {
  if (ctx.server.topics == nullptr) return WriteError(ctx.local, RespError::kPubSubUnavailable);
  const auto names = ctx.args.subspan(1);
  // All or nothing, as Redis's ACL refuses the whole command.
  for (std::string_view n : names) {
    if (!MaySubscribe(ctx.conn.principal.perms, ctx.conn.cache_name, n, pattern)) {
      return WriteError(ctx.local, RespError::kNoPermChannel, ctx.spec->name);
    }
  }
  const std::string_view kind = pattern ? "psubscribe" : "subscribe";
  for (std::string_view n : names) {
    if (!ctx.port->IsSubscribed(n, pattern)) {
      Status st = ctx.port->AddSubscription(n, pattern);
      if (!st.ok()) {
        WriteStatus(ctx.local, st);  // in place of this channel's confirmation
        continue;
      }
    }
    WriteConfirmation(ctx.local, kind, &n, ctx.port->SubscriptionCount());
  }
}

// The confirmations go out once every owner has taken the removals in, so a PUBLISH that
// starts after the client saw them no longer counts the subscription (as in Redis).
void AwaitOwners(CommandContext& ctx) {
  if (ctx.server.topics == nullptr) return;
  ctx.server.topics->AfterDeliveries(ctx.thread, [d = ctx.port->Defer()]() mutable {
    d.Complete([](ReplyWriter&) {});
  });
}

void Unsubscribe(CommandContext& ctx, bool pattern) {
  const std::string_view kind = pattern ? "punsubscribe" : "unsubscribe";
  bool removed = false;
  if (ctx.args.size() == 1) {
    std::vector<std::string> all = ctx.port->SubscriptionNames(pattern);
    if (all.empty()) return WriteConfirmation(ctx.local, kind, nullptr, ctx.port->SubscriptionCount());
    for (const std::string& s : all) {
      std::string_view n = s;
      removed |= ctx.port->RemoveSubscription(n, pattern);
      WriteConfirmation(ctx.local, kind, &n, ctx.port->SubscriptionCount());
    }
  } else {
    for (std::string_view n : ctx.args.subspan(1)) {
      removed |= ctx.port->RemoveSubscription(n, pattern);
      WriteConfirmation(ctx.local, kind, &n, ctx.port->SubscriptionCount());
    }
  }
  if (removed) AwaitOwners(ctx);
}

void PrepareSubscribe(CommandContext& ctx) { Subscribe(ctx, false); }
void PreparePSubscribe(CommandContext& ctx) { Subscribe(ctx, true); }
void PrepareUnsubscribe(CommandContext& ctx) { Unsubscribe(ctx, false); }
void PreparePUnsubscribe(CommandContext& ctx) { Unsubscribe(ctx, true); }

// PUBLISH channel message: a gateway call to the channel's owner loop, which answers how
// many subscriptions (channel and pattern, every front-end) receive it.
void PreparePublish(CommandContext& ctx) {
  topics::Topics* t = ctx.server.topics;
  if (t == nullptr) return WriteError(ctx.local, RespError::kPubSubUnavailable);
  const std::string_view channel = ctx.args[1], message = ctx.args[2];
  if (!auth::Allows(ctx.conn.principal.perms, ctx.conn.cache_name, channel,
                    auth::Access::kPublish)) {
    return WriteError(ctx.local, RespError::kNoPermChannel, "publish");
  }
  if (Status st = t->AdmitPublish(ctx.conn.cache_id, channel, message.size()); !st.ok()) {
    return WriteStatus(ctx.local, st);
  }
  api::Request& r = ctx.Add(api::Op::kPublish, channel);
  r.value = message;
  // The publisher id must outlive an AUTH later in the same round, which replaces the
  // principal: the round's scratch holds a copy.
  const std::string& id = ctx.conn.principal.token_id;
  std::span<const char> copy = ctx.scratch.Copy(std::span<const char>(id.data(), id.size()));
  r.check = std::string_view(copy.data(), copy.size());
}

constexpr std::string_view kPubSubHelp[] = {
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
};

// PUBSUB CHANNELS / NUMSUB / NUMPAT ask every loop (Topics), so they answer later
// (ConnectionPort::Defer); HELP and the shard forms (no shard channels here) answer at once.
void PreparePubSub(CommandContext& ctx) {
  const auto& a = ctx.args;
  const std::string_view sub = a[1];
  topics::Topics* t = ctx.server.topics;
  const ConnState& c = ctx.conn;
  if (EqualsIgnoreCase(sub, "help")) {
    if (a.size() != 2) return WriteError(ctx.local, RespError::kWrongArity, "pubsub|help");
    ctx.local.Array(std::size(kPubSubHelp));
    for (std::string_view line : kPubSubHelp) ctx.local.Simple(line);
    return;
  }
  if (EqualsIgnoreCase(sub, "channels") || EqualsIgnoreCase(sub, "shardchannels")) {
    if (a.size() > 3) return WriteError(ctx.local, RespError::kPubSubSyntax, sub);
    if (EqualsIgnoreCase(sub, "shardchannels")) return ctx.local.Array(0);
    if (t == nullptr) return WriteError(ctx.local, RespError::kPubSubUnavailable);
    if (a.size() == 3 && !CheckPattern(ctx, a[2])) return;
    std::string pattern(a.size() == 3 ? a[2] : std::string_view());
    if (pattern == "*") pattern.clear();
    // A token scoped to some topics sees only those.
    std::shared_ptr<const auth::Permissions> filter;
    if (!c.principal.perms.super_user) {
      filter = std::make_shared<const auth::Permissions>(c.principal.perms);
    }
    t->Channels(ctx.thread, c.cache_id, std::move(pattern),
                [d = ctx.port->Defer(), filter, cache = c.cache_name](
                    std::vector<std::string> names) mutable {
                  if (filter != nullptr) {
                    std::erase_if(names, [&](const std::string& n) {
                      return !MayInspect(*filter, cache, n);
                    });
                  }
                  d.Complete([&](ReplyWriter& w) {
                    w.Array(names.size());
                    for (const std::string& n : names) w.Bulk(n);
                  });
                });
    return;
  }
  if (EqualsIgnoreCase(sub, "numsub") || EqualsIgnoreCase(sub, "shardnumsub")) {
    std::vector<std::string> names(a.begin() + 2, a.end());
    if (EqualsIgnoreCase(sub, "shardnumsub") || names.empty()) {
      ctx.local.Array(2 * names.size());
      for (const std::string& n : names) {
        ctx.local.Bulk(n);
        ctx.local.Int(0);
      }
      return;
    }
    if (t == nullptr) return WriteError(ctx.local, RespError::kPubSubUnavailable);
    for (const std::string& n : names) {
      if (!MayInspect(c.principal.perms, c.cache_name, n)) {
        return WriteError(ctx.local, RespError::kNoPermChannel, "pubsub");
      }
    }
    std::vector<std::string> asked = names;
    t->NumSub(ctx.thread, c.cache_id, std::move(asked),
              [d = ctx.port->Defer(), names = std::move(names)](std::vector<int64_t> counts) mutable {
                d.Complete([&](ReplyWriter& w) {
                  w.Array(2 * names.size());
                  for (size_t i = 0; i < names.size(); ++i) {
                    w.Bulk(names[i]);
                    w.Int(i < counts.size() ? counts[i] : 0);
                  }
                });
              });
    return;
  }
  if (EqualsIgnoreCase(sub, "numpat")) {
    if (a.size() != 2) return WriteError(ctx.local, RespError::kWrongArity, "pubsub|numpat");
    if (t == nullptr) return WriteError(ctx.local, RespError::kPubSubUnavailable);
    t->NumPat(ctx.thread, c.cache_id, [d = ctx.port->Defer()](int64_t n) mutable {
      d.Complete([n](ReplyWriter& w) { w.Int(n); });
    });
    return;
  }
  WriteError(ctx.local, RespError::kPubSubUnknownSub, sub);
}

}  // namespace

void RegisterPubSubFamily(std::vector<CommandSpec>& t) {
  const uint32_t kSub = kConnection | kPubSubContext;
  t.push_back({"subscribe", -2, kSub, PrepareSubscribe, nullptr, 0, 0, 0,
               "Listens to channels (topics of the bound cache)."});
  t.push_back({"psubscribe", -2, kSub, PreparePSubscribe, nullptr, 0, 0, 0,
               "Listens to every channel matching glob patterns."});
  t.push_back({"unsubscribe", -1, kSub, PrepareUnsubscribe, nullptr, 0, 0, 0,
               "Stops listening to channels (all without arguments)."});
  t.push_back({"punsubscribe", -1, kSub, PreparePUnsubscribe, nullptr, 0, 0, 0,
               "Stops listening to patterns (all without arguments)."});
  t.push_back({"publish", 3, kPublishCalls | kFast, PreparePublish, FinishInt, 0, 0, 0,
               "Posts a message to a channel; answers how many subscriptions received it."});
  t.push_back({"pubsub", -2, kConnection, PreparePubSub, nullptr, 0, 0, 0,
               "CHANNELS, NUMSUB, NUMPAT, HELP: the cache's channels and subscribers."});
}

}  // namespace cellar::resp
