#include "frontend/resp/metrics.h"

#include "frontend/resp/commands.h"

namespace cellar::resp {

ThreadMetrics& MetricsOf(uint32_t thread) {
  static ThreadMetrics metrics[kMaxThreads];
  return metrics[thread % kMaxThreads];
}

size_t CommandIndex(std::string_view name) {
  const auto& all = AllCommands();
  // The table is small and sorted; binary search keeps this off the profile.
  size_t lo = 0, hi = all.size();
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (all[mid]->name < name) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < all.size() && all[lo]->name == name ? lo % kMaxCommandIds : kMaxCommandIds - 1;
}

}  // namespace cellar::resp
