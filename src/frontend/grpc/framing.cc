#include "frontend/grpc/framing.h"

namespace cellar::grpc {

StatusOr<std::string_view> UnaryMessage(std::string_view body) {
  if (body.size() < kPrefixBytes) {
    return Status(Code::kInvalidArgument, body.empty() ? "missing request message"
                                                       : "truncated gRPC message prefix");
  }
  const auto flag = static_cast<uint8_t>(body[0]);
  if (flag == 1) {
    return Status(Code::kUnimplemented,
                  "compressed messages are not supported (grpc-accept-encoding: identity)");
  }
  if (flag != 0) return Status(Code::kInvalidArgument, "invalid gRPC message flag");
  const uint32_t len = *DeclaredLength(body);
  if (len > kMaxWireMessage) {
    return Status(Code::kResourceExhausted, "request message larger than 10486000 bytes");
  }
  if (body.size() - kPrefixBytes < len) {
    return Status(Code::kInvalidArgument, "request message shorter than its length prefix");
  }
  if (body.size() - kPrefixBytes > len) {
    return Status(Code::kInvalidArgument, "more than one request message on a unary call");
  }
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
  for (char ch : s) {
    const auto c = static_cast<uint8_t>(ch);
    if (c >= 0x20 && c <= 0x7E && c != '%') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

WireStatus ToWire(const Status& st) {
  WireStatus w;
  w.message = st.message();
  switch (st.code()) {
    case Code::kOk: w.code = GrpcCode::kOk; break;
    case Code::kNotFound:
      w.code = GrpcCode::kNotFound;
      if (w.message.empty()) w.message = "cache not found";
      break;
    case Code::kAlreadyExists: w.code = GrpcCode::kAlreadyExists; break;
    case Code::kInvalidArgument:
    case Code::kSyntax: w.code = GrpcCode::kInvalidArgument; break;
    case Code::kWrongType:
      w.code = GrpcCode::kFailedPrecondition;
      if (w.message.empty()) w.message = "the item holds a different type";
      break;
    case Code::kNotInteger:
      w.code = GrpcCode::kFailedPrecondition;
      if (w.message.empty()) w.message = "the value is not a base-10 64-bit integer";
      break;
    case Code::kNotFloat:
      w.code = GrpcCode::kFailedPrecondition;
      if (w.message.empty()) w.message = "the value is not a number";
      break;
    case Code::kOverflow:
      w.code = GrpcCode::kFailedPrecondition;
      if (w.message.empty()) w.message = "increment would overflow a 64-bit integer";
      break;
    case Code::kOutOfMemory:
      w.code = GrpcCode::kResourceExhausted;
      if (w.message.empty()) w.message = "the server's memory limit is reached";
      break;
    case Code::kTooLarge:
      w.code = GrpcCode::kResourceExhausted;
      // A collection element's limit names itself (Tenancy::Describe).
      w.err = w.message.starts_with("Element size") ? "element_size_limit_exceeded"
                                                     : "item_size_limit_exceeded";
      if (w.message.empty()) w.message = "item size limit exceeded";
      break;
    case Code::kUnauthenticated:
      w.code = GrpcCode::kUnauthenticated;
      if (w.message.empty()) w.message = "invalid or missing authorization token";
      break;
    case Code::kPermissionDenied: w.code = GrpcCode::kPermissionDenied; break;
    case Code::kFailedPrecondition: w.code = GrpcCode::kFailedPrecondition; break;
    case Code::kResourceExhausted: w.code = GrpcCode::kResourceExhausted; break;
    case Code::kUnavailable: w.code = GrpcCode::kUnavailable; break;
    case Code::kDeadlineExceeded:
      w.code = GrpcCode::kDeadlineExceeded;
      if (w.message.empty()) w.message = "deadline exceeded before the call ran";
      break;
    case Code::kUnimplemented: w.code = GrpcCode::kUnimplemented; break;
    case Code::kInternal: w.code = GrpcCode::kInternal; break;
  }
  return w;
}

}  // namespace cellar::grpc
