#include "server/config.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace cellar::server {

TEST(Config, ParseSize) {
  EXPECT_EQ(ParseSize("100"), 100u);
  EXPECT_EQ(ParseSize("8mb"), 8u << 20);
  EXPECT_EQ(ParseSize("2GiB"), 2ull << 30);
  EXPECT_EQ(ParseSize("4883kib"), 4883u * 1024);
  EXPECT_FALSE(ParseSize(""));
  EXPECT_FALSE(ParseSize("mb"));
  EXPECT_FALSE(ParseSize("12xb"));
  EXPECT_FALSE(ParseSize("99999999999999999999gb"));
}

}  // namespace cellar::server

namespace cellar::server {
namespace {

std::optional<int> Parse(std::vector<std::string> args, Config& c) {
  args.insert(args.begin(), "serve");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseServeArgs(static_cast<int>(argv.size()), argv.data(), c);
}

TEST(Config, MomentoLocalListensWhereMomentoLocalDoes) {
  Config c;
  ASSERT_EQ(Parse({"--momento-local"}, c), std::nullopt);
  EXPECT_TRUE(c.momento_local);
  EXPECT_TRUE(c.dev_no_auth);
  EXPECT_EQ(c.bind, "127.0.0.1");
  EXPECT_EQ(c.api_port, 8080);
  EXPECT_EQ(c.admin_port, 9090);
  EXPECT_EQ(c.resp_port, 0);  // momento-local has no RESP port: a free one

  Config given;
  ASSERT_EQ(Parse({"--momento-local", "--resp-port", "7000", "--api-port", "0"}, given),
            std::nullopt);
  EXPECT_EQ(given.resp_port, 7000);
  EXPECT_EQ(given.api_port, 0);

  Config plain;
  ASSERT_EQ(Parse({}, plain), std::nullopt);
  EXPECT_FALSE(plain.momento_local);
  EXPECT_FALSE(plain.dev_no_auth);
  EXPECT_EQ(plain.resp_port, 6379);
}

// What the SDK prefixes with cache., control. and token.: a host or host:port, nothing more.
TEST(Config, PublicEndpointIsAHostOrHostPort) {
  for (const char* ok : {"cellar.example.com", "cellar.test:8443", "127.0.0.1:8080"}) {
    Config e;
    EXPECT_EQ(Parse({"--public-endpoint", ok}, e), std::nullopt) << ok;
    EXPECT_EQ(e.public_endpoint, ok);
  }
  for (const char* bad : {"https://cellar.example.com", "cellar.example.com/path", "a b",
                          "host:", "host:123456", ".example.com", "host:80x"}) {
    Config e;
    EXPECT_EQ(Parse({"--public-endpoint", bad}, e), 2) << bad;
  }
}

}  // namespace
}  // namespace cellar::server
