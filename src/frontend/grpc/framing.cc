#include "frontend/grpc/framing.h"

namespace cellar::grpc {

StatusOr<std::string_view> UnaryMessage(std::string_view body) {
  if (body.size() < kPrefixBytes) {
    return Error(body.empty() ? GrpcError::kMissingMessage : GrpcError::kTruncatedPrefix);
  }
  const auto flag = static_cast<uint8_t>(body[0]);
  if (flag == 1) return Error(GrpcError::kCompressed);
  if (flag != 0) return Error(GrpcError::kBadMessageFlag);
  const uint32_t len = *DeclaredLength(body);
  if (len > kMaxWireMessage) return Error(GrpcError::kMessageOverWireLimit);
  if (body.size() - kPrefixBytes < len) return Error(GrpcError::kShortMessage);
  if (body.size() - kPrefixBytes > len) return Error(GrpcError::kExtraMessage);
  return body.substr(kPrefixBytes, len);
}

std::optional<uint32_t> DeclaredLength(std::string_view b) {
  if (b.size() < kPrefixBytes) return std::nullopt;
  auto u = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(b[i])); };
  return (u(1) << 24) | (u(2) << 16) | (u(3) << 8) | u(4);
}

void AppendPrefix(std::string& out, size_t len) {
  const auto n = static_cast<uint32_t>(len);
  const char p[kPrefixBytes] = {0, static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                                static_cast<char>(n >> 8), static_cast<char>(n)};
  out.append(p, kPrefixBytes);
}

std::optional<int64_t> ParseTimeoutMillis(std::string_view v) {
  if (v.size() < 2 || v.size() > 9) return std::nullopt;
  int64_t n = 0;
  for (char c : v.substr(0, v.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  switch (v.back()) {
    case 'H': return n * 3'600'000;
    case 'M': return n * 60'000;
    case 'S': return n * 1000;
    case 'm': return n;
    case 'u': return ceil_div(n, 1000);
    case 'n': return ceil_div(n, 1'000'000);
    default: return std::nullopt;
  }
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    const auto c = static_cast<uint8_t>(ch);
    // A space that begins or ends the value is encoded too: HTTP/2 forbids a field value with
    // leading or trailing whitespace, and peers drop such a header.
    const bool edge_space = c == ' ' && (i == 0 || i + 1 == s.size());
    if (c >= 0x20 && c <= 0x7E && c != '%' && !edge_space) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace cellar::grpc
