// server::Process: started and stopped in process (what `cellar serve` does between its
// signals), and the configurations it refuses before anything listens.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <sstream>
#include <string>

#include "server/server.h"

namespace cellar::server {
namespace {

std::string TestDir(const char* name) {
  const std::string dir = ::testing::TempDir() + "/process_test_" + name + "_" +
                          std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  return dir;
}

Config SmallConfig(const std::string& dir) {
  Config cfg;
  cfg.data_dir = dir;
  cfg.resp_port = cfg.api_port = cfg.admin_port = 0;
  cfg.threads = 2;
  cfg.memory_limit = 64 << 20;
  cfg.dev_no_auth = true;
  cfg.log_level = "warn";
  return cfg;
}

// One RESP request on a fresh connection; the reply's first bytes.
std::string Ask(uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    char buf[256];
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) reply.assign(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return reply;
}

TEST(Process, StartsServesAndStopsFromAnotherThread) {
  const std::string dir = TestDir("serve");
  Process process(SmallConfig(dir));
  ASSERT_EQ(process.Start(), 0);
  std::ifstream ports(dir + "/ports.json");
  std::stringstream json;
  json << ports.rdbuf();
  std::smatch m;
  const std::string text = json.str();
  ASSERT_TRUE(std::regex_search(text, m, std::regex("\"resp\":([0-9]+)"))) << text;
  const uint16_t resp_port = static_cast<uint16_t>(std::stoi(m[1]));
  auto run = std::async(std::launch::async, [&] { process.Run(); });
  EXPECT_EQ(Ask(resp_port, "*1\r\n$4\r\nPING\r\n"), "+PONG\r\n");
  EXPECT_EQ(Ask(resp_port, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"), "+OK\r\n");
  process.Stop();
  process.Stop();  // a second Stop is nothing more
  ASSERT_EQ(run.wait_for(std::chrono::seconds(20)), std::future_status::ready)
      << "Run did not return after Stop";
  run.get();
  std::filesystem::remove_all(dir);
}

TEST(Process, RefusesUnsafeConfigurationsBeforeListening) {
  const std::string dir = TestDir("refuse");
  Config dev = SmallConfig(dir);
  dev.bind = "0.0.0.0";  // --dev-no-auth beyond loopback
  EXPECT_EQ(Process(dev).Start(), 2);
  Config plain = SmallConfig(dir);
  plain.dev_no_auth = false;
  plain.bind = "0.0.0.0";  // plaintext beyond loopback, no --allow-plaintext-public
  Process refused(plain);
  EXPECT_EQ(refused.Start(), 2);
  refused.Stop();  // nothing was started: nothing to stop
  EXPECT_FALSE(std::filesystem::exists(dir + "/ports.json"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cellar::server
