#include "server/config.h"

#include <gtest/gtest.h>

namespace cellar::server {

TEST(Config, ParseSize) {
  EXPECT_EQ(ParseSize("100"), 100u);
  EXPECT_EQ(ParseSize("8mb"), 8u << 20);
  EXPECT_EQ(ParseSize("2GiB"), 2ull << 30);
  EXPECT_EQ(ParseSize("4883kib"), 4883u * 1024);
  EXPECT_FALSE(ParseSize(""));
  EXPECT_FALSE(ParseSize("mb"));
  EXPECT_FALSE(ParseSize("12xb"));
  EXPECT_FALSE(ParseSize("99999999999999999999gb"));
}

}  // namespace cellar::server
