#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include <memory>

#include "metadata/local_store.h"
#include "metadata/view.h"

namespace cellar::metadata {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/cellar-metadata-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<Write> Put(std::string k, std::string v) { return {Write{std::move(k), std::move(v)}}; }

TEST(LocalStoreTest, CommitsAreFencedByModRevision) {
  LocalStore store("");
  auto r1 = store.Commit({}, Put("a/x", "1"));
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(*r1, 1);
  // Create-if-absent fails once the key exists.
  std::vector<Compare> absent{{"a/x", 0}};
  auto again = store.Commit(absent, Put("a/x", "2"));
  EXPECT_EQ(again.status().code(), Code::kFailedPrecondition);
  // A write fenced on the current mod revision succeeds; on an old one it fails.
  std::vector<Compare> at1{{"a/x", 1}};
  auto r2 = store.Commit(at1, Put("a/x", "2"));
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(*r2, 2);
  EXPECT_EQ(store.Commit(at1, Put("a/x", "3")).status().code(), Code::kFailedPrecondition);
  auto snap = store.Read("a/");
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->entries.size(), 1u);
  EXPECT_EQ(snap->entries[0].value, "2");
  EXPECT_EQ(snap->entries[0].mod_revision, 2);
  EXPECT_EQ(snap->revision, 2);
  // Several writes land at one revision, or none of them.
  std::vector<Write> two{{"a/y", "y"}, {"a/x", std::nullopt}};
  std::vector<Compare> at2{{"a/x", 2}};
  auto r3 = store.Commit(at2, two);
  ASSERT_TRUE(r3.ok());
  snap = store.Read("a/");
  ASSERT_EQ(snap->entries.size(), 1u);
  EXPECT_EQ(snap->entries[0].key, "a/y");
  EXPECT_EQ(snap->entries[0].mod_revision, *r3);
  // Deleting an absent key changes nothing: revision 0, and the store's revision stays.
  std::vector<Write> none{{"a/never", std::nullopt}};
  EXPECT_EQ(*store.Commit({}, none), 0);
  EXPECT_EQ(store.Read("a/")->revision, *r3);
  // Bad keys are refused before anything is written.
  EXPECT_EQ(store.Commit({}, Put("has space", "v")).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store.Commit({}, Put("", "v")).status().code(), Code::kInvalidArgument);
}

TEST(LocalStoreTest, WatchDeliversAResetThenChangesUnderItsPrefixInOrder) {
  LocalStore store("");
  ASSERT_TRUE(store.Commit({}, Put("p/before", "b")).ok());
  std::vector<Update> seen;
  const uint64_t id = store.Watch("p/", [&](const Update& u) { seen.push_back(u); });
  ASSERT_TRUE(store.Commit({}, Put("q/other", "o")).ok());
  ASSERT_TRUE(store.Commit({}, Put("p/one", "1")).ok());
  std::vector<Write> del{{"p/before", std::nullopt}};
  ASSERT_TRUE(store.Commit({}, del).ok());
  store.Unwatch(id);
  ASSERT_TRUE(store.Commit({}, Put("p/after", "a")).ok());
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_TRUE(seen[0].reset);
  ASSERT_EQ(seen[0].snapshot.entries.size(), 1u);
  EXPECT_EQ(seen[0].snapshot.revision, 1);
  EXPECT_FALSE(seen[1].reset);
  ASSERT_EQ(seen[1].changes.size(), 1u);
  EXPECT_EQ(seen[1].changes[0].key, "p/one");
  EXPECT_EQ(seen[1].changes[0].mod_revision, 3);
  ASSERT_EQ(seen[2].changes.size(), 1u);
  EXPECT_FALSE(seen[2].changes[0].value.has_value());
  EXPECT_EQ(seen[2].changes[0].mod_revision, 4);
}

TEST(LocalStoreTest, SurvivesARestartWithItsRevisionsAndAwkwardValues) {
  TempDir dir;
  const std::string value = "tab\there\nnew line \\ backslash \"quoted\"";
  {
    LocalStore store(dir.path());
    ASSERT_TRUE(store.Commit({}, Put("k/1", value)).ok());
    ASSERT_TRUE(store.Commit({}, Put("k/2", "{}")).ok());
  }
  struct stat st {};
  ASSERT_EQ(::stat((dir.path() + "/metadata.tsv").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // signing secrets live here
  LocalStore store(dir.path());
  auto snap = store.Read("k/");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->revision, 2);
  ASSERT_EQ(snap->entries.size(), 2u);
  EXPECT_EQ(snap->entries[0].value, value);
  EXPECT_EQ(snap->entries[0].mod_revision, 1);
  // Revisions continue where they were.
  EXPECT_EQ(*store.Commit({}, Put("k/3", "x")), 3);
}

TEST(LocalStoreTest, ACorruptFileIsRefusedAtStart) {
  TempDir dir;
  const std::string path = dir.path() + "/metadata.tsv";
  for (const char* text : {"not a header\n", "cellar-metadata\t1\t5\n7\tk\tv\n",
                           "cellar-metadata\t1\t5\n1\tk\n", "cellar-metadata\t1\t5\n1\tk\tbad\\q\n",
                           "cellar-metadata\t1\tx\n", ""}) {
    std::ofstream(path, std::ios::trunc) << text;
    EXPECT_THROW(LocalStore{dir.path()}, std::runtime_error) << text;
  }
}

TEST(ViewTest, MutateReadsItsOwnWriteAndSeesOthersThroughTheWatch) {
  LocalStore store("");
  View view(store, "c/");
  int applied = 0, changed = 0;
  ASSERT_TRUE(view.Start([&](const Update&) { ++applied; }, [&] { ++changed; }).ok());
  EXPECT_EQ(applied, 1);  // the initial reset
  // A counter incremented through the view: fenced on its mod revision.
  auto increment = [&]() -> StatusOr<Txn> {
    Txn t;
    auto it = view.entries().find("c/n");
    const int n = it == view.entries().end() ? 0 : std::stoi(it->second.value);
    t.Fence(view.entries(), "c/n");
    t.writes.push_back(Write{"c/n", std::to_string(n + 1)});
    return t;
  };
  ASSERT_TRUE(view.Mutate(increment).ok());
  {
    std::lock_guard lock(view.mutex());
    EXPECT_EQ(view.entries().at("c/n").value, "1");
  }
  // Another writer's commit reaches the view through its watch; the next increment builds on
  // it. (Conflicts, where a writer plans on a copy that is already stale, are the next test's.)
  std::vector<Compare> fence{{"c/n", view.revision()}};
  ASSERT_TRUE(store.Commit(fence, Put("c/n", "10")).ok());
  ASSERT_TRUE(view.Mutate(increment).ok());
  std::lock_guard lock(view.mutex());
  EXPECT_EQ(view.entries().at("c/n").value, "11");
  EXPECT_EQ(changed, 4);
}

TEST(ViewTest, WhenVisibleRunsOnceTheRevisionIsAppliedAndItsChangeSeen) {
  LocalStore store("");
  View view(store, "c/");
  int changed = 0;
  ASSERT_TRUE(view.Start([](const Update&) {}, [&] { ++changed; }).ok());
  int ran_now = 0;
  view.WhenVisible(view.revision(), [&] { ++ran_now; });  // already there: at once
  EXPECT_EQ(ran_now, 1);
  // A revision not committed yet: waits for the watch, and runs after `changed`.
  const int64_t next = view.revision() + 1;
  int changed_when_run = -1;
  view.WhenVisible(next + 1, [&] { changed_when_run = changed; });
  view.WhenVisible(next, [&] { ++ran_now; });
  EXPECT_EQ(ran_now, 1);
  auto first = store.Commit({}, Put("c/a", "1"));
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(*first, next);
  EXPECT_EQ(ran_now, 2);
  EXPECT_EQ(changed_when_run, -1);  // next + 1 is not there yet
  ASSERT_TRUE(store.Commit({}, Put("c/b", "2")).ok());
  EXPECT_EQ(changed_when_run, changed);  // `changed` ran first
  // A change outside the prefix does not reach this view: a refresh gets it past it.
  auto other = store.Commit({}, Put("d/x", "1"));
  ASSERT_TRUE(other.ok());
  bool past = false;
  view.WhenVisible(*other, [&] { past = true; });
  EXPECT_FALSE(past);
  ASSERT_TRUE(view.Refresh().ok());
  EXPECT_TRUE(past);
  // Stopped (the process is going): waiting callbacks are dropped, never run, and so are new
  // ones.
  bool late = false;
  auto pending = std::make_shared<int>(0);
  view.WhenVisible(view.revision() + 10, [&late, pending] { late = true; });
  EXPECT_EQ(pending.use_count(), 2);
  view.StopRefreshing();
  EXPECT_EQ(pending.use_count(), 1);  // dropped
  view.WhenVisible(0, [&late] { late = true; });
  ASSERT_TRUE(store.Commit({}, Put("c/z", "1")).ok());
  EXPECT_FALSE(late);
}

TEST(ViewTest, ConcurrentWritersThroughTwoViewsLoseNoIncrement) {
  LocalStore store("");
  View a(store, "c/"), b(store, "c/");
  ASSERT_TRUE(a.Start([](const Update&) {}, nullptr).ok());
  ASSERT_TRUE(b.Start([](const Update&) {}, nullptr).ok());
  auto increment = [](View& v) {
    return [&v]() -> StatusOr<Txn> {
      Txn t;
      auto it = v.entries().find("c/n");
      const int n = it == v.entries().end() ? 0 : std::stoi(it->second.value);
      t.Fence(v.entries(), "c/n");
      t.writes.push_back(Write{"c/n", std::to_string(n + 1)});
      return t;
    };
  };
  constexpr int kEach = 200;
  std::thread ta([&] {
    for (int i = 0; i < kEach; ++i) ASSERT_TRUE(a.Mutate(increment(a)).ok());
  });
  std::thread tb([&] {
    for (int i = 0; i < kEach; ++i) ASSERT_TRUE(b.Mutate(increment(b)).ok());
  });
  ta.join();
  tb.join();
  auto snap = store.Read("c/n");
  ASSERT_EQ(snap->entries.size(), 1u);
  EXPECT_EQ(snap->entries[0].value, std::to_string(2 * kEach));
}

}  // namespace
}  // namespace cellar::metadata
