#include "common/numbers.h"

#include <gtest/gtest.h>

namespace cellar {

TEST(Numbers, ParseInt64) {
  EXPECT_EQ(ParseInt64("0"), 0);
  EXPECT_EQ(ParseInt64("-1"), -1);
  EXPECT_EQ(ParseInt64("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(ParseInt64("-9223372036854775808"), INT64_MIN);
  EXPECT_FALSE(ParseInt64("9223372036854775808"));
  EXPECT_FALSE(ParseInt64("-9223372036854775809"));
  EXPECT_FALSE(ParseInt64(""));
  EXPECT_FALSE(ParseInt64("-"));
  EXPECT_FALSE(ParseInt64("+1"));
  EXPECT_FALSE(ParseInt64(" 1"));
  EXPECT_FALSE(ParseInt64("01"));
  EXPECT_FALSE(ParseInt64("-0"));
  EXPECT_FALSE(ParseInt64("1a"));
  EXPECT_FALSE(ParseInt64("99999999999999999999999"));
}

TEST(Numbers, Double) {
  EXPECT_EQ(FormatLongDouble(*ParseLongDouble("10.5") + *ParseLongDouble("0.1")), "10.6");
  EXPECT_EQ(FormatLongDouble(3.0L), "3");
  EXPECT_EQ(FormatLongDouble(-0.0L), "0");
  EXPECT_FALSE(ParseLongDouble("nan"));
  EXPECT_FALSE(ParseLongDouble(" 1"));
  EXPECT_FALSE(ParseLongDouble("1x"));
  EXPECT_TRUE(ParseLongDouble("5.0e3"));
}

}  // namespace cellar
