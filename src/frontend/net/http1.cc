#include "frontend/net/http1.h"

#include <openssl/sha.h>

#include <algorithm>
#include <charconv>

namespace cellar::net {

namespace {

constexpr size_t kMaxChunkLine = 1024;
constexpr size_t kMaxTrailers = 8 * 1024;

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

const std::string* Http1Request::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

bool Http1Request::HeaderHas(std::string_view name, std::string_view token) const {
  return AnyListItem(name, [token](std::string_view item) { return IEquals(item, token); });
}

bool Http1Request::AnyListItem(std::string_view name,
                               const std::function<bool(std::string_view)>& fn) const {
  for (const auto& [k, v] : headers) {
    if (k != name) continue;
    std::string_view rest = v;
    for (;;) {
      const size_t comma = rest.find(',');
      const std::string_view item = Trim(rest.substr(0, comma));
      if (!item.empty() && fn(item)) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

void Http1Parser::Reset() {
  req_.method.clear();
  req_.path.clear();
  req_.query.clear();
  req_.minor = 1;
  req_.headers.clear();
  req_.body.clear();
  if (req_.body.capacity() > (64 << 10)) std::string().swap(req_.body);
  req_.keep_alive = true;
  state_ = State::kHead;
  head_.clear();
  line_.clear();
  remaining_ = 0;
  trailer_bytes_ = 0;
  status_ = 0;
  reason_.clear();
}

Http1Parser::Result Http1Parser::Fail(int status, std::string reason) {
  status_ = status;
  reason_ = std::move(reason);
  state_ = State::kDone;
  return Result::kError;
}

Http1Parser::Result Http1Parser::ParseHead() {
  std::string_view head = head_;
  head.remove_suffix(4);  // the blank line's CRLFCRLF
  // Request line: METHOD SP request-target SP HTTP/1.x
  const size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != line.npos) {
    return Fail(400, "malformed request line");
  }
  const std::string_view method = line.substr(0, sp1);
  if (!std::all_of(method.begin(), method.end(), IsTokenChar)) {
    return Fail(400, "malformed request method");
  }
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (version == "HTTP/1.1") {
    req_.minor = 1;
  } else if (version == "HTTP/1.0") {
    req_.minor = 0;
  } else if (version.starts_with("HTTP/")) {
    return Fail(505, "only HTTP/1.0 and HTTP/1.1 are served here (or HTTP/2 with prior knowledge)");
  } else {
    return Fail(400, "malformed request line");
  }
  // absolute-form (a proxy's): drop the scheme and authority.
  if (target.starts_with("http://") || target.starts_with("https://")) {
    const size_t slash = target.find('/', target.find("//") + 2);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  if (target.empty() || target.front() != '/') return Fail(400, "malformed request target");
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Fail(400, "malformed request target");
    }
  }
  const size_t q = target.find('?');
  req_.method.assign(method);
  req_.path.assign(target.substr(0, q));
  req_.query.assign(q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
  const size_t fragment = req_.query.find('#');
  if (fragment != std::string::npos) req_.query.resize(fragment);

  // Header fields.
  std::string_view rest = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
  while (!rest.empty()) {
    const size_t end = rest.find("\r\n");
    const std::string_view field = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    if (field.empty()) return Fail(400, "malformed header field");
    if (field.front() == ' ' || field.front() == '\t') {
      return Fail(400, "obsolete line folding is not accepted");
    }
    const size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) return Fail(400, "malformed header field");
    const std::string_view name = field.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), IsTokenChar)) {
      return Fail(400, "malformed header field name");
    }
    const std::string_view value = Trim(field.substr(colon + 1));
    for (char c : value) {
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
        return Fail(400, "control character in a header value");
      }
    }
    if (req_.headers.size() >= limits_.max_headers) return Fail(431, "too many header fields");
    std::string lname(name);
    for (char& c : lname) c = Lower(c);
    req_.headers.emplace_back(std::move(lname), std::string(value));
  }

  // Framing: Transfer-Encoding chunked, or Content-Length, never both (request smuggling).
  const std::string* te = req_.Header("transfer-encoding");
  std::optional<uint64_t> length;
  for (const auto& [k, v] : req_.headers) {
    if (k != "content-length") continue;
    uint64_t n = 0;
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size()) {
      return Fail(400, "malformed Content-Length");
    }
    if (length && *length != n) return Fail(400, "conflicting Content-Length fields");
    length = n;
  }
  if (te != nullptr) {
    if (length) return Fail(400, "both Transfer-Encoding and Content-Length");
    if (req_.minor == 0) return Fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    // Every Transfer-Encoding field together (a list split over lines is one list, RFC 9110
    // 5.3): exactly one coding, chunked. Anything else is refused, however it is spread.
    size_t codings = 0;
    const bool other = req_.AnyListItem("transfer-encoding", [&codings](std::string_view c) {
      ++codings;
      return !IEquals(c, "chunked");
    });
    if (codings != 1 || other) {
      return Fail(501, "only the chunked transfer coding is accepted");
    }
  }
  if (length && *length > limits_.max_body_bytes) {
    return Fail(413, "request body of " + std::to_string(*length) + " bytes is over the limit of " +
                         std::to_string(limits_.max_body_bytes));
  }
  if (req_.minor == 0) {
    req_.keep_alive = req_.HeaderHas("connection", "keep-alive");
  } else {
    req_.keep_alive = !req_.HeaderHas("connection", "close");
  }
  if (te != nullptr) {
    state_ = State::kChunkSize;
  } else {
    remaining_ = length.value_or(0);
    state_ = remaining_ > 0 ? State::kBody : State::kDone;
    if (remaining_ > 0) req_.body.reserve(static_cast<size_t>(std::min<uint64_t>(remaining_, 1 << 20)));
  }
  return Result::kNeedMore;
}

Http1Parser::Result Http1Parser::Feed(std::string_view bytes, size_t* consumed) {
  const size_t total = bytes.size();
  auto done = [&](Result r) {
    *consumed = total - bytes.size();
    return r;
  };
  if (state_ == State::kDone && status_ != 0) return done(Result::kError);
  while (state_ != State::kDone) {
    switch (state_) {
      case State::kHead: {
        // Leading empty lines before a request line are tolerated (RFC 9112 2.2), skipped
        // where they are: never copied.
        if (head_.empty()) {
          while (bytes.starts_with("\r\n")) bytes.remove_prefix(2);
        }
        if (bytes.empty()) return done(Result::kNeedMore);
        // Only what can end the head is taken: a blank line found across feeds.
        const size_t before = head_.size();
        const size_t look = before >= 3 ? before - 3 : 0;
        const size_t take = std::min(bytes.size(), limits_.max_head_bytes + 4 - before);
        head_.append(bytes.substr(0, take));
        const size_t end = head_.find("\r\n\r\n", look);
        // Lines end in CRLF: a bare LF in the head is refused, not waited on (a head of such
        // lines would otherwise never end).
        const size_t head_end = end == std::string::npos ? head_.size() : end + 4;
        for (size_t i = head_.find('\n', before); i < head_end; i = head_.find('\n', i + 1)) {
          if (i == 0 || head_[i - 1] != '\r') {
            bytes.remove_prefix(take);
            return done(Fail(400, "a line of the request head ends in a bare LF (lines end in CRLF)"));
          }
        }
        if (end == std::string::npos) {
          bytes.remove_prefix(take);
          if (head_.size() >= limits_.max_head_bytes + 4) {
            return done(Fail(431, "request head over " + std::to_string(limits_.max_head_bytes) +
                                      " bytes"));
          }
          // Leading empty lines before a request line are tolerated (RFC 9112 2.2).
          while (head_.starts_with("\r\n")) head_.erase(0, 2);
          return done(Result::kNeedMore);
        }
        head_.resize(end + 4);
        bytes.remove_prefix(end + 4 - before);
        while (head_.starts_with("\r\n")) head_.erase(0, 2);
        if (head_.size() < 4 || head_ == "\r\n\r\n") {
          state_ = State::kHead;
          head_.clear();
          continue;
        }
        if (ParseHead() == Result::kError) return done(Result::kError);
        break;
      }
      case State::kBody: {
        const size_t k = static_cast<size_t>(std::min<uint64_t>(remaining_, bytes.size()));
        req_.body.append(bytes.substr(0, k));
        bytes.remove_prefix(k);
        remaining_ -= k;
        if (remaining_ > 0) return done(Result::kNeedMore);
        state_ = State::kDone;
        break;
      }
      case State::kChunkSize:
      case State::kTrailers: {
        const size_t nl = bytes.find('\n');
        const size_t take = nl == std::string_view::npos ? bytes.size() : nl + 1;
        line_.append(bytes.substr(0, take));
        bytes.remove_prefix(take);
        if (state_ == State::kTrailers) trailer_bytes_ += take;
        if (line_.size() > kMaxChunkLine + 2 || trailer_bytes_ > kMaxTrailers) {
          return done(Fail(400, "malformed chunked body"));
        }
        if (nl == std::string_view::npos) return done(Result::kNeedMore);
        if (line_.size() < 2 || line_[line_.size() - 2] != '\r') {
          return done(Fail(400, "malformed chunked body"));
        }
        std::string_view l(line_);
        l.remove_suffix(2);
        if (state_ == State::kTrailers) {
          if (l.empty()) state_ = State::kDone;  // trailer fields are ignored
          line_.clear();
          break;
        }
        l = l.substr(0, l.find(';'));  // chunk extensions are ignored
        l = Trim(l);
        uint64_t n = 0;
        const auto [p, ec] = std::from_chars(l.data(), l.data() + l.size(), n, 16);
        if (l.empty() || ec != std::errc() || p != l.data() + l.size()) {
          return done(Fail(400, "malformed chunk size"));
        }
        line_.clear();
        if (n == 0) {
          state_ = State::kTrailers;
          break;
        }
        if (n > limits_.max_body_bytes || req_.body.size() + n > limits_.max_body_bytes) {
          return done(Fail(413, "request body over the limit of " +
                                    std::to_string(limits_.max_body_bytes) + " bytes"));
        }
        remaining_ = n;
        state_ = State::kChunkData;
        break;
      }
      case State::kChunkData: {
        const size_t k = static_cast<size_t>(std::min<uint64_t>(remaining_, bytes.size()));
        req_.body.append(bytes.substr(0, k));
        bytes.remove_prefix(k);
        remaining_ -= k;
        if (remaining_ > 0) return done(Result::kNeedMore);
        state_ = State::kChunkDataEnd;
        remaining_ = 2;
        break;
      }
      case State::kChunkDataEnd: {
        while (remaining_ > 0 && !bytes.empty()) {
          if (bytes.front() != (remaining_ == 2 ? '\r' : '\n')) {
            return done(Fail(400, "malformed chunked body"));
          }
          bytes.remove_prefix(1);
          --remaining_;
        }
        if (remaining_ > 0) return done(Result::kNeedMore);
        state_ = State::kChunkSize;
        break;
      }
      case State::kDone:
        break;
    }
  }
  return done(Result::kDone);
}

void AppendBase64(std::string& out, std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  out.reserve(out.size() + (n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (i + 1 < n ? uint32_t{p[i + 1]} << 8 : 0) |
                       (i + 2 < n ? uint32_t{p[i + 2]} : 0);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < n ? kAlphabet[v & 63] : '=');
  }
}

bool PercentDecode(std::string_view in, std::string* out, bool plus_space) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+' && plus_space) {
      out->push_back(' ');
    } else if (c != '%') {
      out->push_back(c);
    } else {
      if (i + 2 >= in.size()) return false;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    }
  }
  return true;
}

std::optional<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view q) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    const std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    std::string k, v;
    if (!PercentDecode(part.substr(0, eq), &k, true)) return std::nullopt;
    if (eq != std::string_view::npos && !PercentDecode(part.substr(eq + 1), &v, true)) {
      return std::nullopt;
    }
    out.emplace_back(std::move(k), std::move(v));
  }
  return out;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string WebSocketAccept(std::string_view key) {
  std::string s(Trim(key));
  s.append(kWebSocketGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  std::string out;
  AppendBase64(out, std::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
  return out;
}

size_t WsFrameBytes(const char* data, size_t size) {
  if (size < 2) return 0;
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  const size_t mask = (p[1] & 0x80) != 0 ? 4 : 0;
  uint64_t len = p[1] & 0x7f;
  if (len == 126) {
    if (size < 4) return 0;
    return 4 + mask + ((size_t{p[2]} << 8) | p[3]);
  }
  if (len == 127) {
    if (size < 10) return 0;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
    // Past what a frame may be (ParseWsFrame refuses it): as if the header were not in.
    if (len > (uint64_t{1} << 40)) return 0;
    return 10 + mask + static_cast<size_t>(len);
  }
  return 2 + mask + static_cast<size_t>(len);
}

WsParse ParseWsFrame(char* data, size_t size, size_t max_payload, WsFrame* frame,
                     size_t* consumed, uint16_t* close_code) {
  auto fail = [&](uint16_t code) {
    *close_code = code;
    return WsParse::kError;
  };
  if (size < 2) return WsParse::kNeedMore;
  const auto* p = reinterpret_cast<unsigned char*>(data);
  const bool fin = (p[0] & 0x80) != 0;
  if ((p[0] & 0x70) != 0) return fail(kWsProtocolError);  // no extension was negotiated
  const uint8_t opcode = p[0] & 0x0f;
  const bool control = (opcode & 0x08) != 0;
  if ((opcode > 2 && opcode < 8) || opcode > 10) return fail(kWsProtocolError);
  if ((p[1] & 0x80) == 0) return fail(kWsProtocolError);  // client frames must be masked
  uint64_t len = p[1] & 0x7f;
  size_t off = 2;
  if (len == 126) {
    if (size < 4) return WsParse::kNeedMore;
    len = (uint64_t{p[2]} << 8) | p[3];
    off = 4;
  } else if (len == 127) {
    if (size < 10) return WsParse::kNeedMore;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
    if (len >> 63) return fail(kWsProtocolError);
    off = 10;
  }
  if (control && (len > 125 || !fin)) return fail(kWsProtocolError);
  if (len > max_payload) return fail(kWsTooBig);
  if (size < off + 4 + len) return WsParse::kNeedMore;
  const unsigned char* mask = p + off;
  char* payload = data + off + 4;
  for (uint64_t i = 0; i < len; ++i) payload[i] = static_cast<char>(payload[i] ^ mask[i & 3]);
  frame->fin = fin;
  frame->opcode = opcode;
  frame->payload = std::string_view(payload, static_cast<size_t>(len));
  *consumed = off + 4 + static_cast<size_t>(len);
  return WsParse::kFrame;
}

void AppendWsFrame(std::string& out, WsOpcode opcode, std::string_view payload) {
  char head[10];
  size_t h = 0;
  head[h++] = static_cast<char>(0x80 | static_cast<uint8_t>(opcode));
  const uint64_t n = payload.size();
  if (n < 126) {
    head[h++] = static_cast<char>(n);
  } else if (n <= 0xffff) {
    head[h++] = static_cast<char>(126);
    head[h++] = static_cast<char>(n >> 8);
    head[h++] = static_cast<char>(n & 0xff);
  } else {
    head[h++] = static_cast<char>(127);
    for (int i = 7; i >= 0; --i) head[h++] = static_cast<char>((n >> (8 * i)) & 0xff);
  }
  out.append(head, h);
  out.append(payload);
}

void AppendWsClose(std::string& out, uint16_t code, std::string_view reason) {
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xff));
  reason = reason.substr(0, 123);
  // Cut at a character boundary: the reason must stay UTF-8.
  while (!reason.empty() && !IsUtf8(reason)) reason.remove_suffix(1);
  payload.append(reason);
  AppendWsFrame(out, WsOpcode::kClose, payload);
}

uint16_t WsCloseReply(std::string_view payload) {
  if (payload.empty()) return kWsNormal;
  if (payload.size() == 1) return kWsProtocolError;
  const uint16_t code = static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                              static_cast<uint8_t>(payload[1]));
  const bool sendable = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                        (code >= 3000 && code <= 4999);
  if (!sendable) return kWsProtocolError;
  if (!IsUtf8(payload.substr(2))) return kWsBadData;
  return code;
}

}  // namespace cellar::net
