// Glob matching without backtracking, because patterns and keys both come from clients and
// star backtracking is O(pattern * text) per key (`KEYS *aaaa...b` took seconds per 100 KB key).
//
// Every token but '*' matches exactly one character, so a pattern is fixed-length segments
// between runs of '*': the first segment must match at the start of the text, the last at the
// end, and each one between can take its leftmost match after the previous one (a later
// placement only leaves less room for the rest). A match is then an anchored compare at each
// end plus a left-to-right search per middle segment, and the searches scan disjoint stretches
// of the text. A search compares at each start (naive) when the segment is a few bytes or the
// whole search is small, and otherwise runs a bit-parallel Shift-And scan of ceil(tokens / 64)
// words per text character. The work is thus
//   O(len(pattern) + len(text) * ceil(longest middle segment's tokens / 64))
// with small constants: 100 KB against `*aaaa...(10,000)b*` is ~16M word steps, milliseconds.
// Segments over kMaxWords * 64 tokens are searched naively (their table would be too big to
// build per call); GlobMatchBudget is what bounds those.
//
// The semantics are the ones this matcher has always had (Redis's stringmatchlen, except where
// noted): a class item is a character, an escaped character, or a range lo-hi, folded under
// nocase (escaped items too; Redis compares those exactly) and then swapped if reversed (Redis
// swaps first), compared in `char` order; a '-' just before ']' is literal (Redis reads `a-]`
// as a range and keeps going); an unterminated '[' runs to the end of the pattern; a trailing
// '\' is literal; and `*` matches the empty text (Redis only matches "" against an empty text).
#include "common/glob.h"

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstring>
#include <utility>
#include <vector>

namespace cellar {
namespace {

constexpr size_t kNpos = std::string_view::npos;
// Widest Shift-And segment, in 64-bit words (65536 tokens): its table, built per search, is
// 256 * words * 8 bytes, up to 2 MiB.
constexpr size_t kMaxWords = 1024;
// Segments of at most this many pattern bytes are searched naively: at most this many units
// per start, cheaper than building a 2 KiB table.
constexpr size_t kNaiveMaxBytes = 8;
// And so are searches whose starts * bytes is at most this, so short keys stay cheap. Such a
// search costs at most sqrt(kNaiveMaxWork) / 2 * (starts + bytes) units, linear over a match.
constexpr uint64_t kNaiveMaxWork = 4096;

enum class Kind : uint8_t { kLiteral, kAny, kClass };

struct Token {
  Kind kind = Kind::kLiteral;
  bool negate = false;                    // [^...]
  char ch = 0;                            // kLiteral
  size_t items_begin = 0, items_end = 0;  // kClass: the items, pattern[begin, end)
  size_t next = 0;                        // pattern index just past the token
};

// The class item at pattern index p: a range lo..hi, or one character as lo == hi. Returns the
// index past it. The tests look at the whole pattern, not the class's end: that is how the
// class's extent was found, so walking from its first item always lands on its end.
size_t ClassItem(std::string_view pat, size_t p, char* lo, char* hi) {
  if (pat[p] == '\\' && p + 1 < pat.size()) {
    *lo = *hi = pat[p + 1];
    return p + 2;
  }
  if (p + 2 < pat.size() && pat[p + 1] == '-' && pat[p + 2] != ']') {
    *lo = pat[p];
    *hi = pat[p + 2];
    return p + 3;
  }
  *lo = *hi = pat[p];
  return p + 1;
}

// The token at pattern index p (< pat.size()), which is not a '*': segments never hold one.
Token Decode(std::string_view pat, size_t p) {
  Token tok;
  tok.next = p + 1;
  switch (pat[p]) {
    case '?':
      tok.kind = Kind::kAny;
      break;
    case '[': {
      tok.kind = Kind::kClass;
      size_t q = p + 1;
      if (q < pat.size() && pat[q] == '^') {
        tok.negate = true;
        ++q;
      }
      tok.items_begin = q;
      char lo, hi;
      while (q < pat.size() && pat[q] != ']') q = ClassItem(pat, q, &lo, &hi);
      tok.items_end = q;
      tok.next = q < pat.size() ? q + 1 : q;
      break;
    }
    case '\\':
      tok.ch = pat[p];  // a trailing '\' is itself
      if (p + 1 < pat.size()) {
        tok.ch = pat[p + 1];
        tok.next = p + 2;
      }
      break;
    default:
      tok.ch = pat[p];
      break;
  }
  return tok;
}

unsigned char Index(char c) { return static_cast<unsigned char>(c); }

// A one-byte token that Decode need not look at: a literal or '?'.
bool IsSimple(char c) { return c != '[' && c != '\\' && c != '*'; }

class Matcher {
 public:
  Matcher(std::string_view pattern, std::string_view text, bool nocase, uint64_t budget)
      : pat_(pattern), text_(text), nocase_(nocase), budget_(budget) {}

  GlobResult Run();
  uint64_t budget() const { return budget_; }

 private:
  // A maximal run of tokens without a '*': pattern[begin, end), matching `tokens` characters.
  struct Segment {
    size_t begin = 0, end = 0, tokens = 0;
  };

  // Charges work; once it would go over, the budget is 0 and every caller unwinds.
  bool Spend(uint64_t units) {
    if (units > budget_) {
      budget_ = 0;
      exhausted_ = true;
      return false;
    }
    budget_ -= units;
    return true;
  }
  char Fold(char c) const {
    return nocase_ ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c;
  }
  size_t SkipStars(size_t p) const {
    while (p < pat_.size() && pat_[p] == '*') ++p;
    return p;
  }
  // Whether the token at pattern index *p accepts folded text character x; moves *p past it.
  // Costs the token's bytes. The one-byte tokens are handled inline: they are most of them.
  bool Accepts(size_t* p, char x) {
    const char c = pat_[*p];
    if (!IsSimple(c)) return AcceptsDecoded(p, x);
    ++*p;
    return Spend(1) && (c == '?' || Fold(c) == x);
  }
  bool AcceptsDecoded(size_t* p, char x);
  Segment ScanSegment(size_t p);
  // The class item at q as a folded range (lo <= hi: a reversed range is swapped after
  // folding, as this matcher always did); returns where the next item starts.
  size_t FoldedItem(size_t q, char* lo, char* hi) const {
    q = ClassItem(pat_, q, lo, hi);
    *lo = Fold(*lo);
    *hi = Fold(*hi);
    if (*lo > *hi) std::swap(*lo, *hi);
    return q;
  }
  bool ClassAccepts(const Token& tok, char x) const;
  bool ClassSet(const Token& tok, uint64_t set[4]);
  bool MatchAt(const Segment& seg, size_t t);
  size_t Find(const Segment& seg, size_t from);
  size_t FindShiftAnd(const Segment& seg, size_t from, size_t words);

  std::string_view pat_, text_;
  bool nocase_;
  uint64_t budget_;
  bool exhausted_ = false;
};

Matcher::Segment Matcher::ScanSegment(size_t p) {
  Segment seg{p, p, 0};
  while (seg.end < pat_.size() && pat_[seg.end] != '*') {
    seg.end = IsSimple(pat_[seg.end]) ? seg.end + 1 : Decode(pat_, seg.end).next;
    ++seg.tokens;
  }
  Spend(seg.end - seg.begin);
  return seg;
}

// x is a folded text character. Each item is folded before a reversed range is swapped, and
// compared as `char`, whatever its signedness, as this matcher always did.
bool Matcher::ClassAccepts(const Token& tok, char x) const {
  for (size_t q = tok.items_begin; q < tok.items_end;) {
    char lo, hi;
    q = FoldedItem(q, &lo, &hi);
    if (x >= lo && x <= hi) return !tok.negate;
  }
  return tok.negate;
}

// The folded characters the class accepts, as a 256-bit set indexed by byte: ClassAccepts for
// every x at once, for the Shift-And table.
bool Matcher::ClassSet(const Token& tok, uint64_t set[4]) {
  std::fill(set, set + 4, 0);
  uint64_t work = 256;  // the caller's walk over the set
  for (size_t q = tok.items_begin; q < tok.items_end;) {
    char lo, hi;
    q = FoldedItem(q, &lo, &hi);
    for (int v = lo; v <= hi; ++v) {
      const unsigned char b = Index(static_cast<char>(v));
      set[b >> 6] |= 1ull << (b & 63);
    }
    work += static_cast<uint64_t>(hi - lo) + 1;
  }
  if (tok.negate) {
    for (int w = 0; w < 4; ++w) set[w] = ~set[w];
  }
  return Spend(work);
}

bool Matcher::AcceptsDecoded(size_t* p, char x) {
  const Token tok = Decode(pat_, *p);
  if (!Spend(tok.next - *p)) return false;
  *p = tok.next;
  return tok.kind == Kind::kLiteral ? Fold(tok.ch) == x : ClassAccepts(tok, x);
}

bool Matcher::MatchAt(const Segment& seg, size_t t) {
  for (size_t p = seg.begin; p < seg.end; ++t) {
    if (!Accepts(&p, Fold(text_[t]))) return false;
  }
  return true;
}

// The leftmost start at or after `from` where the segment matches, or kNpos.
size_t Matcher::Find(const Segment& seg, size_t from) {
  if (text_.size() - from < seg.tokens) return kNpos;
  const size_t starts = text_.size() - from - seg.tokens + 1;
  const size_t bytes = seg.end - seg.begin;
  const size_t words = (seg.tokens + 63) / 64;
  if (bytes <= kNaiveMaxBytes || starts <= kNaiveMaxWork / bytes || words > kMaxWords) {
    const size_t end = from + starts;
    // With a plain literal first, memchr finds the next start worth comparing at; the starts
    // passed over cost a unit each, as comparing at each would.
    const char lead = pat_[seg.begin];
    const bool skip = !nocase_ && IsSimple(lead) && lead != '?';
    for (size_t i = from; i < end; ++i) {
      if (skip) {
        const void* hit = std::memchr(text_.data() + i, lead, end - i);
        const size_t to = hit ? static_cast<const char*>(hit) - text_.data() : end;
        if (!Spend(to - i) || to == end) return kNpos;
        i = to;
      }
      if (MatchAt(seg, i)) return i;
      if (exhausted_) return kNpos;
    }
    return kNpos;
  }
  return FindShiftAnd(seg, from, words);
}

// Shift-And: bit j of `state` says the segment's first j + 1 tokens match the text ending at
// the current character; a new start enters as bit 0 at every character.
size_t Matcher::FindShiftAnd(const Segment& seg, size_t from, size_t words) {
  if (!Spend(256 * words + (seg.end - seg.begin))) return kNpos;
  // table[c * words + w]: the tokens (word w) that accept folded character c; then any[] (the
  // '?'s) and the state, `words` each. On the stack in the common one-word case.
  uint64_t one_word[258];
  std::vector<uint64_t> many;
  uint64_t* table = one_word;
  if (words == 1) {
    std::fill(std::begin(one_word), std::end(one_word), 0);
  } else {
    many.assign(258 * words, 0);
    table = many.data();
  }
  uint64_t* const any = table + 256 * words;
  uint64_t* const state = any + words;
  size_t j = 0;
  for (size_t p = seg.begin; p < seg.end; ++j) {
    const Token tok = Decode(pat_, p);
    p = tok.next;
    const size_t w = j / 64;
    const uint64_t bit = 1ull << (j % 64);
    if (tok.kind == Kind::kAny) {
      any[w] |= bit;
    } else if (tok.kind == Kind::kLiteral) {
      table[Index(Fold(tok.ch)) * words + w] |= bit;
    } else {
      uint64_t set[4];
      if (!ClassSet(tok, set)) return kNpos;
      for (size_t c = 0; c < 256; ++c) {
        if (set[c >> 6] >> (c & 63) & 1) table[c * words + w] |= bit;
      }
    }
  }
  const size_t top = (seg.tokens - 1) / 64;
  const uint64_t top_bit = 1ull << ((seg.tokens - 1) % 64);
  for (size_t i = from; i < text_.size(); ++i) {
    if (!Spend(words)) return kNpos;
    const uint64_t* row = table + Index(Fold(text_[i])) * words;
    uint64_t carry = 1;
    for (size_t w = 0; w < words; ++w) {
      const uint64_t d = state[w];
      state[w] = ((d << 1) | carry) & (row[w] | any[w]);
      carry = d >> 63;
    }
    if (state[top] & top_bit) return i + 1 - seg.tokens;
  }
  return kNpos;
}

GlobResult Matcher::Run() {
  if (!Spend(1)) return GlobResult::kTooComplex;
  const size_t n = text_.size();
  // The first segment is anchored at the start: it is compared as it is walked, so a text that
  // differs early (most keys, for a prefix pattern) costs no more than that.
  size_t p = 0, t = 0;
  while (p < pat_.size() && pat_[p] != '*') {
    if (t == n || !Accepts(&p, Fold(text_[t]))) {
      return exhausted_ ? GlobResult::kTooComplex : GlobResult::kNoMatch;
    }
    ++t;
  }
  if (p == pat_.size()) return t == n ? GlobResult::kMatch : GlobResult::kNoMatch;
  // Each later segment follows a run of '*'. The last (at the pattern's end) is anchored at the
  // text's end; the others take their leftmost match, which leaves the most room for the rest.
  for (p = SkipStars(p); p < pat_.size(); p = SkipStars(p)) {
    const Segment seg = ScanSegment(p);
    if (exhausted_) return GlobResult::kTooComplex;
    if (seg.end == pat_.size()) {
      if (n - t < seg.tokens) return GlobResult::kNoMatch;
      if (MatchAt(seg, n - seg.tokens)) return GlobResult::kMatch;
      return exhausted_ ? GlobResult::kTooComplex : GlobResult::kNoMatch;
    }
    const size_t at = Find(seg, t);
    if (at == kNpos) return exhausted_ ? GlobResult::kTooComplex : GlobResult::kNoMatch;
    t = at + seg.tokens;
    p = seg.end;
  }
  return GlobResult::kMatch;  // the pattern ends with '*'
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text, bool nocase) {
  return Matcher(pattern, text, nocase, UINT64_MAX).Run() == GlobResult::kMatch;
}

GlobResult GlobMatchBudget(std::string_view pattern, std::string_view text, bool nocase,
                           uint64_t* budget) {
  Matcher matcher(pattern, text, nocase, *budget);
  const GlobResult result = matcher.Run();
  *budget = matcher.budget();
  return result;
}

}  // namespace cellar
