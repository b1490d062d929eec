// Redis-style glob matching for SCAN MATCH, KEYS and PSUBSCRIBE: * ? [abc] [^a-z] and \ escapes.
// Both the pattern and the text come from clients and the match runs on an event loop, so the
// matcher never backtracks (see glob.cc for the bound), and GlobMatchBudget caps the work
// outright for callers that match one pattern against many keys.
#pragma once

#include <cstdint>
#include <string_view>

namespace cellar {

enum class GlobResult { kMatch, kNoMatch, kTooComplex };

bool GlobMatch(std::string_view pattern, std::string_view text, bool nocase = false);

// GlobMatch with a cap on the work: *budget is decremented by the work done, and the match
// gives up with kTooComplex, leaving *budget at 0, once the work would exceed it. A unit is one
// pattern byte compared with a text character (or walked to find where a '*' is), one 64-token
// word of a bit-parallel search step, or one of the 256 entries of such a search's table; every
// call costs at least one. The cost is deterministic, so one budget can be shared across all
// the keys a command matches.
GlobResult GlobMatchBudget(std::string_view pattern, std::string_view text, bool nocase,
                           uint64_t* budget);

}  // namespace cellar
