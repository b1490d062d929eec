#include "control/cache_registry.h"
#include "metadata/local_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>

namespace cellar::control {
namespace {

TEST(CacheRegistry, PersistsAcrossInstances) {
  auto dir = std::filesystem::temp_directory_path() / ("cellar_reg_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  uint32_t id_b = 0;
  {
    metadata::LocalStore store_r(dir.string());
  CacheRegistry r(store_r);
    ASSERT_TRUE(r.Create(kDefaultTenant, "a").ok());
    auto b = r.Create(kDefaultTenant, "b");
    ASSERT_TRUE(b.ok());
    id_b = b->id;
    EXPECT_EQ(r.Create(kDefaultTenant, "a").status().code(), Code::kAlreadyExists);
    EXPECT_EQ(r.Create(kDefaultTenant, "has space").status().code(), Code::kInvalidArgument);
    EXPECT_EQ(r.Create(kDefaultTenant, "").status().code(), Code::kInvalidArgument);
    EXPECT_EQ(r.Create(kDefaultTenant, std::string(256, 'x')).status().code(), Code::kInvalidArgument);
    ASSERT_TRUE(r.Remove(kDefaultTenant, "a").ok());
  }
  metadata::LocalStore store_r(dir.string());
  CacheRegistry r(store_r);
  EXPECT_FALSE(r.Find(kDefaultTenant, "a"));
  ASSERT_TRUE(r.Find(kDefaultTenant, "b"));
  EXPECT_EQ(r.Find(kDefaultTenant, "b")->id, id_b);
  auto c = r.Create(kDefaultTenant, "c");
  ASSERT_TRUE(c.ok());
  EXPECT_GT(c->id, id_b);  // ids are never reused
  std::filesystem::remove_all(dir);
}

TEST(CacheRegistry, TenantsHaveSeparateNamespacesAndSurviveRestart) {
  auto dir = std::filesystem::temp_directory_path() / ("cellar_reg_t_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  uint32_t acme = 0, id_default = 0, id_acme = 0;
  {
    metadata::LocalStore store_r(dir.string());
  CacheRegistry r(store_r);
    ASSERT_TRUE(r.FindTenant("default"));
    EXPECT_EQ(r.FindTenant("default")->id, kDefaultTenant);
    auto t = r.CreateTenant("acme");
    ASSERT_TRUE(t.ok());
    acme = t->id;
    EXPECT_NE(acme, kDefaultTenant);
    EXPECT_EQ(r.CreateTenant("acme").status().code(), Code::kAlreadyExists);
    EXPECT_EQ(r.CreateTenant("no spaces").status().code(), Code::kInvalidArgument);
    auto a = r.Create(kDefaultTenant, "sessions");
    auto b = r.Create(acme, "sessions");  // the same name in another tenant
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_NE(a->id, b->id);
    id_default = a->id;
    id_acme = b->id;
    EXPECT_EQ(r.Create(12345, "x").status().code(), Code::kNotFound);
    EXPECT_EQ(r.List(acme).size(), 1u);
    EXPECT_EQ(r.ListAll().size(), 2u);
  }
  metadata::LocalStore store_r(dir.string());
  CacheRegistry r(store_r);
  ASSERT_TRUE(r.FindTenant("acme"));
  EXPECT_EQ(r.FindTenant("acme")->id, acme);
  EXPECT_EQ(r.Find(kDefaultTenant, "sessions")->id, id_default);
  EXPECT_EQ(r.Find(acme, "sessions")->id, id_acme);
  ASSERT_TRUE(r.Remove(acme, "sessions").ok());
  EXPECT_TRUE(r.Find(kDefaultTenant, "sessions"));
  EXPECT_GT(r.CreateTenant("beta")->id, acme);  // tenant ids are never reused
  std::filesystem::remove_all(dir);
}

TEST(CacheRegistry, AListFromBeforeTenantsLoadsIntoDefault) {
  auto dir = std::filesystem::temp_directory_path() / ("cellar_reg_o_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir / "caches.tsv");
    f << "next_id\t8\n3\told\t1700000000000\n";
  }
  metadata::LocalStore store_r(dir.string());
  ImportLegacyCacheList(store_r, dir.string());
  EXPECT_TRUE(std::filesystem::exists(dir / "caches.tsv.imported"));
  EXPECT_FALSE(std::filesystem::exists(dir / "caches.tsv"));
  CacheRegistry r(store_r);
  ASSERT_TRUE(r.Find(kDefaultTenant, "old"));
  EXPECT_EQ(r.Find(kDefaultTenant, "old")->id, 3u);
  EXPECT_EQ(r.Create(kDefaultTenant, "new")->id, 8u);
  std::filesystem::remove_all(dir);
}

// A store whose watches can be held back: a node whose watch has not yet brought a change
// another node committed (on etcd: milliseconds, at the wrong moment).
class LaggingStore final : public metadata::Store {
 public:
  explicit LaggingStore(metadata::Store& inner) : inner_(inner) {}
  StatusOr<metadata::Snapshot> Read(std::string_view prefix) override { return inner_.Read(prefix); }
  StatusOr<int64_t> Commit(std::span<const metadata::Compare> c,
                           std::span<const metadata::Write> w) override {
    return inner_.Commit(c, w);
  }
  uint64_t Watch(std::string prefix, WatchFn fn) override {
    return inner_.Watch(std::move(prefix), [this, fn](const metadata::Update& u) {
      std::lock_guard lock(mu_);
      if (held_) {
        queued_.emplace_back(fn, u);
      } else {
        fn(u);
      }
    });
  }
  void Unwatch(uint64_t id) override { inner_.Unwatch(id); }
  std::string Describe() const override { return "lagging " + inner_.Describe(); }

  void Hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  void Release() {
    std::lock_guard lock(mu_);
    held_ = false;
    for (auto& [fn, u] : queued_) fn(u);
    queued_.clear();
  }

 private:
  metadata::Store& inner_;
  std::mutex mu_;
  bool held_ = false;
  std::vector<std::pair<WatchFn, metadata::Update>> queued_;
};

TEST(CacheRegistry, ACacheCreatedOnAnotherNodeIsFoundByRefreshingBeforeTheWatchBringsIt) {
  metadata::LocalStore store("");  // memory only
  LaggingStore lagging(store);
  CacheRegistry here(store);        // the node that creates
  CacheRegistry there(lagging);     // a node whose watch lags
  std::atomic<int> changes{0};
  there.set_on_change([&] { changes++; });

  lagging.Hold();
  auto made = here.Create(kDefaultTenant, "fresh");
  ASSERT_TRUE(made.ok());
  EXPECT_FALSE(there.Find(kDefaultTenant, "fresh"));  // the watch has not brought it
  ASSERT_TRUE(there.Refresh().ok());
  ASSERT_TRUE(there.Find(kDefaultTenant, "fresh"));
  EXPECT_EQ(there.Find(kDefaultTenant, "fresh")->id, made->id);
  EXPECT_GE(changes.load(), 1);  // the shards hear of it (Gateway::SyncCaches)
  EXPECT_EQ(there.refreshes(), 1u);

  // From an event loop: done runs once a read that began after the call has ended.
  ASSERT_TRUE(here.Create(kDefaultTenant, "second").ok());
  std::promise<bool> found;
  there.RefreshAsync([&] { found.set_value(there.Find(kDefaultTenant, "second").has_value()); });
  auto f = found.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(f.get());

  // A burst of misses shares reads: ten callers, at most two reads (one may have begun
  // before the others asked), and every caller answered.
  const uint64_t before = there.refreshes();
  std::atomic<int> answered{0};
  std::promise<void> all;
  for (int i = 0; i < 10; ++i) {
    there.RefreshAsync([&] {
      if (++answered == 10) all.set_value();
    });
  }
  ASSERT_EQ(all.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_LE(there.refreshes() - before, 2u);
  EXPECT_GE(there.refreshes() - before, 1u);

  // The watch's late changes are older than what the refresh read: dropped, nothing undone.
  lagging.Release();
  EXPECT_TRUE(there.Find(kDefaultTenant, "fresh"));
  EXPECT_TRUE(there.Find(kDefaultTenant, "second"));

  // A removal made elsewhere is seen the same way.
  lagging.Hold();
  ASSERT_TRUE(here.Remove(kDefaultTenant, "fresh").ok());
  EXPECT_TRUE(there.Find(kDefaultTenant, "fresh"));
  ASSERT_TRUE(there.Refresh().ok());
  EXPECT_FALSE(there.Find(kDefaultTenant, "fresh"));
  lagging.Release();

  // Once stopped, callers are dropped (their loops are going) and never called.
  there.StopRefreshing();
  bool called = false;
  there.RefreshAsync([&] { called = true; });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace cellar::control
