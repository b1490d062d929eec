#include "cli/resp_client.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <charconv>

namespace cellar::cli {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr int kMaxDepth = 32;
constexpr int64_t kMaxBulk = 512LL * 1024 * 1024;  // Redis's own proto-max-bulk-len

// Reads a "\r\n"-terminated line starting at pos into *line; returns the position after it, 0 if
// incomplete.
std::size_t ReadLine(std::string_view in, std::size_t pos, std::string_view* line) {
  std::size_t end = in.find("\r\n", pos);
  if (end == std::string_view::npos) return 0;
  *line = in.substr(pos, end - pos);
  return end + 2;
}

bool ParseInt(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

// Returns bytes consumed from in[pos...] (relative to pos), 0 if incomplete, -1 if invalid.
int64_t Parse(std::string_view in, std::size_t pos, RespReply* out, int depth) {
  if (depth > kMaxDepth) return -1;
  if (pos >= in.size()) return 0;
  char type = in[pos];
  std::string_view line;
  std::size_t next = ReadLine(in, pos + 1, &line);
  if (next == 0) return 0;
  switch (type) {
    case '+':
      out->type = RespReply::Type::kSimple;
      out->str = std::string(line);
      return next - pos;
    case '-':
      out->type = RespReply::Type::kError;
      out->str = std::string(line);
      return next - pos;
    case ':':
      out->type = RespReply::Type::kInteger;
      return ParseInt(line, &out->integer) ? static_cast<int64_t>(next - pos) : -1;
    case '$': {
      int64_t len;
      if (!ParseInt(line, &len) || len < -1 || len > kMaxBulk) return -1;
      if (len == -1) {
        out->type = RespReply::Type::kNull;
        return next - pos;
      }
      if (in.size() < next + len + 2) return 0;
      if (in.substr(next + len, 2) != "\r\n") return -1;
      out->type = RespReply::Type::kBulk;
      out->str = std::string(in.substr(next, len));
      return next + len + 2 - pos;
    }
    case '*': {
      int64_t count;
      if (!ParseInt(line, &count) || count < -1 || count > 1024 * 1024) return -1;
      if (count == -1) {
        out->type = RespReply::Type::kNull;
        return next - pos;
      }
      out->type = RespReply::Type::kArray;
      std::size_t at = next;
      for (int64_t i = 0; i < count; ++i) {
        RespReply element;
        int64_t n = Parse(in, at, &element, depth + 1);
        if (n <= 0) return n;
        at += n;
        out->elements.push_back(std::move(element));
      }
      return at - pos;
    }
    default:
      return -1;
  }
}

}  // namespace

int64_t ParseRespReply(std::string_view in, RespReply* out) {
  *out = RespReply();
  return Parse(in, 0, out, 0);
}

std::string EncodeRespCommand(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& arg : args) {
    out += "$" + std::to_string(arg.size()) + "\r\n";
    out += arg;
    out += "\r\n";
  }
  return out;
}

RespClient::RespClient(std::string host, uint16_t port)
    : conn_(std::move(host), port, "the RESP port") {}

void RespClient::Connect() { conn_.Connect(); }

RespReply RespClient::Command(const std::vector<std::string>& args) {
  std::string request = EncodeRespCommand(args);
  error_code ec = conn_.Run(
      [&](auto handler) { asio::async_write(conn_.stream(), asio::buffer(request), handler); });
  if (ec) conn_.FailIo(ec);
  char buf[64 * 1024];
  while (true) {
    RespReply reply;
    int64_t n = ParseRespReply(in_, &reply);
    if (n < 0) throw CliError("the server sent a reply that is not RESP");
    if (n > 0) {
      in_.erase(0, n);
      return reply;
    }
    std::size_t got = 0;
    ec = conn_.Run([&](auto handler) {
      conn_.stream().async_read_some(asio::buffer(buf),
                                     [&got, handler](error_code ec, std::size_t n) mutable {
                                       got = n;
                                       handler(ec, n);
                                     });
    });
    if (ec) conn_.FailIo(ec);
    in_.append(buf, got);
  }
}

}  // namespace cellar::cli
