#include "auth/signing_keys.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace cellar::auth {

namespace {

constexpr size_t kSecretBytes = 32;

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::optional<std::string> Unhex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("OpenSSL RAND_bytes failed");
  }
  return out;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

SigningKeyStore::SigningKeyStore(std::string dir)
    : path_(dir.empty() ? std::string() : dir + "/signing_keys.tsv") {
  std::lock_guard lock(mu_);
  if (!path_.empty()) {
    std::ifstream in(path_);
    std::string line;
    int line_no = 0;
    while (in && std::getline(in, line)) {
      ++line_no;
      if (line.empty() || line[0] == '#') continue;
      std::istringstream fields(line);
      SigningKey key;
      std::string secret_hex, state;
      if (!(fields >> key.id >> secret_hex >> key.created_ms >> state) ||
          (state != "active" && state != "revoked")) {
        throw std::runtime_error(path_ + ":" + std::to_string(line_no) + ": corrupt line");
      }
      auto secret = Unhex(secret_hex);
      if (!secret || secret->size() != kSecretBytes) {
        throw std::runtime_error(path_ + ":" + std::to_string(line_no) + ": corrupt secret");
      }
      key.secret = std::move(*secret);
      key.revoked = state == "revoked";
      keys_.push_back(std::make_shared<const SigningKey>(std::move(key)));
    }
  }
  if (keys_.empty()) {
    NewKeyLocked();
    if (Status st = PersistLocked(); !st.ok()) throw std::runtime_error(st.message());
  }
}

std::shared_ptr<const SigningKey> SigningKeyStore::NewKeyLocked() {
  auto key = std::make_shared<SigningKey>();
  key->id = "k" + Hex(RandomBytes(8));
  key->secret = RandomBytes(kSecretBytes);
  key->created_ms = NowMs();
  keys_.push_back(key);
  return key;
}

Status SigningKeyStore::PersistLocked() {
  if (path_.empty()) return Status::Ok();
  const std::string tmp = path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status(Code::kInternal, "cannot write " + tmp);
  std::string text = "# id\tsecret (hex)\tcreated_ms\tstate\n";
  for (const auto& k : keys_) {
    text += k->id + "\t" + Hex(k->secret) + "\t" + std::to_string(k->created_ms) + "\t" +
            (k->revoked ? "revoked" : "active") + "\n";
  }
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path_.c_str()) != 0) {
    return Status(Code::kInternal, "cannot write " + path_);
  }
  return Status::Ok();
}

std::shared_ptr<const SigningKey> SigningKeyStore::Current() const {
  std::lock_guard lock(mu_);
  for (auto it = keys_.rbegin(); it != keys_.rend(); ++it) {
    if (!(*it)->revoked) return *it;
  }
  return nullptr;
}

std::shared_ptr<const SigningKey> SigningKeyStore::Find(std::string_view id) const {
  std::lock_guard lock(mu_);
  for (const auto& k : keys_) {
    if (k->id == id) return k;
  }
  return nullptr;
}

StatusOr<std::string> SigningKeyStore::Rotate() {
  std::lock_guard lock(mu_);
  auto key = NewKeyLocked();
  if (Status st = PersistLocked(); !st.ok()) {
    keys_.pop_back();
    return st;
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return key->id;
}

Status SigningKeyStore::Revoke(std::string_view id) {
  std::lock_guard lock(mu_);
  for (auto& k : keys_) {
    if (k->id != id) continue;
    if (k->revoked) return Status::Ok();
    auto old = k;
    auto revoked = std::make_shared<SigningKey>(*k);
    revoked->revoked = true;
    k = revoked;
    if (Status st = PersistLocked(); !st.ok()) {
      k = old;
      return st;
    }
    generation_.fetch_add(1, std::memory_order_acq_rel);
    return Status::Ok();
  }
  return Status(Code::kNotFound, "no signing key with id " + std::string(id));
}

std::vector<SigningKey> SigningKeyStore::List() const {
  std::lock_guard lock(mu_);
  std::vector<SigningKey> out;
  for (const auto& k : keys_) {
    SigningKey copy = *k;
    copy.secret.clear();
    out.push_back(std::move(copy));
  }
  return out;
}

}  // namespace cellar::auth
