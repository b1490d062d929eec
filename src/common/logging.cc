#include "common/logging.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace cellar {

void InitLogging(const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("cellar");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l tid=%t %v", spdlog::pattern_time_type::utc);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
}

}  // namespace cellar
