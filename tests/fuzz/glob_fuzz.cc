// libFuzzer target for glob matching (SCAN/KEYS MATCH, PSUBSCRIBE), where both the pattern and
// the text are a client's. Checked:
//   * GlobMatch agrees with a plain memoized recursive matcher written here from the semantics
//     (whenever that one is cheap: text up to 2 KiB);
//   * GlobMatchBudget with a fixed budget returns within it: its work stays under the matcher's
//     linear bound (so kTooComplex only where that bound exceeds the budget), a result other
//     than kTooComplex is GlobMatch's, and the same call with exactly the work it took gives the
//     same result, with one unit less kTooComplex.
// Byte 0: bit 0 nocase; bits 1-3 repeat the text 2^k times (up to 64 KiB), bits 4-5 the pattern
// 2^k times, to reach long texts and segments over several 64-bit words from small inputs.
// Byte 1: the pattern's length; then the pattern, then the text.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/glob.h"
#include "fuzz_check.h"

namespace {

constexpr uint64_t kBudget = uint64_t{1} << 18;
constexpr size_t kMaxText = 64 * 1024;

// The matcher's documented bound on the work it charges (glob.cc): linear in the text for a
// fixed pattern, with the bit-parallel search's words per text character on top.
uint64_t WorkBound(uint64_t p, uint64_t n) { return 64 + 400 * p + (40 + (p + 63) / 64) * n; }

char Fold(char c, bool nocase) {
  return nocase ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c;
}

// Whether the single-character token at pat[pi] (not '*') accepts c; *next is set past it.
bool RefToken(std::string_view pat, size_t pi, char c, bool nocase, size_t* next) {
  const char x = Fold(c, nocase);
  if (pat[pi] == '?') {
    *next = pi + 1;
    return true;
  }
  if (pat[pi] == '\\' && pi + 1 < pat.size()) {
    *next = pi + 2;
    return Fold(pat[pi + 1], nocase) == x;
  }
  if (pat[pi] != '[') {
    *next = pi + 1;
    return Fold(pat[pi], nocase) == x;
  }
  size_t q = pi + 1;
  const bool negate = q < pat.size() && pat[q] == '^';
  if (negate) ++q;
  bool hit = false;
  while (q < pat.size() && pat[q] != ']') {
    char lo = pat[q], hi = pat[q];
    if (pat[q] == '\\' && q + 1 < pat.size()) {
      lo = hi = pat[q + 1];
      q += 2;
    } else if (q + 2 < pat.size() && pat[q + 1] == '-' && pat[q + 2] != ']') {
      hi = pat[q + 2];
      q += 3;
    } else {
      ++q;
    }
    lo = Fold(lo, nocase);
    hi = Fold(hi, nocase);
    if (lo > hi) std::swap(lo, hi);
    hit = hit || (x >= lo && x <= hi);
  }
  *next = q < pat.size() ? q + 1 : q;
  return hit != negate;
}

// Matches pat[pi..] against text[ti..]: '*' takes nothing or one more character.
struct Reference {
  std::string_view pat, text;
  bool nocase;
  std::vector<int8_t> memo;  // (pi, ti) -> -1 unknown, 0, 1

  bool Match(size_t pi, size_t ti) {
    if (pi == pat.size()) return ti == text.size();
    int8_t& known = memo[pi * (text.size() + 1) + ti];
    if (known >= 0) return known;
    bool result;
    size_t next = 0;
    if (pat[pi] == '*') {
      result = Match(pi + 1, ti) || (ti < text.size() && Match(pi, ti + 1));
    } else {
      result =
          ti < text.size() && RefToken(pat, pi, text[ti], nocase, &next) && Match(next, ti + 1);
    }
    known = result;
    return result;
  }
};

std::string Repeat(std::string_view s, size_t times, size_t cap) {
  std::string out;
  for (size_t i = 0; i < times && out.size() < cap; ++i) out.append(s);
  if (out.size() > cap) out.resize(cap);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using cellar::GlobResult;
  if (size < 2) return 0;
  const bool nocase = data[0] & 1;
  const size_t text_times = size_t{1} << ((data[0] >> 1) & 7);
  const size_t pattern_times = size_t{1} << ((data[0] >> 4) & 3);
  const std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
  const size_t pattern_size = std::min<size_t>(data[1], rest.size());
  const std::string pattern = Repeat(rest.substr(0, pattern_size), pattern_times, SIZE_MAX);
  const std::string text = Repeat(rest.substr(pattern_size), text_times, kMaxText);
  const uint64_t bound = WorkBound(pattern.size(), text.size());

  uint64_t budget = kBudget;
  const GlobResult result = cellar::GlobMatchBudget(pattern, text, nocase, &budget);
  const uint64_t spent = kBudget - budget;
  if (result == GlobResult::kTooComplex) {
    FUZZ_CHECK(budget == 0);
    FUZZ_CHECK(bound >= kBudget);
  } else {
    FUZZ_CHECK(spent >= 1 && spent <= bound);
    FUZZ_CHECK((result == GlobResult::kMatch) == cellar::GlobMatch(pattern, text, nocase));
    budget = spent;
    FUZZ_CHECK(cellar::GlobMatchBudget(pattern, text, nocase, &budget) == result);
    FUZZ_CHECK(budget == 0);
    budget = spent - 1;
    FUZZ_CHECK(cellar::GlobMatchBudget(pattern, text, nocase, &budget) == GlobResult::kTooComplex);
    FUZZ_CHECK(budget == 0);
  }

  // The reference's recursion is as deep as pattern + text, and its memo their product.
  if (text.size() <= 2048 && (pattern.size() + 1) * (text.size() + 1) <= (size_t{1} << 18)) {
    Reference ref{pattern, text, nocase, {}};
    ref.memo.assign((pattern.size() + 1) * (text.size() + 1), -1);
    FUZZ_CHECK(cellar::GlobMatch(pattern, text, nocase) == ref.Match(0, 0));
  }
  return 0;
}
