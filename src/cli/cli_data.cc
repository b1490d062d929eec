// `cellar get`, `set` and `delete`: items, through the RESP port.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/cli_common.h"
#include "cli/resp_client.h"

namespace cellar::cli {
namespace {

// Turns an error reply into a CliError, with a hint when the cause is likely the missing key.
[[noreturn]] void FailResp(const RespReply& reply, const Target& t,
                           const std::string& context = {}) {
  std::string hint;
  if (reply.str.rfind("NOAUTH", 0) == 0 || reply.str.rfind("WRONGPASS", 0) == 0) {
    hint = "\n" + KeyHint(!t.key.empty());
  }
  throw CliError(context + reply.str + hint);
}

// Connects and binds the connection to the cache. Without a key there is nothing to send; the
// server may run with --dev-no-auth, and otherwise its NOAUTH answer explains.
void ConnectResp(const Target& t, const std::string& cache, RespClient& client) {
  client.Connect();
  if (!t.key.empty()) {
    RespReply reply = client.Command({"AUTH", cache, t.key});
    if (reply.type == RespReply::Type::kError) {
      FailResp(reply, t, fmt::format("cannot use cache '{}': ", cache));
    }
  }
}

std::string Describe(const RespReply& reply) {
  switch (reply.type) {
    case RespReply::Type::kSimple:
      return "+" + reply.str;
    case RespReply::Type::kError:
      return "-" + reply.str;
    case RespReply::Type::kInteger:
      return ":" + std::to_string(reply.integer);
    case RespReply::Type::kBulk:
      return "a bulk string";
    case RespReply::Type::kNull:
      return "nil";
    case RespReply::Type::kArray:
      return "an array";
  }
  return "?";
}

int Get(const Target& t, const std::string& cache, const std::string& key, bool raw) {
  RespClient client(t.host, t.resp_port);
  ConnectResp(t, cache, client);
  RespReply reply = client.Command({"GET", key});
  if (reply.type == RespReply::Type::kError) FailResp(reply, t);
  if (reply.type == RespReply::Type::kNull) {
    fmt::print(stderr, "(nil)\n");
    return 1;
  }
  if (reply.type != RespReply::Type::kBulk) {
    throw CliError("unexpected reply to GET: " + Describe(reply));
  }
  // The value and a newline, as redis-cli prints it (`$(cellar get ...)` drops the newline);
  // --raw: the exact bytes and nothing else, for binary values.
  std::fwrite(reply.str.data(), 1, reply.str.size(), stdout);
  if (!raw) std::fputc('\n', stdout);
  std::fflush(stdout);
  return 0;
}

int Set(const Target& t, const std::string& cache, const std::string& key, const std::string& value,
        uint64_t ttl_seconds) {
  RespClient client(t.host, t.resp_port);
  ConnectResp(t, cache, client);
  std::vector<std::string> args = {"SET", key, value};
  if (ttl_seconds > 0) {
    args.push_back("EX");
    args.push_back(std::to_string(ttl_seconds));
  }
  RespReply reply = client.Command(args);
  if (reply.type == RespReply::Type::kError) FailResp(reply, t);
  if (reply.type != RespReply::Type::kSimple) {
    throw CliError("unexpected reply to SET: " + Describe(reply));
  }
  fmt::print("{}\n", reply.str);
  return 0;
}

int Delete(const Target& t, const std::string& cache, const std::vector<std::string>& keys) {
  RespClient client(t.host, t.resp_port);
  ConnectResp(t, cache, client);
  std::vector<std::string> args = {"DEL"};
  args.insert(args.end(), keys.begin(), keys.end());
  RespReply reply = client.Command(args);
  if (reply.type == RespReply::Type::kError) FailResp(reply, t);
  if (reply.type != RespReply::Type::kInteger) {
    throw CliError("unexpected reply to DEL: " + Describe(reply));
  }
  fmt::print("{}\n", reply.integer);
  return 0;
}

class DataGroup final : public CommandGroup {
 public:
  void Register(CLI::App& app) override {
    get_ = app.add_subcommand(
        "get", "print a key's value (exit code 1 and \"(nil)\" on stderr when missing)");
    get_->add_option("--cache", cache_, "cache name")->required();
    get_->add_option("KEY", key_, "key")->required();
    get_->add_flag("--raw", raw_, "print the value's exact bytes, with no newline after it");
    set_ = app.add_subcommand("set", "set a key's value");
    set_->add_option("--cache", cache_, "cache name")->required();
    set_->add_option("KEY", key_, "key")->required();
    set_->add_option("VALUE", value_, "value")->required();
    set_->add_option("--ttl", ttl_, "expire after SECONDS")
        ->check(CLI::Validator(
            [](std::string& s) -> std::string {
              return s.find_first_not_of("0123456789") == std::string::npos &&
                             s.find_first_not_of('0') != std::string::npos
                         ? std::string()
                         : "must be a whole number of seconds, at least 1";
            },
            ""))
        ->type_name("SECONDS");
    del_ = app.add_subcommand("delete", "delete keys; prints how many existed");
    del_->add_option("--cache", cache_, "cache name")->required();
    del_->add_option("KEY", delete_keys_, "keys")->required();
  }
  bool Parsed() const override { return get_->parsed() || set_->parsed() || del_->parsed(); }
  bool UsesAdmin() const override { return false; }
  std::optional<int> Run(const Target& t) override {
    if (get_->parsed()) return Get(t, cache_, key_, raw_);
    if (set_->parsed()) return Set(t, cache_, key_, value_, ttl_);
    if (del_->parsed()) return Delete(t, cache_, delete_keys_);
    return std::nullopt;
  }

 private:
  CLI::App *get_ = nullptr, *set_ = nullptr, *del_ = nullptr;
  std::string cache_, key_, value_;
  std::vector<std::string> delete_keys_;
  uint64_t ttl_ = 0;
  bool raw_ = false;
};

}  // namespace

std::unique_ptr<CommandGroup> DataCommands() { return std::make_unique<DataGroup>(); }

}  // namespace cellar::cli
