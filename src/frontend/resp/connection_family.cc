// Connection commands: PING, ECHO, HELLO, AUTH, CLIENT, SELECT, QUIT, RESET, COMMAND.
#include "common/numbers.h"
#include "frontend/resp/commands.h"

namespace cellar::resp {
namespace {

void PreparePing(CommandContext& ctx) {
  if (ctx.args.size() > 2) return WriteError(ctx.local, RespError::kWrongArity, "ping");
  if (ctx.local.proto() == 2 && ctx.port->SubscriptionCount() > 0) {
    // Subscribed RESP2 clients read everything as pushes: Redis answers ["pong", message].
    ctx.local.Array(2);
    ctx.local.Bulk("pong");
    return ctx.local.Bulk(ctx.args.size() == 2 ? ctx.args[1] : std::string_view());
  }
  if (ctx.args.size() == 2) return ctx.local.Bulk(ctx.args[1]);
  ctx.local.Simple("PONG");
}

void PrepareEcho(CommandContext& ctx) { ctx.local.Bulk(ctx.args[1]); }

// Binds the connection to a cache. Returns false after writing the error.
bool Bind(CommandContext& ctx, std::string_view cache, std::string_view secret) {
  auto principal = ctx.server.gateway->Authenticate(secret);
  if (!principal.ok()) {
    // The reason (fixed texts: expired, revoked key, bad signature, ...), never the secret.
    WriteError(ctx.local, RespError::kWrongPass, principal.status().message());
    return false;
  }
  auto id = ctx.server.gateway->ResolveCache(principal->tenant, cache);
  if (!id.ok()) {
    WriteError(ctx.local, RespError::kNoSuchCache);
    return false;
  }
  ctx.conn.authed = true;
  ctx.conn.cache_id = *id;
  ctx.conn.cache_name = std::string(cache);
  ctx.conn.principal = std::move(*principal);
  return true;
}

// AUTH <cache> <key> binds the connection to a cache; AUTH <key> binds it to "default".
void PrepareAuth(CommandContext& ctx) {
  const auto& a = ctx.args;
  if (a.size() > 3) return WriteError(ctx.local, RespError::kSyntax);
  bool ok = a.size() == 3 ? Bind(ctx, a[1], a[2]) : Bind(ctx, "default", a[1]);
  if (ok) ctx.local.Simple("OK");
}

void WriteHello(CommandContext& ctx) {
  ReplyWriter& w = ctx.local;
  w.Map(7);
  w.Bulk("server");
  w.Bulk("redis");
  w.Bulk("version");
  w.Bulk("7.0.0");
  w.Bulk("proto");
  w.Int(ctx.conn.proto);
  w.Bulk("id");
  w.Int(static_cast<int64_t>(ctx.conn.id));
  w.Bulk("mode");
  w.Bulk("standalone");
  w.Bulk("role");
  w.Bulk("master");
  w.Bulk("modules");
  w.Array(0);
}

// HELLO [protover [AUTH cache key] [SETNAME name]]
void PrepareHello(CommandContext& ctx) {
  const auto& a = ctx.args;
  int proto = ctx.conn.proto;
  size_t i = 1;
  if (a.size() >= 2) {
    auto v = ParseInt64(a[1]);
    if (!v) return WriteError(ctx.local, RespError::kProtocolVersion);
    if (*v != 2 && *v != 3) return WriteError(ctx.local, RespError::kProtocolVersion);
    proto = static_cast<int>(*v);
    i = 2;
  }
  std::string_view auth_cache, auth_key, name;
  bool has_auth = false, has_name = false;
  for (; i < a.size(); ++i) {
    if (EqualsIgnoreCase(a[i], "auth") && i + 2 < a.size()) {
      auth_cache = a[i + 1];
      auth_key = a[i + 2];
      has_auth = true;
      i += 2;
    } else if (EqualsIgnoreCase(a[i], "setname") && i + 1 < a.size()) {
      name = a[++i];
      has_name = true;
    } else {
      return WriteError(ctx.local, RespError::kSyntax);
    }
  }
  if (has_auth && !Bind(ctx, auth_cache, auth_key)) return;
  if (!ctx.conn.authed) return WriteError(ctx.local, RespError::kNoAuth);
  if (has_name) ctx.conn.client_name = std::string(name);
  ctx.conn.proto = proto;
  ctx.local.set_proto(proto);  // the reply is already in the new protocol
  WriteHello(ctx);
}

void WriteClientInfo(CommandContext& ctx) {
  const ConnState& c = ctx.conn;
  std::string s = "id=" + std::to_string(c.id) + " addr=" + c.peer + " laddr=127.0.0.1:" +
                  std::to_string(ctx.server.resp_port) + " name=" + c.client_name +
                  " age=" + std::to_string((ctx.now_ms - c.created_ms) / 1000) +
                  " db=0 cache=" + c.cache_name + " resp=" + std::to_string(c.proto) +
                  " lib-name=" + c.lib_name + " lib-ver=" + c.lib_ver + "\n";
  ctx.local.Verbatim(s);
}

void PrepareClient(CommandContext& ctx) {
  const auto& a = ctx.args;
  std::string_view sub = a[1];
  if (EqualsIgnoreCase(sub, "setname") && a.size() == 3) {
    for (char ch : a[2]) {
      if (ch < '!' || ch > '~') return WriteError(ctx.local, RespError::kClientNameChars);
    }
    ctx.conn.client_name = std::string(a[2]);
    return ctx.local.Simple("OK");
  }
  if (EqualsIgnoreCase(sub, "getname") && a.size() == 2) {
    if (ctx.conn.client_name.empty()) return ctx.local.Null();
    return ctx.local.Bulk(ctx.conn.client_name);
  }
  if (EqualsIgnoreCase(sub, "id") && a.size() == 2) {
    return ctx.local.Int(static_cast<int64_t>(ctx.conn.id));
  }
  if (EqualsIgnoreCase(sub, "info") && a.size() == 2) return WriteClientInfo(ctx);
  if (EqualsIgnoreCase(sub, "setinfo") && a.size() == 4) {
    if (EqualsIgnoreCase(a[2], "lib-name")) {
      ctx.conn.lib_name = std::string(a[3]);
    } else if (EqualsIgnoreCase(a[2], "lib-ver")) {
      ctx.conn.lib_ver = std::string(a[3]);
    } else {
      return WriteError(ctx.local, RespError::kSyntax);
    }
    return ctx.local.Simple("OK");
  }
  WriteError(ctx.local, RespError::kUnknownSubcommand, "client|" + Lower(sub));
}

void PrepareSelect(CommandContext& ctx) {
  auto db = ParseInt64(ctx.args[1]);
  if (!db) return WriteError(ctx.local, RespError::kNotInteger);
  if (*db != 0) return WriteError(ctx.local, RespError::kOnlyDbZero);
  ctx.local.Simple("OK");
}

void PrepareQuit(CommandContext& ctx) {
  ctx.conn.close_after_reply = true;
  ctx.local.Simple("OK");
}

void PrepareReset(CommandContext& ctx) {
  ctx.port->DropSubscriptions();
  ctx.conn.proto = 2;
  ctx.conn.client_name.clear();
  if (!ctx.server.gateway->options().dev_no_auth) {
    ctx.conn.authed = false;
    ctx.conn.cache_id = 0;
    ctx.conn.cache_name.clear();
  }
  ctx.local.Simple("RESET");
}

void WriteFlags(ReplyWriter& w, uint32_t flags) {
  std::vector<std::string_view> f;
  if (flags & kWrite) f.push_back("write");
  if (flags & kReadOnly) f.push_back("readonly");
  if (flags & kFast) f.push_back("fast");
  if (flags & kNoAuth) f.push_back("no_auth");
  if (flags & kAdmin) f.push_back("admin");
  w.Set(f.size());
  for (auto s : f) w.Simple(s);
}

void WriteCommandInfo(ReplyWriter& w, const CommandSpec& s) {
  w.Array(10);
  w.Bulk(s.name);
  w.Int(s.arity);
  WriteFlags(w, s.flags);
  w.Int(s.first_key);
  w.Int(s.last_key);
  w.Int(s.key_step);
  w.Set(0);    // ACL categories
  w.Set(0);    // tips
  w.Array(0);  // key specs
  w.Array(0);  // subcommands
}

void PrepareCommand(CommandContext& ctx) {
  const auto& a = ctx.args;
  const auto& all = AllCommands();
  if (a.size() == 1) {
    ctx.local.Array(all.size());
    for (const auto* s : all) WriteCommandInfo(ctx.local, *s);
    return;
  }
  std::string_view sub = a[1];
  if (EqualsIgnoreCase(sub, "count") && a.size() == 2) {
    return ctx.local.Int(static_cast<int64_t>(all.size()));
  }
  if (EqualsIgnoreCase(sub, "info")) {
    if (a.size() == 2) {
      ctx.local.Array(all.size());
      for (const auto* s : all) WriteCommandInfo(ctx.local, *s);
      return;
    }
    ctx.local.Array(a.size() - 2);
    for (size_t i = 2; i < a.size(); ++i) {
      const CommandSpec* s = FindCommand(a[i]);
      if (s == nullptr) {
        ctx.local.NullArray();
      } else {
        WriteCommandInfo(ctx.local, *s);
      }
    }
    return;
  }
  if (EqualsIgnoreCase(sub, "docs")) {
    std::vector<const CommandSpec*> list;
    if (a.size() == 2) {
      list = all;
    } else {
      for (size_t i = 2; i < a.size(); ++i) {
        if (const CommandSpec* s = FindCommand(a[i])) list.push_back(s);
      }
    }
    ctx.local.Map(list.size());
    for (const auto* s : list) {
      ctx.local.Bulk(s->name);
      ctx.local.Map(3);
      ctx.local.Bulk("summary");
      ctx.local.Bulk(s->summary);
      ctx.local.Bulk("since");
      ctx.local.Bulk("1.0.0");
      ctx.local.Bulk("group");
      ctx.local.Bulk((s->flags & kConnection) ? "connection" : "generic");
    }
    return;
  }
  WriteError(ctx.local, RespError::kUnknownSubcommand, "command|" + Lower(sub));
}

}  // namespace

void RegisterConnectionFamily(std::vector<CommandSpec>& t) {
  const uint32_t kConn = kNoAuth | kConnection | kFast;
  t.push_back({"ping", -1, kConn | kPubSubContext, PreparePing, nullptr, 0, 0, 0, "Returns PONG or the message."});
  t.push_back({"echo", 2, kConn, PrepareEcho, nullptr, 0, 0, 0, "Returns the message."});
  t.push_back({"hello", -1, kConn, PrepareHello, nullptr, 0, 0, 0, "Handshake: protocol version, AUTH <cache> <key>, SETNAME."});
  t.push_back({"auth", -2, kConn, PrepareAuth, nullptr, 0, 0, 0, "AUTH <cache> <key>: binds the connection to a cache."});
  t.push_back({"client", -2, kConn, PrepareClient, nullptr, 0, 0, 0, "SETNAME, GETNAME, ID, INFO, SETINFO."});
  t.push_back({"select", 2, kConn, PrepareSelect, nullptr, 0, 0, 0, "Only database 0 exists; caches are chosen by AUTH."});
  t.push_back({"quit", -1, kConn | kPubSubContext, PrepareQuit, nullptr, 0, 0, 0, "Closes the connection."});
  t.push_back({"reset", 1, kConn | kPubSubContext, PrepareReset, nullptr, 0, 0, 0, "Resets the connection state."});
  t.push_back({"command", -1, kConn, PrepareCommand, nullptr, 0, 0, 0, "COUNT, INFO, DOCS: describes the commands."});
}

}  // namespace cellar::resp
