#include "frontend/resp/commands.h"

#include <algorithm>
#include <cctype>

#include <absl/container/flat_hash_map.h>

namespace cellar::resp {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void FinishInt(CommandContext&, std::span<gateway::Call> calls, ReplyWriter& w) {
  if (!calls[0].reply.status.ok()) return WriteStatus(w, calls[0].reply.status);
  w.Int(calls[0].reply.integer);
}

void FinishSum(CommandContext&, std::span<gateway::Call> calls, ReplyWriter& w) {
  int64_t sum = 0;
  for (const gateway::Call& c : calls) {
    if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
    sum += c.reply.integer;
  }
  w.Int(sum);
}

void FinishOk(CommandContext&, std::span<gateway::Call> calls, ReplyWriter& w) {
  for (const gateway::Call& c : calls) {
    if (!c.reply.status.ok()) return WriteStatus(w, c.reply.status);
  }
  w.Simple("OK");
}

namespace {

struct Table {
  std::vector<CommandSpec> specs;
  std::vector<const CommandSpec*> all;
  absl::flat_hash_map<std::string, const CommandSpec*> by_name;

  Table() {
    RegisterConnectionFamily(specs);
    RegisterServerFamily(specs);
    RegisterStringFamily(specs);
    RegisterKeysFamily(specs);
    RegisterHashFamily(specs);
    RegisterListFamily(specs);
    RegisterSetFamily(specs);
    RegisterZSetFamily(specs);
    RegisterPubSubFamily(specs);
    std::sort(specs.begin(), specs.end(),
              [](const CommandSpec& a, const CommandSpec& b) { return a.name < b.name; });
    for (size_t i = 0; i < specs.size(); ++i) specs[i].id = static_cast<uint16_t>(i);
    for (const auto& s : specs) {
      all.push_back(&s);
      by_name[std::string(s.name)] = &s;
    }
  }
};

const Table& GetTable() {
  static const Table table;
  return table;
}

}  // namespace

const CommandSpec* FindCommand(std::string_view name) {
  if (name.size() > 32) return nullptr;
  char buf[32];
  for (size_t i = 0; i < name.size(); ++i) {
    buf[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
  }
  const auto& t = GetTable();
  auto it = t.by_name.find(std::string(buf, name.size()));  // short names: no allocation (SSO)
  return it == t.by_name.end() ? nullptr : it->second;
}

const std::vector<const CommandSpec*>& AllCommands() { return GetTable().all; }

}  // namespace cellar::resp
