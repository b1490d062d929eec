#include "cluster/slot_map.h"

#include <gtest/gtest.h>

namespace cellar::cluster {
namespace {

TEST(SlotMap, EvenAssignmentRoundTripsThroughItsCompactJson) {
  SlotMap m = AssignEvenly({"n3", "n1", "n2"});
  auto counts = m.Counts();
  EXPECT_EQ(counts["n1"], 5462u);
  EXPECT_EQ(counts["n2"], 5461u);
  EXPECT_EQ(counts["n3"], 5461u);
  EXPECT_EQ(m.owner.front(), "n1");
  EXPECT_EQ(m.owner.back(), "n3");
  const std::string json = m.ToJson();
  EXPECT_EQ(json, "{\"epoch\":1,\"ranges\":[[0,5461,\"n1\"],[5462,10922,\"n2\"],"
                  "[10923,16383,\"n3\"]]}");
  auto back = SlotMap::FromJson(json);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->owner, m.owner);
  EXPECT_EQ(back->epoch, 1);
}

TEST(SlotMap, MapsWithGapsOverlapsOrMissingSlotsAreRefused) {
  for (const char* bad :
       {"{}", "{\"epoch\":1,\"ranges\":[]}", "{\"epoch\":1,\"ranges\":[[0,16382,\"a\"]]}",
        "{\"epoch\":1,\"ranges\":[[0,100,\"a\"],[100,16383,\"b\"]]}",
        "{\"epoch\":1,\"ranges\":[[1,16383,\"a\"]]}",
        "{\"epoch\":1,\"ranges\":[[0,16384,\"a\"]]}",
        "{\"epoch\":1,\"ranges\":[[0,16383,\"\"]]}",
        "{\"epoch\":1,\"ranges\":[[10,5,\"a\"]]}", "not json"}) {
    EXPECT_FALSE(SlotMap::FromJson(bad)) << bad;
  }
  EXPECT_TRUE(SlotMap::FromJson("{\"epoch\":1,\"ranges\":[[0,16383,\"a\"]]}"));
}

TEST(SlotMap, ALostNodesSlotsGoToTheOthersEvenlyAndNothingElseMoves) {
  SlotMap m = AssignEvenly({"a", "b", "c"});
  EXPECT_FALSE(ReassignLost(m, {"a", "b", "c"}));
  EXPECT_FALSE(ReassignLost(m, {}));
  auto r = ReassignLost(m, {"a", "c"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->epoch, 2);
  auto counts = r->Counts();
  EXPECT_EQ(counts.count("b"), 0u);
  EXPECT_EQ(counts["a"] + counts["c"], routing::kSlots);
  EXPECT_LE(std::max(counts["a"], counts["c"]) - std::min(counts["a"], counts["c"]), 1u);
  for (uint32_t s = 0; s < routing::kSlots; ++s) {
    if (m.owner[s] != "b") EXPECT_EQ(r->owner[s], m.owner[s]) << s;  // only b's slots moved
  }
  EXPECT_LE(r->Ranges().size(), 5u);  // still a few ranges
}

TEST(SlotMap, ALostNodesSlotsGoOnlyToTheTakersAndADrainingNodeIsNotLost) {
  SlotMap m = AssignEvenly({"a", "b", "c"});
  // c drains (alive, not a taker); b dies: its slots go to a only, c keeps its own.
  auto r = ReassignLost(m, {"a", "c"}, {"a"});
  ASSERT_TRUE(r);
  auto counts = r->Counts();
  EXPECT_EQ(counts.count("b"), 0u);
  EXPECT_EQ(counts["c"], m.Counts()["c"]);
  EXPECT_EQ(counts["a"] + counts["c"], routing::kSlots);
  // Nobody lost: a draining node's slots stay where they are (they move by moves).
  EXPECT_FALSE(ReassignLost(m, {"a", "b", "c"}, {"a", "b"}));
  // No taker alive: nothing to give them to.
  EXPECT_FALSE(ReassignLost(m, {"a", "c"}, {"x"}));
}

}  // namespace
}  // namespace cellar::cluster
