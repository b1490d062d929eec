// For tests only (cellar_testing): one whole node in process, with no socket. A control registry (in its own
// directory), the tenancy, one loop with its shard's engine, the gateway, topics (asking the
// tenancy) and one pipeline, as a connection holds it, over a connection that never
// schedules. Front-end tests (resp/families_test.cc, grpc/services_test.cc) prepare and
// finish their commands around it, as Dragonfly's BaseFamilyTest does.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/clock.h"
#include "control/cache_registry.h"
#include "metadata/local_store.h"
#include "gateway/gateway.h"
#include "gateway/pipeline.h"
#include "gateway/tenancy.h"
#include "storage/engine/engine.h"
#include "topics/topics.h"

namespace cellar::gateway {

class InProcessNode {
 public:
  // `dir`: a fresh directory for the registry (removed again at the end). Creates tenant
  // `acme` and its cache `c`; the principal is its super-user until a test changes it.
  explicit InProcessNode(std::string dir) : dir_(std::move(dir)) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    metadata_store = std::make_unique<metadata::LocalStore>(dir_);
    registry = std::make_unique<control::CacheRegistry>(*metadata_store);
    tenancy = std::make_unique<Tenancy>(registry.get());
    registry->set_on_change([this] { tenancy->Refresh(); });
    tenant = registry->CreateTenant("acme")->id;
    cache = registry->Create(tenant, "c")->id;
    engine = std::make_unique<storage::Engine>(SystemClock::Get(), 64 << 20);
    gateway = std::make_unique<Gateway>(std::vector<boost::asio::io_context*>{&io},
                                        std::vector<storage::Engine*>{engine.get()},
                                        registry.get(), Options{.serving_until_ns = &serving_until});
    gateway->LoadCachesAtStart();
    gateway->set_tenancy(tenancy.get());
    topics = std::make_unique<topics::Topics>(std::vector<boost::asio::io_context*>{&io},
                                              topics::Options{});
    topics->set_admission(tenancy.get());
    gateway->set_topics(topics.get());
    pipeline = std::make_unique<Pipeline>(*gateway, 0, source_, Pipeline::Pacing::kEveryRound);
    principal.tenant = tenant;
    principal.perms.super_user = true;
  }
  ~InProcessNode() {
    topics->set_admission(nullptr);
    std::filesystem::remove_all(dir_);
  }
  InProcessNode(const InProcessNode&) = delete;
  InProcessNode& operator=(const InProcessNode&) = delete;

  std::shared_ptr<CacheState> cache_state() const { return tenancy->Find(cache); }
  // Runs the loop until it has nothing left to do.
  void Drain() {
    io.restart();
    io.run();
  }
  // The round's calls to the shard; true once every reply is in.
  bool RunRound() {
    bool done = false;
    pipeline->Submit(tenant, [&] { done = true; });
    Drain();
    return done;
  }
  // A token of the tenant granting `role` on cache `c` (and only keys starting with
  // `key_prefix`, if given), in place of the super-user.
  void UseToken(auth::CacheRole role, std::optional<std::string> key_prefix = std::nullopt) {
    principal = Principal{};
    principal.tenant = tenant;
    auth::CacheGrant g;
    g.role = role;
    g.cache = "c";
    g.key_prefix = std::move(key_prefix);
    principal.perms.caches.push_back(g);
  }

  boost::asio::io_context io;
  std::unique_ptr<metadata::LocalStore> metadata_store;
  // A fleet node's lease (Options::serving_until_ns); tests set it to 0 to take it away.
  std::atomic<uint64_t> serving_until{UINT64_MAX};
  std::unique_ptr<control::CacheRegistry> registry;
  std::unique_ptr<Tenancy> tenancy;
  std::unique_ptr<storage::Engine> engine;
  std::unique_ptr<Gateway> gateway;
  std::unique_ptr<topics::Topics> topics;
  std::unique_ptr<Pipeline> pipeline;
  Principal principal;
  uint32_t tenant = 0, cache = 0;

 private:
  class NoSource final : public RoundSource {
   public:
    size_t RunTurn(size_t) override { return 0; }
    void RefuseTurn() override {}
    size_t QueuedTurnWanted() override { return 0; }
    std::shared_ptr<void> Hold() override { return keep; }
    std::shared_ptr<void> keep = std::make_shared<int>(0);
  };
  std::string dir_;
  NoSource source_;
};

}  // namespace cellar::gateway
