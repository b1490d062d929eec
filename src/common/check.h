// Graded invariant checks (STYLE.md rule 4). Never on client input: a client's bad request
// is a Status with a clear message, not a failed check.
//   CELLAR_DCHECK(cond): debug builds only (NDEBUG: not evaluated). For invariants whose
//     check costs time on a hot path, or that the tests cover.
//   CELLAR_BUG_CHECK(cond, what): every build. A failure is a bug of ours that a release
//     server survives: it is logged (at most once a second per site) and counted
//     (BugCheckFailures(), exported on /metrics), and the expression's value is returned so
//     the caller can take its safe way out: `if (!CELLAR_BUG_CHECK(n <= size_, "...")) return;`
#pragma once

#include <atomic>
#include <cstdint>

namespace cellar {

// Bug checks that failed since start (every site together).
std::atomic<uint64_t>& BugCheckFailures();
// Logs one failure of `expr` at file:line (rate-limited per site by `last_log_ms`) and counts it.
void ReportBugCheck(const char* expr, const char* what, const char* file, int line,
                    std::atomic<int64_t>& last_log_ms);

}  // namespace cellar

#define CELLAR_BUG_CHECK(cond, what)                                                  \
  ([&]() -> bool {                                                                   \
    if (__builtin_expect(static_cast<bool>(cond), 1)) return true;                   \
    static std::atomic<int64_t> cellar_bug_check_last_log_ms{0};                     \
    ::cellar::ReportBugCheck(#cond, what, __FILE__, __LINE__, cellar_bug_check_last_log_ms); \
    return false;                                                                    \
  }())

#ifdef NDEBUG
#define CELLAR_DCHECK(cond) static_cast<void>(0)
#else
#include <cassert>
#define CELLAR_DCHECK(cond) assert(cond)
#endif
