// A minimal synchronous RESP2 client: send a command as an array of bulk strings, read one reply.
// Enough for the CLI's AUTH, GET, SET and DEL; not a general Redis client.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cli/net.h"

namespace cellar::cli {

struct RespReply {
  enum class Type { kSimple, kError, kInteger, kBulk, kNull, kArray };
  Type type = Type::kNull;
  std::string str;  // kSimple, kError (without the '-'), kBulk
  int64_t integer = 0;
  std::vector<RespReply> elements;  // kArray
};

// Parses one reply from the front of in. Returns the bytes consumed, 0 if in holds only part of a
// reply, or -1 if the bytes are not RESP.
int64_t ParseRespReply(std::string_view in, RespReply* out);

// Encodes a command as RESP (an array of bulk strings).
std::string EncodeRespCommand(const std::vector<std::string>& args);

class RespClient {
 public:
  RespClient(std::string host, uint16_t port);

  void Connect();  // throws CliError when the server is not reachable
  // Sends args and waits for the reply; throws CliError on I/O or protocol errors. Error replies
  // are returned, not thrown: the caller knows what they mean.
  RespReply Command(const std::vector<std::string>& args);

 private:
  TimedConnection conn_;
  std::string in_;  // received bytes not yet parsed
};

}  // namespace cellar::cli
