#include "auth/signing_keys.h"

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <tuple>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/json.h"
#include "common/logging.h"
#include "metadata/local_store.h"

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

constexpr std::string_view kPrefix = "signing-keys/";

std::string KeyValue(const SigningKey& k) {
  return "{\"secret\":\"" + Hex(k.secret) + "\",\"created_ms\":" + std::to_string(k.created_ms) +
         ",\"revoked\":" + (k.revoked ? "true" : "false") + "}";
}

// A key as the store holds it; nullopt (logged) when unreadable: hand-written or from a newer
// version. It then verifies nothing, which fails closed.
std::optional<SigningKey> ParseKey(std::string_view store_key, const std::string& value) {
  SigningKey k;
  k.id = std::string(store_key.substr(kPrefix.size()));
  auto j = ParseJson(value);
  const Json* secret = j ? j->Find("secret") : nullptr;
  const Json* created = j ? j->Find("created_ms") : nullptr;
  const Json* revoked = j ? j->Find("revoked") : nullptr;
  std::optional<std::string> raw;
  if (secret != nullptr && secret->type == Json::Type::kString) raw = Unhex(secret->text);
  if (k.id.empty() || !raw || raw->size() != kSecretBytes) return std::nullopt;
  k.secret = std::move(*raw);
  auto ms = created == nullptr ? std::nullopt : created->AsUint();
  k.created_ms = ms ? static_cast<int64_t>(*ms) : 0;
  k.revoked = revoked != nullptr && revoked->type == Json::Type::kBool && revoked->boolean;
  return k;
}

}  // namespace

SigningKeyStore::SigningKeyStore(metadata::Store& store) : view_(store, std::string(kPrefix)) {
  Init();
}

SigningKeyStore::SigningKeyStore()
    : own_store_(std::make_unique<metadata::LocalStore>("")), view_(*own_store_, std::string(kPrefix)) {
  Init();
}

void SigningKeyStore::Init() {
  Status st = view_.Start([this](const metadata::Update&) { Apply(); }, nullptr);
  if (!st.ok()) throw std::runtime_error(std::string(st.message()));
  auto rev = view_.Mutate([this]() -> StatusOr<metadata::Txn> {
    metadata::Txn txn;
    if (!keys_.empty()) return txn;  // nothing to write
    auto key = NewKey();
    txn.Fence(view_.entries(), std::string(kPrefix) + key->id);
    txn.writes.push_back({std::string(kPrefix) + key->id, KeyValue(*key)});
    return txn;
  });
  if (!rev.ok()) throw std::runtime_error(std::string(rev.status().message()));
}

// Rebuilt from the view on every change: a handful of keys, changed by hand.
void SigningKeyStore::Apply() {
  std::vector<std::shared_ptr<const SigningKey>> keys;
  for (const auto& [store_key, e] : view_.entries()) {
    auto k = ParseKey(store_key, e.value);
    if (!k) {
      LOG_WARN("msg=\"unreadable signing key left out\" key=\"{}\"", store_key);
      continue;
    }
    keys.push_back(std::make_shared<const SigningKey>(std::move(*k)));
  }
  std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    return std::tie(a->created_ms, a->id) < std::tie(b->created_ms, b->id);
  });
  keys_ = std::move(keys);
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

// Under view_.mutex(). Created after every key there is, even within one millisecond, so it
// is the newest (keys sort by creation time).
std::shared_ptr<const SigningKey> SigningKeyStore::NewKey() const {
  auto key = std::make_shared<SigningKey>();
  key->id = "k";
  key->id += Hex(RandomBytes(8));
  key->secret = RandomBytes(kSecretBytes);
  key->created_ms = std::max(NowMs(), keys_.empty() ? 0 : keys_.back()->created_ms + 1);
  return key;
}

std::shared_ptr<const SigningKey> SigningKeyStore::Current() const {
  std::lock_guard lock(view_.mutex());
  for (auto it = keys_.rbegin(); it != keys_.rend(); ++it) {
    if (!(*it)->revoked) return *it;
  }
  return nullptr;
}

std::shared_ptr<const SigningKey> SigningKeyStore::Find(std::string_view id) const {
  std::lock_guard lock(view_.mutex());
  for (const auto& k : keys_) {
    if (k->id == id) return k;
  }
  return nullptr;
}

StatusOr<std::string> SigningKeyStore::Rotate(int64_t* revision) {
  std::shared_ptr<const SigningKey> key;
  auto rev = view_.Mutate([&]() -> StatusOr<metadata::Txn> {
    key = NewKey();
    metadata::Txn txn;
    txn.Fence(view_.entries(), std::string(kPrefix) + key->id);
    txn.writes.push_back({std::string(kPrefix) + key->id, KeyValue(*key)});
    return txn;
  });
  if (!rev.ok()) return rev.status();
  if (revision != nullptr) *revision = *rev;
  return key->id;
}

Status SigningKeyStore::Revoke(std::string_view id, int64_t* revision) {
  auto rev = view_.Mutate([&]() -> StatusOr<metadata::Txn> {
    metadata::Txn txn;
    for (const auto& k : keys_) {
      if (k->id != id) continue;
      if (k->revoked) return txn;  // already: nothing to write
      SigningKey revoked = *k;
      revoked.revoked = true;
      txn.Fence(view_.entries(), std::string(kPrefix) + k->id);
      txn.writes.push_back({std::string(kPrefix) + k->id, KeyValue(revoked)});
      return txn;
    }
    return Status(Code::kNotFound, "no signing key with id " + std::string(id));
  });
  if (rev.ok() && revision != nullptr) *revision = *rev;
  return rev.status();
}

std::vector<SigningKey> SigningKeyStore::List() const {
  std::lock_guard lock(view_.mutex());
  std::vector<SigningKey> out;
  for (const auto& k : keys_) {
    SigningKey copy = *k;
    copy.secret.clear();
    out.push_back(std::move(copy));
  }
  return out;
}

void ImportLegacySigningKeys(metadata::Store& store, const std::string& dir) {
  const std::string path = dir + "/signing_keys.tsv";
  std::ifstream in(path);
  if (!in) return;
  auto existing = store.Read(kPrefix);
  if (!existing.ok()) throw std::runtime_error(std::string(existing.status().message()));
  if (!existing->entries.empty()) {
    LOG_WARN("msg=\"old signing keys left alone: the metadata store already has keys\" file={}",
             path);
    return;
  }
  std::vector<metadata::Write> writes;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    SigningKey key;
    std::string secret_hex, state;
    if (!(fields >> key.id >> secret_hex >> key.created_ms >> state) ||
        (state != "active" && state != "revoked")) {
      throw std::runtime_error(path + ":" + std::to_string(line_no) + ": corrupt line");
    }
    auto secret = Unhex(secret_hex);
    if (!secret || secret->size() != kSecretBytes) {
      throw std::runtime_error(path + ":" + std::to_string(line_no) + ": corrupt secret");
    }
    key.secret = std::move(*secret);
    key.revoked = state == "revoked";
    writes.push_back({std::string(kPrefix) + key.id, KeyValue(key)});
  }
  if (writes.empty()) return;
  if (auto rev = store.Commit({}, writes); !rev.ok()) {
    throw std::runtime_error("cannot import " + path + ": " + std::string(rev.status().message()));
  }
  std::filesystem::rename(path, path + ".imported");
  LOG_INFO("msg=\"imported the old signing keys into the metadata store\" file={} keys={}", path,
           writes.size());
}

}  // namespace cellar::auth
