#include "common/check.h"

#include <chrono>

#include "common/logging.h"

namespace cellar {

std::atomic<uint64_t>& BugCheckFailures() {
  static std::atomic<uint64_t> failures{0};
  return failures;
}

void ReportBugCheck(const char* expr, const char* what, const char* file, int line,
                    std::atomic<int64_t>& last_log_ms) {
  BugCheckFailures().fetch_add(1, std::memory_order_relaxed);
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t last = last_log_ms.load(std::memory_order_relaxed);
  if (now - last < 1000 ||
      !last_log_ms.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    return;
  }
  LOG_ERROR("msg=\"bug check failed\" check=\"{}\" what=\"{}\" at={}:{}", expr, what, file, line);
}

}  // namespace cellar
