// Structured logs: one logfmt line per event ("ts=... level=info tid=... msg=... key=value").
// Call sites write `LOG_INFO("msg=listening proto=resp port={}", port)`; values with spaces are
// quoted by the caller. Secrets (keys, tokens) are never logged.
#pragma once

#include <spdlog/spdlog.h>

namespace cellar {

// Sets the pattern and level once at start-up. level: trace|debug|info|warn|error.
void InitLogging(const std::string& level);

}  // namespace cellar

#define LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define LOG_INFO(...) spdlog::info(__VA_ARGS__)
#define LOG_WARN(...) spdlog::warn(__VA_ARGS__)
#define LOG_ERROR(...) spdlog::error(__VA_ARGS__)
