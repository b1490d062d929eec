#include "control/admin_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

namespace cellar::control {

AdminKey LoadOrCreateAdminKey(const std::string& dir) {
  const std::string path = dir + "/admin.key";
  {
    std::ifstream in(path);
    std::string key;
    if (in && std::getline(in, key) && key.size() == 64) return {key, false};
  }
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof(raw)) != 1) throw std::runtime_error("no randomness for admin key");
  static const char kHex[] = "0123456789abcdef";
  std::string key;
  for (unsigned char b : raw) {
    key += kHex[b >> 4];
    key += kHex[b & 0xF];
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot write " + path);
  ::fchmod(fd, 0600);
  std::string line = key + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::fsync(fd);
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + path);
  return {key, true};
}

bool SecretEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace cellar::control
