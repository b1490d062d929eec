// ReplyWriter: appends RESP2 or RESP3 replies to an output buffer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/numbers.h"

namespace cellar::resp {

class ReplyWriter {
 public:
  ReplyWriter(std::string* out, int proto) : out_(out), proto_(proto) {}
  int proto() const { return proto_; }
  void set_proto(int proto) { proto_ = proto; }

  void Simple(std::string_view s) { Line('+', s); }
  // An error line cannot hold CR or LF; like Redis, they become spaces.
  void Error(std::string_view s) {
    out_->push_back('-');
    size_t start = out_->size();
    out_->append(s);
    for (size_t i = start; i < out_->size(); ++i) {
      if ((*out_)[i] == '\r' || (*out_)[i] == '\n') (*out_)[i] = ' ';
    }
    out_->append("\r\n");
  }
  void Int(int64_t v) {
    out_->push_back(':');
    AppendInt(*out_, v);
    out_->append("\r\n");
  }
  void Bulk(std::string_view s) {
    out_->push_back('$');
    AppendInt(*out_, static_cast<int64_t>(s.size()));
    out_->append("\r\n");
    out_->append(s);
    out_->append("\r\n");
  }
  void Null() { out_->append(proto_ >= 3 ? "_\r\n" : "$-1\r\n"); }
  void NullArray() { out_->append(proto_ >= 3 ? "_\r\n" : "*-1\r\n"); }
  void Array(size_t n) { Header('*', n); }
  void Map(size_t n) {
    if (proto_ >= 3) {
      Header('%', n);
    } else {
      Header('*', 2 * n);
    }
  }
  void Set(size_t n) { Header(proto_ >= 3 ? '~' : '*', n); }
  // Out-of-band data (pub/sub confirmations and messages): a push in RESP3, an array in RESP2.
  void Push(size_t n) { Header(proto_ >= 3 ? '>' : '*', n); }
  void Double(std::string_view formatted) {
    if (proto_ >= 3) {
      Line(',', formatted);
    } else {
      Bulk(formatted);
    }
  }
  // Long text (INFO): a verbatim string in RESP3, a bulk string in RESP2.
  void Verbatim(std::string_view text) {
    if (proto_ < 3) return Bulk(text);
    out_->push_back('=');
    AppendInt(*out_, static_cast<int64_t>(text.size() + 4));
    out_->append("\r\ntxt:");
    out_->append(text);
    out_->append("\r\n");
  }

 private:
  void Line(char type, std::string_view s) {
    out_->push_back(type);
    out_->append(s);
    out_->append("\r\n");
  }
  void Header(char type, size_t n) {
    out_->push_back(type);
    AppendInt(*out_, static_cast<int64_t>(n));
    out_->append("\r\n");
  }
  std::string* out_;
  int proto_;
};

}  // namespace cellar::resp
