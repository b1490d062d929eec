#include "server/server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "auth/signing_keys.h"
#include "cluster/etcd_store.h"
#include "cluster/membership.h"
#include "cluster/slots.h"
#include "frontend/internal/migrate.h"
#include "frontend/internal/peers.h"
#include "gateway/forward.h"
#include "routing/router.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/logging.h"
#include "control/admin_key.h"
#include "control/cache_registry.h"
#include "metadata/local_store.h"
#include "frontend/grpc/grpc_server.h"
#include "frontend/grpc/momento_local.h"
#include "frontend/grpc/topic_frames.h"
#include "frontend/grpc/demo.h"
#include "frontend/grpc/web.h"
#include "frontend/net/tls.h"
#include "gateway/reply_memory.h"
#include "frontend/resp/metrics.h"
#include "frontend/resp/resp_server.h"
#include "frontend/resp/topic_pushes.h"
#include "gateway/gateway.h"
#include "gateway/scheduler.h"
#include "gateway/tenancy.h"
#include "server/admin_http.h"
#include "server/admin_routes.h"
#include "server/config.h"
#include "server/fleet.h"
#include "server/usage.h"
#include "storage/engine/engine.h"
#include "topics/topics.h"

namespace cellar::server {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// Active expiry: every tick each shard looks at this many slots, and goes on (up to 8 times
// per tick) while more than 1 in 10 of the slots it saw held an expired item.
constexpr auto kExpireTick = std::chrono::milliseconds(100);
constexpr size_t kExpireBudget = 20000;
constexpr auto kDrainTimeout = std::chrono::seconds(10);

// One event loop: its io_context, its shard and its RESP listener.
struct Loop {
  asio::io_context io{1};
  std::unique_ptr<storage::Engine> engine;
  std::unique_ptr<gateway::LoopScheduler> scheduler;
  std::unique_ptr<resp::RespServer> resp;
  std::unique_ptr<grpc::GrpcServer> grpc;
  std::unique_ptr<grpc::GrpcServer> web;  // --web-port: the same services, HTTP/1.1 first
  std::unique_ptr<internal::PeerServer> peers;  // on a fleet: calls other nodes forward here
  std::unique_ptr<asio::steady_timer> expire_timer;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  // Set by shutdown on this loop's thread. cancel() cannot recall a tick whose handler is
  // already queued, so the handler checks this before re-arming (else the loop never runs dry).
  bool stopping = false;
};

void ScheduleExpiry(Loop* loop) {
  loop->expire_timer->expires_after(kExpireTick);
  loop->expire_timer->async_wait([loop](error_code ec) {
    if (ec || loop->stopping) return;
    for (int round = 0; round < 8; ++round) {
      size_t removed = loop->engine->ActiveExpire(kExpireBudget);
      if (removed * 10 < kExpireBudget) break;
    }
    ScheduleExpiry(loop);
  });
}

uint64_t PhysicalMemory() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

bool IsLoopback(const std::string& bind) {
  error_code ec;
  auto addr = asio::ip::make_address(bind, ec);
  return !ec && addr.is_loopback();
}

// Launchers and tests wait for ports.json to learn the ports, so it must appear whole or not at
// all: written to a temporary file, synced, then renamed over. Every step is checked (a full
// disk may only show at write, fsync or close), and a failure throws std::system_error (a
// runtime_error whose what() names the path and errno's text), which ServeMain turns into exit
// status 1 instead of a server that reports ready without a usable ports.json.
void WritePortsFile(const std::string& dir, const std::string& bind, uint16_t resp,
                    uint16_t api, uint16_t admin, int32_t web) {
  const std::string json = "{\"bind\":\"" + bind + "\",\"resp\":" + std::to_string(resp) +
                           ",\"api\":" + std::to_string(api) +
                           (web >= 0 ? ",\"web\":" + std::to_string(web) : std::string()) +
                           ",\"admin\":" + std::to_string(admin) +
                           ",\"pid\":" + std::to_string(getpid()) + "}\n";
  const std::string tmp = dir + "/ports.json.tmp";
  const std::string path = dir + "/ports.json";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot create " + tmp);
  // Leaves neither a descriptor nor a partial file behind, and reports the first errno.
  auto fail = [&](const std::string& what, const std::string& remove) {
    const int err = errno != 0 ? errno : EIO;
    if (fd >= 0) ::close(fd);
    ::unlink(remove.c_str());
    throw std::system_error(err, std::generic_category(), what);
  };
  for (size_t done = 0; done < json.size();) {
    errno = 0;
    const ssize_t n = ::write(fd, json.data() + done, json.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot write " + tmp, tmp);
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail("cannot sync " + tmp, tmp);
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) fail("cannot close " + tmp, tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    fail("cannot rename " + tmp + " to " + path, tmp);
  }
  // Sync the directory too, so the rename itself is on disk. Some file systems cannot sync a
  // directory (EINVAL); the file's contents are already synced, so that is not an error.
  fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("cannot open " + dir, path);
  if (::fsync(fd) != 0 && errno != EINVAL) fail("cannot sync " + dir, path);
  ::close(fd);
}

// n random bytes as lowercase hex.
std::string RandomHex(size_t n) {
  std::string raw(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("no randomness");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

// The secret nodes of one cluster present to each other's internal port: in etcd
// (`internal/secret`), made by the first node.
std::string LoadOrCreateInternalSecret(metadata::Store& store) {
  constexpr std::string_view kKey = "internal/secret";
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto snap = store.Read(kKey);
    if (!snap.ok()) throw std::runtime_error(std::string(snap.status().message()));
    for (const auto& e : snap->entries) {
      auto j = ParseJson(e.value);
      const Json* s = j ? j->Find("secret") : nullptr;
      if (e.key == kKey && s != nullptr && s->type == Json::Type::kString && !s->text.empty()) {
        return s->text;
      }
    }
    const std::string secret = RandomHex(32);
    const std::vector<metadata::Compare> absent{{std::string(kKey), 0}};
    const std::vector<metadata::Write> put{{std::string(kKey), "{\"secret\":\"" + secret + "\"}"}};
    auto rev = store.Commit(absent, put);
    if (rev.ok()) return secret;
    if (rev.status().code() != Code::kFailedPrecondition) {
      throw std::runtime_error(std::string(rev.status().message()));
    }
  }
  throw std::runtime_error("cannot agree on the cluster's internal secret in etcd");
}

// The host other nodes dial: --cluster-advertise, else --bind unless it is a wildcard.
std::string AdvertisedHost(const Config& cfg) {
  if (!cfg.advertise.empty()) return cfg.advertise;
  if (cfg.bind != "0.0.0.0" && cfg.bind != "::") return cfg.bind;
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return cfg.bind;
  return name;
}

// The forwarder's routes from a slot map and the members: who owns each slot, where they listen.
void PublishRoutes(internal::PeerForwarder& forwarder, const std::string& self,
                   const std::shared_ptr<const cluster::SlotMap>& map,
                   const cluster::ClusterState& members) {
  auto routes = std::make_shared<gateway::Routes>();
  std::map<std::string, std::string> addresses;
  std::map<std::string, uint16_t> loops;  // a member's `cores` is its number of loops
  for (const auto& m : members.members) {
    if (m.node_id != self && !m.internal_addr.empty()) addresses[m.node_id] = m.internal_addr;
    loops[m.node_id] = static_cast<uint16_t>(std::min<uint32_t>(m.cores, 1024));
  }
  if (map != nullptr) {
    routes->epoch = map->epoch;
    routes->owner.resize(routing::kSlots);
    std::map<std::string, int16_t> index;
    for (uint32_t s = 0; s < routing::kSlots; ++s) {
      const std::string& node = map->owner[s];
      if (node == self) {
        routes->owner[s] = gateway::Routes::kLocal;
        continue;
      }
      auto [it, added] = index.try_emplace(node, static_cast<int16_t>(routes->peers.size()));
      if (added) {
        routes->peers.push_back(node);
        auto l = loops.find(node);
        routes->peer_shards.push_back(l == loops.end() ? 0 : l->second);
      }
      routes->owner[s] = it->second;
    }
  }
  forwarder.SetRoutes(std::move(routes), std::move(addresses));
}

// This node's id in a cluster when --node-id is not given: DATA_DIR/node.id, made on first
// start ("n" + 8 hex digits), so a restarted node is the same member.
std::string LoadOrCreateNodeId(const std::string& dir) {
  const std::string path = dir + "/node.id";
  {
    std::ifstream in(path);
    std::string id;
    if (in && std::getline(in, id) && !id.empty()) return id;
  }
  const std::string id = "n" + RandomHex(4);
  std::ofstream out(path, std::ios::trunc);
  out << id << "\n";
  if (!out.flush()) throw std::runtime_error("cannot write " + path);
  return id;
}

}  // namespace

// Everything one serving process holds, in the order it is made (so it is torn down in the
// reverse order, as the locals of the one function it used to be were).
struct Process::State {
  Config cfg;
  bool tls_required = false;
  uint32_t threads = 0;
  uint64_t limit = 0;
  std::unique_ptr<metadata::Store> metadata;  // tenants, caches, limits, signing keys
  cluster::EtcdStore* etcd = nullptr;         // the metadata store, on a fleet
  std::unique_ptr<cluster::Membership> membership;  // on a fleet: lease, members, leader
  std::unique_ptr<cluster::SlotController> slots;   // on a fleet: the slot map
  internal::PeerOptions peer_options;
  std::unique_ptr<net::TlsConfig> internal_tls;  // the internal port's, with TLS (reloaded too)
  std::unique_ptr<internal::PeerForwarder> forwarder;  // on a fleet: calls to other nodes
  std::unique_ptr<internal::Migrator> migrator;        // on a fleet: slots moving in or out
  std::unique_ptr<control::CacheRegistry> registry;
  control::SharedAdminKey admin;
  std::vector<std::unique_ptr<Loop>> loops;
  std::unique_ptr<auth::SigningKeyStore> signing_keys;
  std::unique_ptr<gateway::Gateway> gateway;
  std::unique_ptr<topics::Topics> topics;
  std::unique_ptr<gateway::Tenancy> tenancy;
  resp::ServerContext server_ctx;
  std::unique_ptr<net::TlsConfig> tls, admin_tls;  // ALPN h2 / http/1.1
  grpc::ServiceContext grpc_ctx;
  uint16_t resp_port = 0, api_port = 0;
  int32_t web_port = -1;  // --web-port's, once listening
  std::unique_ptr<UsageLog> usage_log;
  std::unique_ptr<UsageSampler> usage;
  std::unique_ptr<Fleet> fleet;  // on a fleet: limits shared out, stats summed (server/fleet.h)
  AdminContext admin_ctx;
  std::unique_ptr<AdminHttpServer> admin_http;
  std::unique_ptr<asio::signal_set> signals, hangup;
  std::unique_ptr<asio::steady_timer> drain_timer;
  std::chrono::steady_clock::time_point drain_deadline;
  std::function<void()> wait_drained, wait_hangup;
  bool stopping = false;
  bool ran = false;  // Run was called (and has returned, when the Process goes)

  // The checks and set-up before anything listens; an exit code for a refused configuration.
  int Prepare();
  void MakeLoops();
  void MakeCore();
  void Listen();
  // GET /v1/cluster: this node, the members, the leader (a single node says so).
  std::function<std::string()> ClusterStatusFn() const;
  void Announce() const;
  void StartDrain();
  // A loop may have received a message after it ran dry (another loop's last reply, a
  // metadata change's answer): run what is left, single-threaded once the loops stopped, so
  // no handler is destroyed after the objects it uses.
  void RunLeftovers() {
    for (size_t handled = 1; handled > 0;) {  // until a whole pass over the loops runs nothing
      handled = 0;
      for (auto& loop : loops) {
        loop->io.restart();
        handled += loop->io.poll();
      }
    }
  }
};

Process::Process(Config cfg) : s_(std::make_unique<State>()) { s_->cfg = std::move(cfg); }
Process::~Process() {
  // A metadata change still waiting on the store ends first (it may reach the membership,
  // the keys, the registry); those queued behind it are dropped, their loops are gone.
  if (s_->gateway != nullptr) {
    s_->gateway->StopControl();
    if (s_->ran) s_->RunLeftovers();  // the answer of the one running, if it ended after Run
  }
  if (s_->topics != nullptr) s_->topics->set_admission(nullptr);  // the tenancy goes first
  // The fleet's parts call each other (and the forwarder) from etcd's thread: detach and stop
  // them in order, before the default order would free one another still calls. The
  // registry's watch reaches the tenancy and the gateway, which go before it.
  if (s_->registry != nullptr) {
    s_->registry->set_on_change(nullptr);
    s_->registry->StopRefreshing();  // its callbacks post to the loops, which go before it
  }
  if (s_->signing_keys != nullptr) s_->signing_keys->StopRefreshing();
  if (s_->membership != nullptr) s_->membership->set_on_change(nullptr);
  s_->fleet.reset();       // its thread uses the membership and the tenancy
  s_->slots.reset();       // its watches end first (its hooks reach the migrator)
  s_->membership.reset();  // leaves: revokes the lease
}

int Process::State::Prepare() {
  const bool has_tls = !cfg.tls_cert.empty() || cfg.tls_self_signed;
  // Beyond loopback: every listener (RESP, API, admin) takes TLS only, unless
  // --allow-plaintext-public says otherwise.
  if (!IsLoopback(cfg.bind)) {
    if (cfg.dev_no_auth) {
      LOG_ERROR("msg=\"--dev-no-auth is allowed on loopback only\" bind={}", cfg.bind);
      return 2;
    }
    if (cfg.allow_plaintext_public) {
      LOG_WARN("msg=\"listening beyond loopback with plaintext allowed\" bind={}", cfg.bind);
    } else if (!has_tls) {
      LOG_ERROR(
          "msg=\"refusing to listen beyond loopback without TLS; pass --tls-cert and "
          "--tls-key (or --tls-self-signed), or --allow-plaintext-public\" bind={}",
          cfg.bind);
      return 2;
    } else {
      tls_required = true;
      LOG_INFO("msg=\"TLS required on every listener beyond loopback\" bind={}", cfg.bind);
    }
  }
  std::filesystem::create_directories(cfg.data_dir);
  ::chmod(cfg.data_dir.c_str(), 0700);
  if (cfg.tls_self_signed) {
    cfg.tls_cert = cfg.data_dir + "/tls/cert.pem";
    cfg.tls_key = cfg.data_dir + "/tls/key.pem";
    // With --public-endpoint DOMAIN it also names cache., control., token. and api.cache.DOMAIN
    // (a certificate made before without them is made again).
    const auto names = net::EndpointHostNames(cfg.public_endpoint);
    if (net::EnsureSelfSignedCertificate(cfg.tls_cert, cfg.tls_key, cfg.bind, names)) {
      std::string listed;
      for (const auto& n : names) listed += (listed.empty() ? "" : ",") + n;
      LOG_INFO("msg=\"wrote a self-signed development certificate\" names=\"{}\"", listed);
    }
    LOG_WARN("msg=\"serving a self-signed development certificate\" cert={}", cfg.tls_cert);
  }
  if (!cfg.cluster_etcd.empty()) {
    // A fleet: the metadata lives in etcd under /cellar/v1/<cluster>/, shared by every node.
    cluster::EtcdStoreOptions o;
    o.endpoints = cfg.cluster_etcd;
    o.root = "/cellar/v1/" + cfg.cluster_name + "/";
    auto store = std::make_unique<cluster::EtcdStore>(o);
    etcd = store.get();
    metadata = std::move(store);
    admin = control::LoadOrCreateSharedAdminKey(*metadata, cfg.data_dir);
    peer_options.secret = LoadOrCreateInternalSecret(*metadata);
    peer_options.max_frame_bytes =
        std::max<uint64_t>(64ull << 20, 2 * cfg.max_item_size + (1 << 20));
    if (!admin.created && admin.key.empty()) {
      LOG_INFO("msg=\"using the cluster's admin key (its hash is in etcd; the key itself is in "
               "admin.key of the node that made it)\" cluster={}",
               cfg.cluster_name);
    }
    cluster::MembershipOptions m;
    m.self.node_id = cfg.node_id.empty() ? LoadOrCreateNodeId(cfg.data_dir) : cfg.node_id;
    m.self.zone = cfg.zone;
    m.self.boot_id = RandomHex(8);
    m.self.roles = cfg.roles;
    m.self.cores = cfg.threads > 0 ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());
    m.self.memory_bytes = cfg.memory_limit > 0 ? cfg.memory_limit : PhysicalMemory() / 2;
    m.lease_ttl = std::chrono::seconds(cfg.lease_ttl_seconds);
    m.candidate = cfg.roles.find("control") != std::string::npos;
    membership = std::make_unique<cluster::Membership>(*etcd, m);
    slots = std::make_unique<cluster::SlotController>(
        *etcd, *membership, cluster::SlotOptions{.bootstrap_expect = cfg.bootstrap_expect});
    // After a lost lease the node serves again only with the slot map as of then.
    membership->set_before_serving(slots->RefreshHook());
    LOG_WARN(
        "msg=\"cluster mode, in progress (issue 18): metadata, members, the control leader "
        "and the slot map live in etcd, keyed calls go to their slot's owner, slots move "
        "with their items on join and drain, topics are relayed from their owner, per-second "
        "limits hold fleet-wide, cache-wide commands cover every node; not yet: replication, "
        "TLS to etcd\" cluster={} node={} zone={}",
        cfg.cluster_name, m.self.node_id, cfg.zone);
  } else {
    // The embedded single-node default: the metadata file in the data directory (the lists
    // of older versions are moved into it once).
    auto local = std::make_unique<metadata::LocalStore>(cfg.data_dir);
    control::ImportLegacyCacheList(*local, cfg.data_dir);
    auth::ImportLegacySigningKeys(*local, cfg.data_dir);
    metadata = std::move(local);
    control::AdminKey key = control::LoadOrCreateAdminKey(cfg.data_dir);
    admin = {control::Sha256Hex(key.key), key.key, key.created};
  }
  LOG_INFO("msg=\"metadata store\" store=\"{}\"", metadata->Describe());
  registry = std::make_unique<control::CacheRegistry>(*metadata);
  if (admin.created) {
    std::cout << "cellar: generated the bootstrap admin key (shown once; also in "
              << cfg.data_dir << "/admin.key):\n  " << admin.key << std::endl;  // before ports.json
  }
  if (cfg.dev_no_auth) {
    LOG_WARN("msg=\"DEVELOPMENT MODE: --dev-no-auth: unauthenticated RESP clients use cache "
             "'default' and the admin API needs no key\"");
    if (!registry->Find(control::kDefaultTenant, "default")) {
      (void)registry->Create(control::kDefaultTenant, "default");
    }
  }
  if (cfg.demo) {
    LOG_WARN("msg=\"DEMO MODE: --demo serves /demo and hands a disposable token for cache "
             "'demo' to anyone who asks at POST /demo/token\"");
    if (!registry->Find(control::kDefaultTenant, std::string(grpc::kDemoCache))) {
      (void)registry->Create(control::kDefaultTenant, std::string(grpc::kDemoCache));
    }
  }

  // Every cache's limits unless its tenant or itself overrides them.
  control::Limits defaults = control::Limits::Defaults();
  using control::LimitId;
  defaults[LimitId::kMaxItemBytes] = cfg.max_item_size;
  defaults[LimitId::kMaxElementBytes] = cfg.max_item_size;
  defaults[LimitId::kPublishPerSecond] = cfg.topic_limits.publish_rate_per_cache;
  defaults[LimitId::kMaxSubscriptions] = cfg.topic_limits.max_subscriptions_per_cache;
  defaults[LimitId::kMaxMessageBytes] = cfg.topic_limits.max_message_bytes;
  if (!cfg.default_limits.empty()) {
    auto o = control::ParseLimits(cfg.default_limits, /*for_cache=*/false);
    for (size_t i = 0; o.ok() && i < control::kNumLimits; ++i) {
      if (o->v[i] && *o->v[i] != control::kUnset) defaults.v[i] = *o->v[i];
    }
  }
  registry->set_server_limits(defaults);

  threads = cfg.threads > 0 ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());
  if (threads > resp::kMaxThreads) throw std::runtime_error("--threads: at most 256");
  limit = cfg.memory_limit > 0 ? cfg.memory_limit : PhysicalMemory() / 2;
  gateway::ReplyMemory::Options reply;
  reply.pool_bytes =
      cfg.reply_memory > 0 ? cfg.reply_memory : std::max<uint64_t>(64ull << 20, limit / 4);
  reply.max_round_bytes = cfg.max_reply_bytes;
  gateway::ReplyMemory::Get().Configure(reply);
  return 0;
}

void Process::State::MakeLoops() {
  for (uint32_t i = 0; i < threads; ++i) {
    auto loop = std::make_unique<Loop>();
    loop->engine = std::make_unique<storage::Engine>(SystemClock::Get(), limit / threads, i + 1);
    loop->engine->set_max_value_bytes(cfg.max_item_size);
    loop->engine->set_fair_eviction(cfg.fair_eviction);
    loop->scheduler = std::make_unique<gateway::LoopScheduler>(
        loop->io, gateway::SchedulerOptions{.enabled = cfg.fair_scheduling,
                                            .quantum = cfg.sched_quantum,
                                            .pass_budget = cfg.sched_quantum,
                                            .max_queued = cfg.sched_max_queued,
                                            .light_work = cfg.sched_quantum});
    loop->expire_timer = std::make_unique<asio::steady_timer>(loop->io);
    loop->guard.emplace(loop->io.get_executor());
    loops.push_back(std::move(loop));
  }
}

void Process::State::MakeCore() {
  std::vector<asio::io_context*> ios;
  std::vector<storage::Engine*> engines;
  std::vector<gateway::LoopScheduler*> schedulers;
  for (auto& loop : loops) {
    ios.push_back(&loop->io);
    engines.push_back(loop->engine.get());
    schedulers.push_back(loop->scheduler.get());
  }
  signing_keys = std::make_unique<auth::SigningKeyStore>(*metadata);
  gateway = std::make_unique<gateway::Gateway>(
      ios, engines, registry.get(),
      gateway::Options{cfg.dev_no_auth, admin.sha256_hex, signing_keys.get(),
                       membership ? membership->serving_until() : nullptr});
  gateway->LoadCachesAtStart();
  if (membership) {
    forwarder = std::make_unique<internal::PeerForwarder>(ios, peer_options);
    // No map yet: keyed calls are refused (retryable) until the first one arrives, so no
    // write lands on a node that turns out not to own it.
    forwarder->SetRoutes(std::make_shared<gateway::Routes>(), {});
    gateway->set_forwarder(forwarder.get());
  }
  topics = std::make_unique<topics::Topics>(ios, cfg.topics);
  gateway->set_topics(topics.get());
  if (forwarder) {  // topics numbered by the node owning their slot, relayed by the others
    topics->set_fleet(forwarder.get());
    forwarder->set_topics(topics.get());
  }
  gateway->set_schedulers(std::move(schedulers));
  // Limits in force follow the control plane: every change of caches, tenants or limits
  // refreshes the runtime copy (at once); topics ask it too (topics/admission.h).
  tenancy = std::make_unique<gateway::Tenancy>(registry.get());
  topics->set_admission(tenancy.get());
  tenancy->set_on_refresh([this] {
    // Memory shares are per process; each shard holds 1/threads of the memory.
    auto shares = std::make_shared<std::vector<std::pair<uint32_t, uint64_t>>>();
    auto cache_shares = std::make_shared<std::vector<std::pair<uint32_t, uint64_t>>>();
    for (const auto& t : tenancy->Tenants()) {
      shares->emplace_back(t->id, t->memory_share.load(std::memory_order_relaxed) / threads);
    }
    for (const auto& c : tenancy->All()) {
      cache_shares->emplace_back(c->id, c->limit(control::LimitId::kMemoryShareBytes) / threads);
    }
    for (auto& loop : loops) {
      asio::post(loop->io, [engine = loop->engine.get(), shares, cache_shares] {
        for (const auto& [tenant, bytes] : *shares) engine->SetTenantShare(tenant, bytes);
        for (const auto& [cache, bytes] : *cache_shares) engine->SetCacheShare(cache, bytes);
      });
    }
  });
  // A subscription's state is charged to its cache and tenant on its loop's engine.
  topics->set_on_memory([this](uint32_t loop, uint32_t cache_id, int64_t delta) {
    loops[loop]->engine->ChargeExternal(cache_id, delta);
  });
  registry->set_on_change([this] {
    tenancy->Refresh();
    gateway->SyncCaches();
  });
  tenancy->Refresh();
  gateway->set_tenancy(tenancy.get());
}

void Process::State::Listen() {
  server_ctx.gateway = gateway.get();
  server_ctx.topics = topics.get();
  server_ctx.topic_encoding = topics->RegisterEncoding(resp::EncodeTopicTail);
  server_ctx.max_item_bytes = cfg.max_item_size;
  server_ctx.start_ms = SystemClock::Get()->NowMillis();
  server_ctx.threads = threads;
  // Large commands being received, every RESP connection together (a quarter of the memory
  // limit, at least 64 MiB; the API port has the same bound for its request bodies).
  server_ctx.max_buffered_request_bytes = std::max<uint64_t>(64ull << 20, limit / 4);
  // Values a little over the item limit are read and refused with an error, keeping the
  // connection; only lengths past this protocol limit are a protocol error (closed before
  // anything is allocated).
  resp::ParserLimits limits;
  limits.max_bulk_bytes =
      std::min<uint64_t>(512ull << 20, std::max<uint64_t>(2 * cfg.max_item_size, 16ull << 20));
  limits.max_command_bytes = std::max<uint64_t>(64ull << 20, 4 * limits.max_bulk_bytes);

  // TLS for RESP and the API port (reloaded on SIGHUP).
  if (!cfg.tls_cert.empty()) {
    tls = std::make_unique<net::TlsConfig>(cfg.tls_cert, cfg.tls_key, tls_required);
    admin_tls = std::make_unique<net::TlsConfig>(cfg.tls_cert, cfg.tls_key, tls_required,
                                                 /*alpn_h2=*/false);
  }
  if (tls != nullptr && membership) {
    // A TLS node takes TLS only on its internal port, and dials its peers in TLS.
    internal_tls = std::make_unique<net::TlsConfig>(cfg.tls_cert, cfg.tls_key, /*required=*/true,
                                                    /*alpn_h2=*/false);
    peer_options.tls = internal_tls.get();
    peer_options.client_tls = net::MakeClientTlsContext(cfg.cluster_tls_ca);
  }
  net::ConnectionGate::Configure(cfg.connections);
  resp_port = cfg.resp_port;
  for (uint32_t i = 0; i < threads; ++i) {
    loops[i]->resp =
        std::make_unique<resp::RespServer>(loops[i]->io, i, &server_ctx, limits, tls.get());
    loops[i]->resp->Listen(cfg.bind, resp_port);
    resp_port = loops[i]->resp->port();  // port 0: the others join the port the first got
  }
  server_ctx.resp_port = resp_port;

  // The API port: gRPC (Momento's services) over HTTP/2.
  grpc_ctx.gateway = gateway.get();
  grpc_ctx.topics = topics.get();
  grpc_ctx.topic_encoding = topics->RegisterEncoding(grpc::EncodeTopicItem);
  // The web front-end's JSON (long poll, SSE, WebSocket), on the same port (docs/web.md).
  grpc_ctx.topic_json_encoding = topics->RegisterEncoding(grpc::EncodeTopicJson);
  grpc_ctx.cors = grpc::CorsPolicy::Parse(cfg.cors_origins);
  grpc_ctx.demo = cfg.demo;
  grpc_ctx.keys = signing_keys.get();
  grpc_ctx.max_item_bytes = cfg.max_item_size;
  grpc_ctx.momento_local = cfg.momento_local;
  // Momento refuses request messages over 5 MiB; a larger item limit raises it to match.
  // Request bodies being received, every API connection together: as much as replies get.
  grpc_ctx.max_buffered_request_bytes = std::max<uint64_t>(64ull << 20, limit / 4);
  grpc_ctx.max_request_bytes = std::min<uint64_t>(
      grpc::kMaxWireMessage, std::max<uint64_t>(5ull << 20, cfg.max_item_size + (64 << 10)));
  api_port = cfg.api_port;
  for (uint32_t i = 0; i < threads; ++i) {
    loops[i]->grpc = std::make_unique<grpc::GrpcServer>(loops[i]->io, i, &grpc_ctx, tls.get());
    loops[i]->grpc->Listen(cfg.bind, api_port);
    api_port = loops[i]->grpc->port();
  }
  if (cfg.web_port >= 0) {
    uint16_t port = static_cast<uint16_t>(cfg.web_port);
    for (uint32_t i = 0; i < threads; ++i) {
      loops[i]->web =
          std::make_unique<grpc::GrpcServer>(loops[i]->io, i, &grpc_ctx, admin_tls.get());
      loops[i]->web->Listen(cfg.bind, port);
      port = loops[i]->web->port();
    }
    web_port = port;
  }
  grpc_ctx.endpoint = cfg.public_endpoint.empty() ? cfg.bind + ":" + std::to_string(api_port)
                                                  : cfg.public_endpoint;

  // Usage accounting (server/usage.h): every second on loop 0, per tenant and cache and minute.
  usage_log = std::make_unique<UsageLog>(
      UsageOptions{.path = cfg.data_dir + "/usage.tsv",
                   .minute_seconds = cfg.usage_minute_seconds},
      SystemClock::Get()->NowMillis());
  usage = std::make_unique<UsageSampler>(loops[0]->io, tenancy.get(), usage_log.get());
  usage->Start();
  admin_ctx = AdminContext{gateway.get(), threads, signing_keys.get()};
  admin_ctx.metrics = {cfg.metrics_max_caches, cfg.metrics_max_tenants};
  admin_ctx.usage = usage.get();
  if (cfg.momento_local) {
    admin_ctx.block = [this](bool on) {
      grpc::local::Blocked().store(on);
      LOG_WARN("msg=\"momento-local: API port {}\"", on ? "blocked" : "unblocked");
      if (!on) return;
      for (auto& loop : loops) {
        asio::post(loop->io, [server = loop->grpc.get(), web = loop->web.get()] {
          server->CloseAll();
          if (web != nullptr) web->CloseAll();
        });
      }
    };
  }
  admin_ctx.endpoint = grpc_ctx.endpoint;
  if (slots != nullptr) {
    admin_ctx.slot_owner = [sc = slots.get()](uint32_t slot) -> std::string {
      auto map = sc->Current();
      return map == nullptr ? std::string() : map->owner[slot];
    };
  }
  if (membership) {
    admin_ctx.set_draining = [this](const std::string& node, bool drain) -> Status {
      bool known = false;
      for (const auto& m : membership->State().members) known = known || m.node_id == node;
      if (!known) return Status(Code::kNotFound, "no member " + node + " in this cluster");
      const std::vector<metadata::Write> w{
          {"nodes/" + node,
           drain ? std::optional<std::string>("{\"state\":\"draining\"}") : std::nullopt}};
      auto rev = metadata->Commit({}, w);
      return rev.ok() ? Status::Ok() : rev.status();
    };
  }
  if (etcd != nullptr) {
    admin_ctx.extra_metrics = {etcd->Metrics(), membership->Metrics(), forwarder->Metrics(),
                               gateway->MoveMetrics()};
    // Per-second limits hold for the fleet, and the admin API sums the nodes' counters: each
    // node's record in quota/<id>, gathered here on loop 0 once a second.
    FleetOptions fo;
    fo.self = membership->State().self;
    fo.gather = [this](std::function<void(FleetLocal)> done) {
      asio::post(loops[0]->io, [this, done = std::move(done)] {
        if (stopping) return;
        usage->SampleNow();
        const int64_t now_s = SystemClock::Get()->NowMillis() / 1000;
        const int64_t m = usage->log().minute_seconds();
        auto rows =
            usage->log().Query(std::nullopt, std::nullopt, now_s - now_s % m - m, INT64_MAX);
        gateway->CollectStats(0, [done, rows = std::move(rows)](gateway::Stats st) mutable {
          done(FleetLocal{std::move(st), std::move(rows)});
        });
      });
    };
    fleet = std::make_unique<Fleet>(*metadata, *membership, *tenancy, std::move(fo));
    admin_ctx.fleet = fleet.get();
  }
  admin_ctx.cluster = ClusterStatusFn();  // after the fleet, whose loads it shows
  admin_http = std::make_unique<AdminHttpServer>(loops[0]->io, MakeAdminHandler(admin_ctx));
  admin_http->set_tls(admin_tls.get());
  admin_http->Listen(cfg.bind, cfg.admin_port);
  if (membership) {
    uint16_t internal_port = cfg.internal_port;
    for (uint32_t i = 0; i < threads; ++i) {
      loops[i]->peers = std::make_unique<internal::PeerServer>(loops[i]->io, i, *gateway,
                                                               *forwarder, peer_options);
      loops[i]->peers->set_topics(topics.get());
      loops[i]->peers->Listen(cfg.bind, internal_port, i == 0);
      internal_port = loops[i]->peers->port();
    }
    // Registered once it can be reached: members/<id> carries the addresses.
    const std::string host = AdvertisedHost(cfg);
    auto at = [&host](uint16_t port) { return host + ":" + std::to_string(port); };
    membership->set_addresses(at(resp_port), at(api_port), at(admin_http->port()),
                              at(internal_port));
    if (Status st = membership->Join(); !st.ok()) {
      throw std::runtime_error("cannot join the cluster: " + std::string(st.message()));
    }
    const std::string self = membership->State().self;
    migrator = std::make_unique<internal::Migrator>(loops[0]->io, *gateway, *forwarder,
                                                    topics.get());
    cluster::MoveHooks hooks;
    hooks.purge = [m = migrator.get()](uint32_t first, uint32_t last,
                                       std::function<void(Status)> done) {
      m->Purge(first, last, std::move(done));
    };
    hooks.copy_out = [m = migrator.get()](std::string dst, uint32_t first, uint32_t last,
                                          std::function<void(Status, std::string)> done) {
      m->CopyOut(std::move(dst), first, last,
                 [done = std::move(done)](Status st, internal::MoveStats s) {
                   done(std::move(st),
                        fmt::format("copied={} recopied={} rounds={} paused={} topics={}",
                                    s.keys_copied, s.keys_recopied, s.rounds, s.pause_keys,
                                    s.topics));
                 });
    };
    hooks.finish = [m = migrator.get()](bool committed, uint32_t first, uint32_t last) {
      m->Finish(committed, first, last);
    };
    slots->Start(
        [f = forwarder.get(), t = topics.get(), self](std::shared_ptr<const cluster::SlotMap> map,
                                                      const cluster::ClusterState& members) {
          PublishRoutes(*f, self, map, members);
          t->RoutesChanged();
        },
        std::move(hooks));
    membership->set_on_change(slots->MembershipHook());
    if (Status st = fleet->Start(); !st.ok()) {
      throw std::runtime_error("cannot watch the fleet's quota records: " +
                               std::string(st.message()));
    }
  }
  WritePortsFile(cfg.data_dir, cfg.bind, resp_port, api_port, admin_http->port(), web_port);
}

std::function<std::string()> Process::State::ClusterStatusFn() const {
  if (membership == nullptr) {
    return [desc = metadata->Describe()] {
      return "{\"mode\":\"single-node\",\"metadata\":\"" + JsonEscape(desc) + "\"}";
    };
  }
  return [m = membership.get(), slots = slots.get(), fleet = fleet.get(), name = cfg.cluster_name,
          desc = metadata->Describe()] {
    const cluster::ClusterState s = m->State();
    const std::map<std::string, FleetLoad> loads =
        fleet != nullptr ? fleet->Loads() : std::map<std::string, FleetLoad>{};
    const std::shared_ptr<const cluster::SlotMap> map = slots->Current();
    const std::optional<cluster::Move> move = slots->CurrentMove();
    const std::set<std::string> draining = slots->Draining();
    std::map<std::string, uint32_t> counts;
    if (map) counts = map->Counts();
    auto q = [](std::string_view v) { return "\"" + JsonEscape(v) + "\""; };
    std::string body = "{\"mode\":\"cluster\",\"cluster\":" + q(name) +
                       ",\"metadata\":" + q(desc) + ",\"self\":" + q(s.self) +
                       ",\"serving\":" + (s.serving ? "true" : "false") +
                       ",\"leader\":" + (s.leader.empty() ? "null" : q(s.leader)) +
                       ",\"is_leader\":" + (s.is_leader ? "true" : "false") + ",\"members\":[";
    std::map<std::string, std::vector<std::string>> zones;
    for (size_t i = 0; i < s.members.size(); ++i) {
      const cluster::MemberInfo& n = s.members[i];
      zones[n.zone].push_back(n.node_id);
      if (i) body += ",";
      body += "{\"node\":" + q(n.node_id) + ",\"zone\":" + q(n.zone) +
              ",\"resp\":" + q(n.resp_addr) + ",\"api\":" + q(n.api_addr) +
              ",\"admin\":" + q(n.admin_addr) + ",\"roles\":" + q(n.roles) +
              ",\"cores\":" + std::to_string(n.cores) +
              ",\"memory\":" + std::to_string(n.memory_bytes) + ",\"boot\":" + q(n.boot_id) +
              ",\"internal\":" + q(n.internal_addr) +
              ",\"slots\":" + std::to_string(counts.count(n.node_id) ? counts[n.node_id] : 0) +
              ",\"state\":" + (draining.count(n.node_id) ? "\"draining\"" : "\"active\"");
      if (auto l = loads.find(n.node_id); l != loads.end()) {
        body += ",\"load\":{\"rps\":" + std::to_string(l->second.rps) +
                ",\"memory_used\":" + std::to_string(l->second.memory_used) +
                ",\"items\":" + std::to_string(l->second.items) + "}";
      }
      body += "}";
    }
    body += "],\"zones\":{";
    bool first = true;
    for (const auto& [zone, ids] : zones) {
      if (!first) body += ",";
      body += q(zone);
      body += ":[";
      for (size_t i = 0; i < ids.size(); ++i) {
        if (i) body += ",";
        body += q(ids[i]);
      }
      body += "]";
      first = false;
    }
    body += "},\"migration\":";
    body += move ? move->ToJson() : "null";
    body += ",\"slot_map\":";
    if (map == nullptr) return body + "null}";
    body += "{\"epoch\":" + std::to_string(map->epoch) + ",\"ranges\":[";
    bool first_range = true;
    for (const auto& r : map->Ranges()) {
      body += first_range ? "[" : ",[";
      body += std::to_string(r.first) + "," + std::to_string(r.last) + "," + q(r.node) + "]";
      first_range = false;
    }
    return body + "]}}";
  };
}

void Process::State::Announce() const {
  LOG_INFO(
      "msg=listening resp={}:{} api={}:{} admin={}:{} threads={} memory_limit={} "
      "max_item_size={}",
      cfg.bind, resp_port, cfg.bind, api_port, cfg.bind, admin_http->port(), threads, limit,
      cfg.max_item_size);
  std::cout << "cellar ready resp=" << cfg.bind << ":" << resp_port << " api=" << cfg.bind
            << ":" << api_port << " admin=" << cfg.bind << ":" << admin_http->port()
            << (web_port >= 0 ? " web=" + cfg.bind + ":" + std::to_string(web_port) : "") << "\n"
            << "  momento sdk: "
            << (cfg.dev_no_auth
                    ? "CredentialProvider.forMomentoLocal({hostname: '" + cfg.bind +
                          "', port: " + std::to_string(api_port) + "})"
                    : "CredentialProvider.fromString({apiKey: <v1 key wrapping the admin key>, "
                      "endpointOverrides: {cacheEndpoint: '" + cfg.bind + ":" +
                          std::to_string(api_port) + "', ..., secureConnection: false}}) "
                      "(see README)")
            << "\n"
            << "  try: redis-cli -p " << resp_port << " then AUTH <cache> <admin key>"
            << (cfg.dev_no_auth ? " (or nothing: --dev-no-auth)" : "") << std::endl;
  if (cfg.momento_local) {
    std::cout << "  momento-local: fault-injection metadata honoured; outage switch: GET http://"
              << cfg.bind << ":" << admin_http->port() << "/block and /unblock "
              << "(docs/momento-local.md)" << std::endl;
  }
}

int Process::Start() {
  State& s = *s_;
  if (int rc = s.Prepare(); rc != 0) return rc;
  s.MakeLoops();
  s.MakeCore();
  s.Listen();
  s.Announce();
  for (auto& loop : s.loops) ScheduleExpiry(loop.get());
  s.topics->Start();

  // Shutdown: stop accepting everywhere, let busy connections finish their replies, wait
  // (bounded) until none is left, then let the loops run dry (Run returns).
  asio::io_context& io0 = s.loops[0]->io;
  s.signals = std::make_unique<asio::signal_set>(io0, SIGINT, SIGTERM);
  s.drain_timer = std::make_unique<asio::steady_timer>(io0);
  s.wait_drained = [&s]() {
    if (resp::RespServer::LiveConnections().load() + grpc::GrpcServer::LiveConnections().load() >
            0 &&
        std::chrono::steady_clock::now() < s.drain_deadline) {
      s.drain_timer->expires_after(std::chrono::milliseconds(10));
      s.drain_timer->async_wait([&s](error_code) { s.wait_drained(); });
      return;
    }
    const int64_t left =
        resp::RespServer::LiveConnections().load() + grpc::GrpcServer::LiveConnections().load();
    if (left > 0) {
      LOG_WARN("msg=\"closing connections that did not finish in time\" count={}", left);
    }
    // Connections to other nodes hold reads open: closed too, or the loops never run dry.
    if (s.forwarder) s.forwarder->CloseAll();
    for (auto& loop : s.loops) {
      Loop* l = loop.get();
      asio::post(l->io, [l] {
        l->resp->CloseAll();
        if (l->peers) l->peers->CloseAll();
        l->grpc->CloseAll();
        if (l->web) l->web->CloseAll();
        l->stopping = true;
        l->expire_timer->cancel();
        l->guard.reset();
      });
    }
  };
  // SIGHUP: re-read the TLS certificate and key; connections keep the context they began with.
  s.hangup = std::make_unique<asio::signal_set>(io0, SIGHUP);
  s.wait_hangup = [&s]() {
    s.hangup->async_wait([&s](error_code ec, int) {
      if (ec) return;
      if (s.tls == nullptr) {
        LOG_INFO("msg=\"SIGHUP: no TLS configured, nothing to reload\"");
      } else if (std::string err = s.tls->Reload();
                 err.empty() && (err = s.admin_tls->Reload()).empty() &&
                 (s.internal_tls == nullptr || (err = s.internal_tls->Reload()).empty())) {
        LOG_INFO("msg=\"SIGHUP: TLS certificate reloaded\" cert={}", s.cfg.tls_cert);
      } else {
        LOG_ERROR("msg=\"SIGHUP: TLS reload failed; keeping the old certificate\" error=\"{}\"",
                  err);
      }
      s.wait_hangup();
    });
  };
  s.wait_hangup();
  s.signals->async_wait([this](error_code ec, int sig) {
    if (ec) return;
    LOG_INFO("msg=\"shutting down\" signal={}", sig);
    Stop();
  });
  return 0;
}

void Process::Stop() {
  State& s = *s_;
  if (s.loops.empty() || s.admin_http == nullptr) return;  // never started: nothing to stop
  // Posted to loop 0, where every listener's owner and the signal handler live.
  asio::post(s.loops[0]->io, [&s] {
    if (std::exchange(s.stopping, true)) return;
    s.StartDrain();
  });
}

void Process::State::StartDrain() {
  error_code ignored;
  hangup->cancel(ignored);
  signals->cancel(ignored);
  admin_http->Stop();
  if (fleet) fleet->Stop();  // joined when the process is destroyed
  usage->Stop();  // writes the minute in progress to usage.tsv
  topics->Stop();  // subscriptions end (UNAVAILABLE), so their connections can drain
  for (auto& loop : loops) {
    Loop* l = loop.get();
    asio::post(l->io, [l] {
      l->resp->Stop();
      if (l->peers) l->peers->Stop();
      l->grpc->Stop();
      if (l->web) l->web->Stop();
    });
  }
  drain_deadline = std::chrono::steady_clock::now() + kDrainTimeout;
  wait_drained();
}

void Process::Run() {
  State& s = *s_;
  s.ran = true;
  std::vector<std::thread> workers;
  for (uint32_t i = 1; i < s.threads; ++i) {
    workers.emplace_back([l = s.loops[i].get()] { l->io.run(); });
  }
  s.loops[0]->io.run();
  for (auto& t : workers) t.join();
  s.RunLeftovers();
  LOG_INFO("msg=stopped");
}

int ServeMain(int argc, char** argv) {
  Config cfg;
  if (auto code = ParseServeArgs(argc, argv, cfg)) return *code;
  InitLogging(cfg.log_level);
  try {
    Process process(std::move(cfg));
    if (int rc = process.Start(); rc != 0) return rc;
    process.Run();
    return 0;
  } catch (const std::exception& e) {
    LOG_ERROR("msg=\"cannot start\" error=\"{}\"", e.what());
    std::cerr << "cellar serve: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace cellar::server
