#include "cluster/etcd_test_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "cluster/etcd_client.h"

namespace cellar::cluster {

namespace {

using namespace std::chrono_literals;

// Whether etcd at url answers a Range, asked with a client of our own (bounded: about 2 s).
bool Answers(const std::string& url) {
  boost::asio::io_context io;
  auto probe = EtcdClient::Create(io, EtcdOptions{.endpoints = {url}});
  etcdserverpb::RangeRequest req;
  req.set_key("probe");
  std::optional<bool> ok;
  probe->Range(req, 500ms, [&ok](StatusOr<etcdserverpb::RangeResponse> r) { ok = r.ok(); });
  const auto end = std::chrono::steady_clock::now() + 2s;
  while (!ok.has_value() && std::chrono::steady_clock::now() < end) io.run_one_for(20ms);
  probe->Close();
  io.run_for(1s);  // what Close cancelled and posts; returns once nothing is left
  return ok.value_or(false);
}

}  // namespace

std::string EtcdBinary() {
  const char* env = std::getenv("CELLAR_ETCD_BIN");
  return env != nullptr ? env : "/usr/bin/etcd";
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

EtcdTestServer::~EtcdTestServer() {
  Stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string EtcdTestServer::Start() {
  if (access(EtcdBinary().c_str(), X_OK) != 0) {
    return "etcd not found at " + EtcdBinary() +
           ": install Debian's etcd-server (scripts/setup.sh does), or set CELLAR_ETCD_BIN";
  }
  char tmpl[] = "/tmp/cellar-etcd-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return "mkdtemp failed";
  dir_ = tmpl;
  std::string why;
  for (int attempt = 0; attempt < 3; ++attempt) {
    client_port_ = FreePort();
    peer_port_ = FreePort();
    if (client_port_ <= 0 || peer_port_ <= 0) return "no free port";
    why = Launch();
    if (why.empty()) return "";
    Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_ + "/data", ec);  // a half-made member on other ports
  }
  return why;
}

std::string EtcdTestServer::Restart() {
  Stop();
  if (dir_.empty()) return "Restart before Start";
  // The ports were ours; something else may have bound one meanwhile (rare): a few tries.
  std::string why;
  for (int attempt = 0; attempt < 3; ++attempt) {
    why = Launch();
    if (why.empty()) return "";
    Stop();
    usleep(200'000);
  }
  return why;
}

void EtcdTestServer::Kill() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

void EtcdTestServer::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  // Bounded: 5 s for a clean exit, then SIGKILL.
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    usleep(50'000);
  }
  Kill();
}

std::string EtcdTestServer::LogTail() const {
  std::ifstream in(dir_ + "/etcd.log");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string s = ss.str();
  return s.size() > 3000 ? s.substr(s.size() - 3000) : s;
}

std::string EtcdTestServer::Launch() {
  url_ = "http://127.0.0.1:" + std::to_string(client_port_);
  const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> args = {EtcdBinary(),
                                   "--name=t",
                                   "--data-dir=" + dir_ + "/data",
                                   "--listen-client-urls=" + url_,
                                   "--advertise-client-urls=" + url_,
                                   "--listen-peer-urls=" + peer_url,
                                   "--initial-advertise-peer-urls=" + peer_url,
                                   "--initial-cluster=t=" + peer_url,
                                   "--unsafe-no-fsync",
                                   "--logger=zap",
                                   "--log-outputs=stderr"};
  const std::string log = dir_ + "/etcd.log";
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  if (pid_ < 0) {
    pid_ = -1;
    return "fork failed";
  }
  // Ready when a Range answers; bounded: 15 s.
  const auto end = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < end) {
    int wstatus = 0;
    if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return "etcd exited early; its log:\n" + LogTail();
    }
    if (Answers(url_)) return "";
    usleep(100'000);
  }
  return "etcd did not answer within 15 s; its log:\n" + LogTail();
}

}  // namespace cellar::cluster
