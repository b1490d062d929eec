#include "server/admin_util.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace cellar::server {

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      out += buf;
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string LabelEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

HttpResponse JsonResponse(int status, std::string body) {
  return {status, "application/json", std::move(body)};
}

HttpResponse ErrorResponse(int status, std::string_view msg) {
  return JsonResponse(status, "{\"error\":\"" + JsonEscape(msg) + "\"}");
}

int HttpStatusOf(const Status& st) {
  switch (st.code()) {
    case Code::kOk:
      return 200;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
      return 409;
    case Code::kInvalidArgument:
      return 400;
    case Code::kUnauthenticated:
      return 401;
    case Code::kPermissionDenied:
      return 403;
    case Code::kResourceExhausted:
      return 429;
    case Code::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

std::optional<std::string> QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    std::string raw(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    std::replace(raw.begin(), raw.end(), '+', ' ');  // the query-string rule, before decoding
    std::string out;
    if (!PercentDecode(raw, &out)) return raw;  // a malformed escape stays as sent
    return out;
  }
  return std::nullopt;
}

std::string_view RawPath(const HttpRequest& req) {
  std::string_view t = req.target;
  return t.substr(0, t.find('?'));
}

std::optional<std::string> PathSegment(const HttpRequest& req, std::string_view prefix,
                                       std::string_view suffix) {
  std::string_view raw = RawPath(req);
  if (raw.size() <= prefix.size() + suffix.size() || raw.substr(0, prefix.size()) != prefix ||
      raw.substr(raw.size() - suffix.size()) != suffix) {
    return std::nullopt;
  }
  std::string_view segment = raw.substr(prefix.size(), raw.size() - prefix.size() - suffix.size());
  if (!suffix.empty() && segment.find('/') != std::string_view::npos) return std::nullopt;
  std::string out;
  if (!PercentDecode(segment, &out) || out.empty()) return std::nullopt;
  return out;
}

namespace {

// A recursive-descent reader over one flat object; `pos_` is where the next token starts.
class FlatJsonReader {
 public:
  explicit FlatJsonReader(std::string_view text) : s_(text) {}

  StatusOr<std::vector<std::pair<std::string, std::string>>> Read() {
    std::vector<std::pair<std::string, std::string>> out;
    Space();
    if (!Eat('{')) return Fail("expected a JSON object");
    Space();
    if (Eat('}')) return End(std::move(out));
    for (;;) {
      Space();
      std::string name, value;
      if (Peek() != '"' || !String(&name)) return Fail("expected a member name in quotes");
      Space();
      if (!Eat(':')) return Fail("expected ':'");
      Space();
      if (Peek() == '"') {
        if (!String(&value)) return Fail("bad string");
      } else if (Peek() == '{' || Peek() == '[') {
        return Fail("values must be numbers or strings, not objects or arrays");
      } else {
        const size_t start = pos_;
        while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) ||
                                    s_[pos_] == '-' || s_[pos_] == '+' || s_[pos_] == '.')) {
          ++pos_;
        }
        value = std::string(s_.substr(start, pos_ - start));
        if (value.empty()) return Fail("expected a value");
      }
      out.emplace_back(std::move(name), std::move(value));
      Space();
      if (Eat(',')) continue;
      if (Eat('}')) return End(std::move(out));
      return Fail("expected ',' or '}'");
    }
  }

 private:
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool Eat(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }
  void Space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  Status Fail(std::string_view what) const {
    return Status(Code::kInvalidArgument,
                  "bad JSON body at byte " + std::to_string(pos_) + ": " + std::string(what));
  }
  StatusOr<std::vector<std::pair<std::string, std::string>>> End(
      std::vector<std::pair<std::string, std::string>> out) {
    Space();
    if (pos_ != s_.size()) return Fail("text after the object");
    return out;
  }
  // A string literal; \uXXXX is decoded to UTF-8 (surrogate pairs are not needed for limit
  // names and values, and are refused).
  bool String(std::string* out) {
    if (!Eat('"')) return false;
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) return false;
      const char e = s_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out->push_back(e);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          if (pos_ + 4 > s_.size()) return false;
          unsigned cp = 0;
          for (int i = 0; i < 4; ++i) {
            const char h = s_[pos_++];
            cp <<= 4;
            if (h >= '0' && h <= '9')
              cp |= static_cast<unsigned>(h - '0');
            else if (h >= 'a' && h <= 'f')
              cp |= static_cast<unsigned>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F')
              cp |= static_cast<unsigned>(h - 'A' + 10);
            else
              return false;
          }
          if (cp >= 0xd800 && cp <= 0xdfff) return false;
          if (cp < 0x80) {
            out->push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
            out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
          } else {
            out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
            out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
          }
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

StatusOr<std::vector<std::pair<std::string, std::string>>> ParseFlatJsonObject(
    std::string_view text) {
  return FlatJsonReader(text).Read();
}

}  // namespace cellar::server
