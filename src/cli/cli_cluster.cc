// cellar cluster status, cellar node drain / activate: the fleet through the admin API
// (GET /v1/cluster, POST /v1/nodes/ID/drain and /activate) of any node.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <thread>

#include "cli/cli_common.h"
#include "cli/observe.h"

namespace cellar::cli {
namespace {

Json ClusterDoc(const Target& t) {
  AdminClient client(t.host, t.admin_port, t.key);
  return ParseBody(CheckedRequest(client, "GET", "/v1/cluster"));
}

int Status(const Target& t, bool json) {
  AdminClient client(t.host, t.admin_port, t.key);
  AdminResponse res = CheckedRequest(client, "GET", "/v1/cluster");
  if (json) {
    fmt::print("{}\n", Trim(res.body));
    return 0;
  }
  Json doc = ParseBody(res);
  if (Text(doc.Find("mode")) != "cluster") {
    fmt::print("single node (metadata: {})\n", Text(doc.Find("metadata")));
    return 0;
  }
  const Json* map = doc.Find("slot_map");
  fmt::print("cluster {}  this node {}  leader {}  slot map epoch {}\n", Text(doc.Find("cluster")),
             Text(doc.Find("self")), Text(doc.Find("leader")),
             map && map->type == Json::Type::kObject ? Text(map->Find("epoch")) : "none yet");
  std::vector<std::vector<std::string>> rows;
  if (const Json* members = doc.Find("members"); members && members->type == Json::Type::kArray) {
    for (const Json& m : members->items) {
      // Its load as of its last report (once a second, when it changed); "-" before the first.
      const Json* load = m.Find("load");
      const bool known = load != nullptr && load->type == Json::Type::kObject;
      rows.push_back(
          {Text(m.Find("node")), Text(m.Find("zone")), Text(m.Find("state")), Text(m.Find("slots")),
           known ? Text(load->Find("rps")) : "-",
           known ? FormatBytes(static_cast<double>(Uint(load->Find("memory_used")))) : "-",
           known ? Text(load->Find("items")) : "-", Text(m.Find("resp")), Text(m.Find("api")),
           Text(m.Find("roles"))});
    }
  }
  PrintTable({"NODE", "ZONE", "STATE", "SLOTS", "RPS", "MEMORY", "ITEMS", "RESP", "API", "ROLES"},
             rows, {false, false, false, true, true, true, true, false, false, false});
  const Json* mv = doc.Find("migration");
  if (mv && mv->type == Json::Type::kObject) {
    fmt::print("last move: #{} slots {}-{} {} -> {}: {}{}{}\n", Text(mv->Find("id")),
               Text(mv->Find("first")), Text(mv->Find("last")), Text(mv->Find("src")),
               Text(mv->Find("dst")), Text(mv->Find("phase")),
               Text(mv->Find("why")) == "" ? "" : " (" + Text(mv->Find("why")) + ")",
               Text(mv->Find("summary")) == "" ? "" : "; " + Text(mv->Find("summary")));
  }
  return 0;
}

// Slots the node still owns, per /v1/cluster (-1: not a member).
int64_t SlotsOf(const Json& doc, const std::string& node) {
  const Json* members = doc.Find("members");
  if (members == nullptr || members->type != Json::Type::kArray) return -1;
  for (const Json& m : members->items) {
    if (Text(m.Find("node")) == node) return static_cast<int64_t>(Uint(m.Find("slots")));
  }
  return -1;
}

int Drain(const Target& t, const std::string& node, bool wait, int timeout_s) {
  AdminClient client(t.host, t.admin_port, t.key);
  CheckedRequest(client, "POST", "/v1/nodes/" + EncodePathSegment(node) + "/drain");
  fmt::print("node {} is draining: its slots move to the other nodes, one batch at a time\n",
             node);
  if (!wait) return 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int64_t last = -2;
  for (;;) {
    const int64_t left = SlotsOf(ClusterDoc(t), node);
    if (left <= 0) {
      fmt::print("node {} is drained: it owns no slots; it may stop now\n", node);
      return 0;
    }
    if (left != last) fmt::print("  {} slots left\n", left);
    last = left;
    if (std::chrono::steady_clock::now() > deadline) {
      throw CliError(fmt::format("node {} still owns {} slots after {} s", node, left, timeout_s));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

int Activate(const Target& t, const std::string& node) {
  AdminClient client(t.host, t.admin_port, t.key);
  CheckedRequest(client, "POST", "/v1/nodes/" + EncodePathSegment(node) + "/activate");
  fmt::print("node {} is active: it takes its share of slots again\n", node);
  return 0;
}

class Commands final : public CommandGroup {
 public:
  void Register(CLI::App& app) override {
    cluster_ = app.add_subcommand("cluster", "the fleet: nodes, zones, slots, moves");
    status_ =
        cluster_->add_subcommand("status", "nodes, zones, slots and load per node, the last move");
    status_->add_flag("--json", json_, "print the admin API's JSON");
    cluster_->require_subcommand(1);
    node_ = app.add_subcommand("node", "one node of the fleet");
    drain_ = node_->add_subcommand("drain", "move every slot off a node before it leaves");
    drain_->add_option("node", node_id_, "the node's id")->required();
    drain_->add_flag("--wait", wait_, "return once the node owns no slots");
    drain_->add_option("--timeout", timeout_s_, "seconds --wait waits at most")
        ->capture_default_str();
    activate_ = node_->add_subcommand("activate", "undo a drain: the node takes slots again");
    activate_->add_option("node", node_id_, "the node's id")->required();
    node_->require_subcommand(1);
  }
  bool Parsed() const override { return cluster_->parsed() || node_->parsed(); }
  bool UsesAdmin() const override { return true; }
  std::optional<int> Run(const Target& t) override {
    if (status_->parsed()) return Status(t, json_);
    if (drain_->parsed()) return Drain(t, node_id_, wait_, timeout_s_);
    if (activate_->parsed()) return Activate(t, node_id_);
    return std::nullopt;
  }

 private:
  CLI::App* cluster_ = nullptr;
  CLI::App* status_ = nullptr;
  CLI::App* node_ = nullptr;
  CLI::App* drain_ = nullptr;
  CLI::App* activate_ = nullptr;
  bool json_ = false;
  bool wait_ = false;
  int timeout_s_ = 600;
  std::string node_id_;
};

}  // namespace

std::unique_ptr<CommandGroup> ClusterCommands() { return std::make_unique<Commands>(); }

}  // namespace cellar::cli
