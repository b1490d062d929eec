#include "control/admin_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "common/json.h"

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

std::string Sha256Hex(std::string_view secret) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), digest);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 0xF];
  }
  return out;
}

SharedAdminKey LoadOrCreateSharedAdminKey(metadata::Store& store, const std::string& dir) {
  constexpr std::string_view kKey = "admin/key-sha256";
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto snap = store.Read(kKey);
    if (!snap.ok()) throw std::runtime_error(std::string(snap.status().message()));
    std::optional<std::string> shared;
    for (const auto& e : snap->entries) {
      if (e.key != kKey) continue;
      auto j = ParseJson(e.value);
      const Json* h = j ? j->Find("sha256") : nullptr;
      if (h == nullptr || h->type != Json::Type::kString || h->text.size() != 64) {
        throw std::runtime_error("unreadable admin key hash in the metadata store (" +
                                 std::string(kKey) + ")");
      }
      shared = h->text;
    }
    if (shared) {
      // Reads DIR/admin.key only if it exists: a node that joins a fleet makes no key of its own.
      std::ifstream in(dir + "/admin.key");
      std::string local;
      if (in && std::getline(in, local) && Sha256Hex(local) == *shared) return {*shared, local, false};
      return {*shared, "", false};
    }
    AdminKey local = LoadOrCreateAdminKey(dir);
    SharedAdminKey out{Sha256Hex(local.key), local.key, local.created};
    const std::vector<metadata::Compare> absent{{std::string(kKey), 0}};
    const std::vector<metadata::Write> put{{std::string(kKey), "{\"sha256\":\"" + out.sha256_hex + "\"}"}};
    auto rev = store.Commit(absent, put);
    if (rev.ok()) return out;
    if (rev.status().code() != Code::kFailedPrecondition) {
      throw std::runtime_error(std::string(rev.status().message()));
    }
    // Another node wrote it first: take theirs (the next round reads it), and drop the key
    // just made here, which opens nothing.
    if (local.created) std::filesystem::remove(dir + "/admin.key");
  }
  throw std::runtime_error("cannot agree on the admin key in the metadata store");
}

bool SecretEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace cellar::control
