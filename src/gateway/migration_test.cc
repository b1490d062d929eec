// A slot range leaving this node (MigrationState, frontend/internal/migrate.h), in process:
// what Gateway::Submit and RunPart do with writes to it while it is copied, paused and ended.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "routing/router.h"
#include "testing/in_process.h"

namespace cellar::gateway {
namespace {

class MigrationTest : public ::testing::Test {
 protected:
  MigrationTest()
      : node_(::testing::TempDir() + "/migration_test_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
              std::to_string(::getpid())) {}

  // Runs one call through Submit and the loop; returns its reply.
  api::Reply Run(api::Op op, std::string_view key, std::string_view value = {}) {
    Batch b;
    Call& c = b.calls.emplace_back();
    c.req.op = op;
    c.req.cache_id = node_.cache;
    c.req.key = key;
    c.req.value = value;
    bool done = false;
    node_.gateway->Submit(0, &b, [&done] { done = true; });
    Drain();
    EXPECT_TRUE(done);
    return b.calls[0].reply;
  }
  void Drain() {
    node_.io.restart();
    node_.io.poll();
  }
  std::shared_ptr<MigrationState> Everything() {
    auto m = std::make_shared<MigrationState>();
    m->first = 0;
    m->last = routing::kSlots - 1;
    return m;
  }

  InProcessNode node_;
};

TEST_F(MigrationTest, WritesAreRecordedOnceTheyRanAndReadsAreNot) {
  auto m = Everything();
  node_.gateway->BeginMigration(m);
  EXPECT_TRUE(Run(api::Op::kSet, "a", "1").status.ok());
  EXPECT_EQ(Run(api::Op::kGet, "b").status.code(), Code::kOk);
  {
    std::lock_guard lock(m->mu);
    ASSERT_EQ(m->dirty.size(), 1u);
    EXPECT_EQ(m->dirty.begin()->second, "a");
    EXPECT_FALSE(m->flushed);
  }
  // A cache-wide flush under the move voids the copy.
  Batch b;
  Call& c = b.calls.emplace_back();
  c.req.op = api::Op::kFlushCache;
  c.req.cache_id = node_.cache;
  c.req.shard = 0;
  node_.gateway->Submit(0, &b, [] {});
  Drain();
  std::lock_guard lock(m->mu);
  EXPECT_TRUE(m->flushed);
}

TEST_F(MigrationTest, PausedWritesWaitAndRunOnceTheMoveEnds) {
  auto m = Everything();
  node_.gateway->BeginMigration(m);
  ASSERT_TRUE(Run(api::Op::kSet, "k", "old").status.ok());
  node_.gateway->PauseMigration(*m);
  Batch b;
  Call& c = b.calls.emplace_back();
  c.req.op = api::Op::kSet;
  c.req.cache_id = node_.cache;
  c.req.key = "k";
  c.req.value = "new";
  bool done = false;
  node_.gateway->Submit(0, &b, [&done] { done = true; });
  Drain();
  EXPECT_FALSE(done);  // parked: not run, not answered
  EXPECT_EQ(Run(api::Op::kGet, "k").value, "old");  // reads go on
  {
    std::lock_guard lock(m->mu);
    EXPECT_EQ(m->parked.size(), 1u);
  }
  node_.gateway->EndMigration();
  Drain();
  EXPECT_TRUE(done);
  EXPECT_TRUE(b.calls[0].reply.status.ok());
  EXPECT_EQ(Run(api::Op::kGet, "k").value, "new");
  // Ended: it never un-pauses, and nothing is recorded for it any more.
  std::lock_guard lock(m->mu);
  EXPECT_TRUE(m->ended);
  EXPECT_TRUE(m->paused);
  EXPECT_EQ(m->dirty.size(), 1u);
}

TEST_F(MigrationTest, WritesOutsideTheRangeAreNeitherRecordedNorParked) {
  auto m = std::make_shared<MigrationState>();
  // A range that holds "inside" and not "outside".
  const uint32_t in = routing::SlotOf(KeyHash(node_.cache, "inside"));
  ASSERT_NE(in, routing::SlotOf(KeyHash(node_.cache, "outside")));
  m->first = m->last = in;
  node_.gateway->BeginMigration(m);
  node_.gateway->PauseMigration(*m);
  EXPECT_TRUE(Run(api::Op::kSet, "outside", "v").status.ok());  // answered at once
  std::lock_guard lock(m->mu);
  EXPECT_TRUE(m->parked.empty());
  EXPECT_TRUE(m->dirty.empty());
}

TEST_F(MigrationTest, BarrierAnswersAfterEveryQueuedMessage) {
  bool crossed = false;
  node_.gateway->Barrier([&crossed] { crossed = true; });
  EXPECT_FALSE(crossed);
  Drain();
  EXPECT_TRUE(crossed);
}

}  // namespace
}  // namespace cellar::gateway
