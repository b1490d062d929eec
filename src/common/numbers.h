// Strict number parsing and formatting with Redis's rules, shared by every front-end.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cellar {

// Base-10 int64: optional '-', digits, no spaces, no '+', no leading zeros, no overflow.
std::optional<int64_t> ParseInt64(std::string_view s);
// A finite or infinite double as strtold reads it; no spaces, no NaN, nothing trailing.
std::optional<long double> ParseLongDouble(std::string_view s);
// Human form used by INCRBYFLOAT: %.17Lf with trailing zeros (and a bare '.') removed.
std::string FormatLongDouble(long double v);
// Appends the decimal form of v to out.
void AppendInt(std::string& out, int64_t v);

}  // namespace cellar
