#include "common/glob.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <random>
#include <string>

namespace cellar {
namespace {

// The work GlobMatchBudget charges for a match, with a budget that cannot run out.
uint64_t Cost(std::string_view pattern, std::string_view text, bool nocase = false) {
  uint64_t budget = UINT64_MAX;
  GlobMatchBudget(pattern, text, nocase, &budget);
  return UINT64_MAX - budget;
}

TEST(Glob, Basics) {
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("*", "anything"));
  EXPECT_TRUE(GlobMatch("h?llo", "hello"));
  EXPECT_FALSE(GlobMatch("h?llo", "hllo"));
  EXPECT_TRUE(GlobMatch("h*llo", "heeeello"));
  EXPECT_TRUE(GlobMatch("h[ae]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[ae]llo", "hillo"));
  EXPECT_TRUE(GlobMatch("h[^e]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[^e]llo", "hello"));
  EXPECT_TRUE(GlobMatch("h[a-c]llo", "hbllo"));
  EXPECT_TRUE(GlobMatch("a\\*b", "a*b"));
  EXPECT_FALSE(GlobMatch("a\\*b", "axb"));
  EXPECT_TRUE(GlobMatch("user:*:name", "user:42:name"));
  EXPECT_FALSE(GlobMatch("user:*:name", "user:42:age"));
  EXPECT_TRUE(GlobMatch("HELLO", "hello", /*nocase=*/true));
}

TEST(Glob, Literals) {
  EXPECT_TRUE(GlobMatch("", ""));
  EXPECT_FALSE(GlobMatch("", "a"));
  EXPECT_FALSE(GlobMatch("a", ""));
  EXPECT_TRUE(GlobMatch("abc", "abc"));
  EXPECT_FALSE(GlobMatch("abc", "abcd"));
  EXPECT_FALSE(GlobMatch("abcd", "abc"));
  EXPECT_FALSE(GlobMatch("abc", "abC"));
  EXPECT_TRUE(GlobMatch(std::string_view("a\0b", 3), std::string_view("a\0b", 3)));
  EXPECT_FALSE(GlobMatch(std::string_view("a\0b", 3), "a"));
}

TEST(Glob, Star) {
  EXPECT_TRUE(GlobMatch("**", ""));
  EXPECT_TRUE(GlobMatch("a*", "a"));
  EXPECT_TRUE(GlobMatch("a*", "abc"));
  EXPECT_FALSE(GlobMatch("a*", "ba"));
  EXPECT_TRUE(GlobMatch("*a", "ba"));
  EXPECT_FALSE(GlobMatch("*a", "ab"));
  EXPECT_TRUE(GlobMatch("*b*", "abc"));
  EXPECT_FALSE(GlobMatch("*d*", "abc"));
  EXPECT_TRUE(GlobMatch("a**b", "ab"));
  EXPECT_TRUE(GlobMatch("a***b", "axxb"));
  EXPECT_TRUE(GlobMatch("*a*b*c*", "xaxbxcx"));
  EXPECT_FALSE(GlobMatch("*a*b*c*", "xcxbxax"));
  // The middle segment's leftmost match must leave room for the suffix, which may overlap it.
  EXPECT_TRUE(GlobMatch("*ab*ab", "abab"));
  EXPECT_FALSE(GlobMatch("*ab*ab", "aba"));
  EXPECT_TRUE(GlobMatch("a*a", "aa"));
  EXPECT_FALSE(GlobMatch("a*a", "a"));
  EXPECT_TRUE(GlobMatch("ab*ba", "abba"));
  EXPECT_FALSE(GlobMatch("ab*ba", "aba"));
  EXPECT_TRUE(GlobMatch("*aab", "aaaab"));
  EXPECT_TRUE(GlobMatch("*a?b*", "xxacbyy"));
}

TEST(Glob, QuestionMark) {
  EXPECT_TRUE(GlobMatch("?", "x"));
  EXPECT_FALSE(GlobMatch("?", ""));
  EXPECT_FALSE(GlobMatch("?", "xy"));
  EXPECT_TRUE(GlobMatch("??", "xy"));
  EXPECT_TRUE(GlobMatch("*?", "x"));
  EXPECT_FALSE(GlobMatch("*??", "x"));
  EXPECT_TRUE(GlobMatch("?*?", "xy"));
  EXPECT_TRUE(GlobMatch("?", "*"));
  EXPECT_TRUE(GlobMatch("?", "\xff"));
}

TEST(Glob, Classes) {
  EXPECT_TRUE(GlobMatch("[abc]", "b"));
  EXPECT_FALSE(GlobMatch("[abc]", "d"));
  EXPECT_FALSE(GlobMatch("[abc]", "ab"));
  EXPECT_TRUE(GlobMatch("[^abc]", "d"));
  EXPECT_FALSE(GlobMatch("[^abc]", "a"));
  EXPECT_FALSE(GlobMatch("[^abc]", ""));
  EXPECT_TRUE(GlobMatch("[a-z]", "q"));
  EXPECT_FALSE(GlobMatch("[a-z]", "Q"));
  EXPECT_TRUE(GlobMatch("[^a-z]", "Q"));
  EXPECT_TRUE(GlobMatch("[a-cx-z]", "y"));
  EXPECT_FALSE(GlobMatch("[a-cx-z]", "m"));
  // A range given backwards is the same range.
  EXPECT_TRUE(GlobMatch("[z-a]", "q"));
  EXPECT_FALSE(GlobMatch("[z-a]", "-"));
  EXPECT_TRUE(GlobMatch("[5-1]", "3"));
  // '-' first, or after a range, is itself.
  EXPECT_TRUE(GlobMatch("[-a]", "-"));
  EXPECT_TRUE(GlobMatch("[a-c-e]", "-"));
  EXPECT_TRUE(GlobMatch("[a-c-e]", "e"));
  EXPECT_FALSE(GlobMatch("[a-c-e]", "d"));
  EXPECT_TRUE(GlobMatch("[--z]", "a"));  // a range from '-' itself
  // '*' and '?' are plain inside a class.
  EXPECT_TRUE(GlobMatch("[*?]", "*"));
  EXPECT_FALSE(GlobMatch("[*?]", "x"));
  EXPECT_TRUE(GlobMatch("a[*]*", "a*xyz"));
  // "[]" is empty and matches nothing; "[^]" matches any one character.
  EXPECT_FALSE(GlobMatch("[]", "a"));
  EXPECT_FALSE(GlobMatch("[]a]", "]a]"));
  EXPECT_TRUE(GlobMatch("[^]", "a"));
  EXPECT_TRUE(GlobMatch("[^]x", "]x"));
  EXPECT_TRUE(GlobMatch("[ab]*[cd]", "a--d"));
  EXPECT_TRUE(GlobMatch("[\x80-\x90]", "\x85"));
  EXPECT_FALSE(GlobMatch("[\x80-\x90]", "a"));
}

TEST(Glob, Escapes) {
  EXPECT_TRUE(GlobMatch("\\?", "?"));
  EXPECT_FALSE(GlobMatch("\\?", "x"));
  EXPECT_TRUE(GlobMatch("\\[a]", "[a]"));
  EXPECT_TRUE(GlobMatch("\\\\", "\\"));
  EXPECT_TRUE(GlobMatch("\\a", "a"));  // an escaped ordinary character is itself
  EXPECT_TRUE(GlobMatch("*\\*", "abc*"));
  EXPECT_FALSE(GlobMatch("*\\*", "abc"));
  // Inside a class: an escaped ']' does not close it, an escaped '-' is no range.
  EXPECT_TRUE(GlobMatch("[\\]]", "]"));
  EXPECT_TRUE(GlobMatch("[a\\-z]", "-"));
  EXPECT_TRUE(GlobMatch("[a\\-z]", "z"));
  EXPECT_FALSE(GlobMatch("[a\\-z]", "b"));
  EXPECT_TRUE(GlobMatch("[\\^a]", "^"));
  EXPECT_TRUE(GlobMatch("[\\\\]", "\\"));
}

TEST(Glob, UnterminatedAndTrailing) {
  // An unterminated '[' is a class running to the end of the pattern.
  EXPECT_TRUE(GlobMatch("[abc", "b"));
  EXPECT_FALSE(GlobMatch("[abc", "["));
  EXPECT_TRUE(GlobMatch("x[a-c", "xb"));
  EXPECT_FALSE(GlobMatch("a[", "a"));   // an empty class
  EXPECT_FALSE(GlobMatch("a[", "a["));  // still empty
  EXPECT_TRUE(GlobMatch("[^", "x"));    // negated and empty: any one character
  EXPECT_TRUE(GlobMatch("[a-", "-"));   // too short for a range
  EXPECT_TRUE(GlobMatch("[\\", "\\"));  // a '\' with nothing to escape is itself
  EXPECT_TRUE(GlobMatch("*[*", "xy*"));
  // A trailing '\' is itself.
  EXPECT_TRUE(GlobMatch("a\\", "a\\"));
  EXPECT_FALSE(GlobMatch("a\\", "a"));
  EXPECT_TRUE(GlobMatch("*\\", "xyz\\"));
}

TEST(Glob, NoCase) {
  EXPECT_TRUE(GlobMatch("hello", "HeLLo", true));
  EXPECT_FALSE(GlobMatch("hello", "HeLLo", false));
  EXPECT_TRUE(GlobMatch("H*O", "hello", true));
  EXPECT_TRUE(GlobMatch("*LL*", "hello", true));
  EXPECT_TRUE(GlobMatch("[A-Z]", "q", true));
  EXPECT_TRUE(GlobMatch("[a-z]", "Q", true));
  EXPECT_FALSE(GlobMatch("[^a-z]", "Q", true));
  EXPECT_TRUE(GlobMatch("[ABC]", "b", true));
  EXPECT_TRUE(GlobMatch("\\A", "a", true));
  EXPECT_FALSE(GlobMatch("[a-z]", "1", true));
}

// Where this matcher has always differed from Redis's stringmatchlen; kept as it was.
TEST(Glob, KeepsItsOwnEdgeCases) {
  // Redis reads "a-]" as the range a..']' and goes on past the ']'.
  EXPECT_TRUE(GlobMatch("[a-]", "-"));
  EXPECT_TRUE(GlobMatch("[a-]", "a"));
  EXPECT_FALSE(GlobMatch("[a-]", "^"));
  // Redis compares an escaped class item exactly even under nocase.
  EXPECT_TRUE(GlobMatch("[\\A]", "a", true));
  // Redis swaps a reversed range before folding, which makes [Z-a] empty under nocase.
  EXPECT_TRUE(GlobMatch("[Z-a]", "m", true));
  // Redis matches no non-empty pattern against an empty text.
  EXPECT_TRUE(GlobMatch("*", ""));
}

// Segments long enough for the bit-parallel search, over one and several 64-bit words.
TEST(Glob, LongSegments) {
  std::string text(5000, 'a');
  std::string seg = "b" + std::string(70, '?') + "[cd]" + std::string(60, 'e');
  EXPECT_FALSE(GlobMatch("*" + seg + "*", text));
  text.replace(3000, 1, "b");
  text.replace(3071, 1, "d");
  text.replace(3072, 60, std::string(60, 'e'));
  EXPECT_TRUE(GlobMatch("*" + seg + "*", text));
  EXPECT_TRUE(GlobMatch("*" + seg + "*a", text));
  EXPECT_FALSE(GlobMatch("*" + seg + "*b", text));
  EXPECT_TRUE(GlobMatch("*B*" + seg + "*", "B" + text, false));
  EXPECT_FALSE(GlobMatch("*B*" + seg + "*", text + "B", false));
  std::string upper = text;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(GlobMatch("*" + seg + "*", upper, true));
  EXPECT_FALSE(GlobMatch("*" + seg + "*", upper, false));
  // Two long segments: the second must be found after the first.
  const std::string seg2 = "[^a]" + std::string(20, '?') + "z";
  EXPECT_FALSE(GlobMatch("*" + seg + "*" + seg2 + "*", text));
  EXPECT_TRUE(GlobMatch("*" + seg + "*" + seg2 + "*", text + "x" + std::string(20, 'q') + "z"));
  EXPECT_FALSE(GlobMatch("*" + seg2 + "*" + seg + "*", text + "x" + std::string(20, 'q') + "z"));
}

// For random long segments and texts: "*SEG*" matches exactly when SEG matches some window of
// the text token for token. The first goes through the search (bit-parallel for most of these
// sizes), the second through the plain anchored compare.
TEST(Glob, SearchAgreesWithAnchoredCompare) {
  static const char* const kTokens[] = {"a",     "b",   "?",      "[ab]", "[^a]",
                                        "[b-c]", "\\*", "[\\]x]", "[a-]", "A"};
  std::mt19937 rng(12345);
  int matches = 0;
  for (int round = 0; round < 300; ++round) {
    const int tokens = 1 + static_cast<int>(rng() % (round % 3 == 0 ? 140 : 30));
    std::string seg;
    for (int i = 0; i < tokens; ++i) seg += kTokens[rng() % 10];
    const char* const kText = "ab*]-cA";
    const int alphabet = 2 + static_cast<int>(rng() % 6);
    std::string text(200 + rng() % 1500, 'a');
    for (char& c : text) c = kText[rng() % alphabet];
    const bool nocase = rng() % 2;
    bool any_window = false;
    for (size_t i = 0; i + tokens <= text.size() && !any_window; ++i) {
      any_window = GlobMatch(seg, std::string_view(text).substr(i, tokens), nocase);
    }
    ASSERT_EQ(GlobMatch("*" + seg + "*", text, nocase), any_window) << seg << " / " << text;
    matches += any_window;
  }
  EXPECT_GT(matches, 20);  // both outcomes are exercised
  EXPECT_LT(matches, 280);
}

// The case: a 100 KB key against a 10,000-character pattern. The budget shows the work
// is linear, without timing anything.
TEST(Glob, PathologicalPatternsStayLinear) {
  const std::string text(100'000, 'a');
  const std::string pattern = "*" + std::string(10'000, 'a') + "b";
  uint64_t budget = 1'000'000;
  EXPECT_EQ(GlobMatchBudget(pattern, text, false, &budget), GlobResult::kNoMatch);
  EXPECT_GT(budget, 900'000u);  // one compare of the suffix, not one per start
  EXPECT_FALSE(GlobMatch(pattern, text));

  // The same as a middle segment: a search, ceil(10,001 / 64) = 157 words per text character.
  const std::string middle = pattern + "*";
  budget = 1'000'000;
  EXPECT_EQ(GlobMatchBudget(middle, text, false, &budget), GlobResult::kTooComplex);
  EXPECT_EQ(budget, 0u);
  budget = 100'000'000;
  EXPECT_EQ(GlobMatchBudget(middle, text, false, &budget), GlobResult::kNoMatch);
  EXPECT_GT(budget, 100'000'000u - 157u * 100'000u - 500'000u);

  // Many stars: each segment is found by the next character, whatever the text's length.
  EXPECT_FALSE(GlobMatch("*a*a*a*a*a*a*a*a*a*b", text));
  EXPECT_LT(Cost("*a*a*a*a*a*a*a*a*a*b", text), 1000u);
  std::string stars;
  for (int i = 0; i < 5000; ++i) stars += "*a";
  EXPECT_LT(Cost(stars + "*b*", text), 1'000'000u);
  EXPECT_LT(Cost(stars + "*b", text), 1'000'000u);
  // A short segment that almost matches everywhere.
  EXPECT_LT(Cost("*aaaaaab*", text), 8u * 100'000u + 1000u);
}

TEST(Glob, BudgetIsHonoured) {
  const std::string text = "user:1234:session:abcdef:name";
  const std::string pattern = "user:*:s?ss[h-j]on:*:name";
  ASSERT_TRUE(GlobMatch(pattern, text));
  const uint64_t cost = Cost(pattern, text);
  ASSERT_GT(cost, 1u);
  // Exactly the cost: the same answer, nothing left. One less: too complex, and nothing left.
  uint64_t budget = cost;
  EXPECT_EQ(GlobMatchBudget(pattern, text, false, &budget), GlobResult::kMatch);
  EXPECT_EQ(budget, 0u);
  budget = cost - 1;
  EXPECT_EQ(GlobMatchBudget(pattern, text, false, &budget), GlobResult::kTooComplex);
  EXPECT_EQ(budget, 0u);
  // An empty budget refuses even a trivial match; every call costs at least one unit.
  budget = 0;
  EXPECT_EQ(GlobMatchBudget("", "", false, &budget), GlobResult::kTooComplex);
  budget = 1;
  EXPECT_EQ(GlobMatchBudget("", "", false, &budget), GlobResult::kMatch);
  EXPECT_EQ(budget, 0u);
  // One budget across calls, as for the keys of one command.
  budget = 10 * cost;
  int matched = 0;
  GlobResult result = GlobResult::kMatch;
  while (result != GlobResult::kTooComplex) {
    result = GlobMatchBudget(pattern, text, false, &budget);
    matched += result == GlobResult::kMatch;
  }
  EXPECT_EQ(matched, 10);
  EXPECT_EQ(budget, 0u);
  // The budgeted and plain calls agree.
  budget = 1'000'000;
  EXPECT_EQ(GlobMatchBudget("user:*:x", text, false, &budget), GlobResult::kNoMatch);
  EXPECT_EQ(GlobMatchBudget("USER:*", text, true, &budget), GlobResult::kMatch);
}

}  // namespace
}  // namespace cellar
