// Redis-style glob matching for SCAN MATCH and PSUBSCRIBE: * ? [abc] [^a-z] and \ escapes.
#pragma once

#include <string_view>

namespace cellar {

bool GlobMatch(std::string_view pattern, std::string_view text, bool nocase = false);

}  // namespace cellar
