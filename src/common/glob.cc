#include "common/glob.h"

#include <cctype>

namespace cellar {
namespace {

char Fold(char c, bool nocase) {
  return nocase ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c;
}

// Matches one [...] class at p (just past '['); advances p past ']'. Returns whether c matched.
bool MatchClass(std::string_view pat, size_t& p, char c, bool nocase) {
  bool negate = false, matched = false;
  if (p < pat.size() && pat[p] == '^') {
    negate = true;
    ++p;
  }
  while (p < pat.size() && pat[p] != ']') {
    if (pat[p] == '\\' && p + 1 < pat.size()) {
      ++p;
      if (Fold(pat[p], nocase) == Fold(c, nocase)) matched = true;
      ++p;
    } else if (p + 2 < pat.size() && pat[p + 1] == '-' && pat[p + 2] != ']') {
      char lo = Fold(pat[p], nocase), hi = Fold(pat[p + 2], nocase), x = Fold(c, nocase);
      if (lo > hi) std::swap(lo, hi);
      if (x >= lo && x <= hi) matched = true;
      p += 3;
    } else {
      if (Fold(pat[p], nocase) == Fold(c, nocase)) matched = true;
      ++p;
    }
  }
  if (p < pat.size()) ++p;  // past ']'
  return negate ? !matched : matched;
}

}  // namespace

// Iterative matcher with single-star backtracking: linear in practice, never exponential.
bool GlobMatch(std::string_view pat, std::string_view s, bool nocase) {
  size_t p = 0, t = 0;
  size_t star_p = std::string_view::npos, star_t = 0;
  while (t < s.size()) {
    if (p < pat.size()) {
      char pc = pat[p];
      if (pc == '*') {
        while (p < pat.size() && pat[p] == '*') ++p;
        if (p == pat.size()) return true;
        star_p = p;
        star_t = t;
        continue;
      }
      if (pc == '?') {
        ++p;
        ++t;
        continue;
      }
      if (pc == '[') {
        size_t q = p + 1;
        if (MatchClass(pat, q, s[t], nocase)) {
          p = q;
          ++t;
          continue;
        }
      } else {
        if (pc == '\\' && p + 1 < pat.size()) {
          if (Fold(pat[p + 1], nocase) == Fold(s[t], nocase)) {
            p += 2;
            ++t;
            continue;
          }
        } else if (Fold(pc, nocase) == Fold(s[t], nocase)) {
          ++p;
          ++t;
          continue;
        }
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    t = ++star_t;
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

}  // namespace cellar
