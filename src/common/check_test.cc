#include "common/check.h"

#include <gtest/gtest.h>

namespace cellar {
namespace {

bool Guarded(int n, int size) {
  if (!CELLAR_BUG_CHECK(n <= size, "index past the end")) return false;  // the safe way out
  return true;
}

TEST(Check, BugCheckCountsFailuresAndLetsTheCallerRecover) {
  const uint64_t before = BugCheckFailures().load();
  EXPECT_TRUE(Guarded(1, 2));
  EXPECT_EQ(BugCheckFailures().load(), before);
  EXPECT_FALSE(Guarded(3, 2));
  EXPECT_FALSE(Guarded(4, 2));  // logged once a second per site, counted every time
  EXPECT_EQ(BugCheckFailures().load(), before + 2);
}

TEST(Check, DcheckIsOffInReleaseBuilds) {
  int evaluated = 0;
  CELLAR_DCHECK(++evaluated > 0);
#ifdef NDEBUG
  EXPECT_EQ(evaluated, 0);
#else
  EXPECT_EQ(evaluated, 1);
#endif
}

}  // namespace
}  // namespace cellar
