#include "frontend/resp/metrics.h"

#include "frontend/resp/commands.h"

namespace cellar::resp {

ThreadMetrics& MetricsOf(uint32_t thread) {
  static ThreadMetrics metrics[kMaxThreads];
  return metrics[thread % kMaxThreads];
}

size_t CommandIndex(std::string_view name) {
  const CommandSpec* spec = FindCommand(name);
  return spec == nullptr ? kMaxCommandIds - 1 : spec->id % kMaxCommandIds;
}

}  // namespace cellar::resp
