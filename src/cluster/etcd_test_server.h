// Test support (never linked into the server): a real etcd for the cluster's integration tests.
// Debian's etcd-server (/usr/bin/etcd, or CELLAR_ETCD_BIN), one member on two free loopback
// ports (client and peer; the kernel picks them), data in a temp dir, --unsafe-no-fsync. It can
// be stopped and started again on the same ports with the same data, as a member that restarts.
#pragma once

#include <sys/types.h>

#include <string>

namespace cellar::cluster {

// The etcd binary the tests run: $CELLAR_ETCD_BIN, else /usr/bin/etcd.
std::string EtcdBinary();

// A loopback port nothing listens on right now (the kernel picks it); -1 if none.
int FreePort();

// One etcd process. Not thread-safe: the test's thread drives it.
class EtcdTestServer {
 public:
  EtcdTestServer() = default;
  ~EtcdTestServer();  // stops it and removes its data
  EtcdTestServer(const EtcdTestServer&) = delete;
  EtcdTestServer& operator=(const EtcdTestServer&) = delete;

  // Starts a new member in a new temp dir, on new ports (a few tries: a free port may be taken
  // before etcd binds it); returns once a Range answers (bounded: about 15 s). Empty: started;
  // otherwise why not, with the tail of etcd's log.
  std::string Start();
  // Starts it again on the same ports with the same data (after Stop or Kill; stops it first
  // if it runs). Same answer as Start.
  std::string Restart();
  // SIGTERM, then SIGKILL after 5 s; the data stays for Restart.
  void Stop();
  void Kill();  // SIGKILL: a crash

  bool running() const { return pid_ > 0; }
  const std::string& url() const { return url_; }  // http://127.0.0.1:PORT
  std::string LogTail() const;

 private:
  std::string Launch();  // on client_port_ / peer_port_, with dir_

  pid_t pid_ = -1;
  std::string dir_;
  int client_port_ = -1;
  int peer_port_ = -1;
  std::string url_;
};

}  // namespace cellar::cluster
