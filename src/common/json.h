// Just enough JSON for the CLI (the admin API's answers, ports.json) and the admin API's
// request bodies: a tree of values, parsed strictly (RFC 8259), with a depth limit so hostile
// input cannot exhaust the stack.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cellar {

struct Json {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type = Type::kNull;
  bool boolean = false;
  std::string text;  // a string's value, or a number's literal text (kept exact for printing)
  std::vector<Json> items;                            // kArray
  std::vector<std::pair<std::string, Json>> members;  // kObject, in document order

  // The member called key, or nullptr (also when this is not an object).
  const Json* Find(std::string_view key) const;
  // The value as a non-negative integer, if it is a number written as one.
  std::optional<uint64_t> AsUint() const;
};

// The inside of a JSON string literal (quotes, backslashes and control bytes escaped).
std::string JsonEscape(std::string_view s);

// The parsed document, or nullopt when text is not exactly one valid JSON value (JSON text is
// UTF-8, RFC 8259 8.1: bytes that are not are refused, as they would be echoed in errors).
std::optional<Json> ParseJson(std::string_view text);

// Whether `s` is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or code points past
// U+10FFFF): JSON text, WebSocket text frames, JSON text values.
bool IsUtf8(std::string_view s);

}  // namespace cellar
