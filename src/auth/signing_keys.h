// Signing keys for tokens, kept in the metadata directory (`signing_keys.tsv`, mode 0600, written
// through a temp file and rename). The newest key that is not revoked signs new tokens; older
// keys still verify theirs until revoked, and a revoked key's tokens fail at once.
//
// Thread-safety: every method may be called from any thread (a mutex guards the list).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <absl/base/thread_annotations.h>

#include "common/status.h"

namespace cellar::auth {

struct SigningKey {
  std::string id;      // "k" + 16 hex digits; travels in the token header ("kid")
  std::string secret;  // 32 random bytes (HMAC-SHA256 key); never logged
  int64_t created_ms = 0;
  bool revoked = false;
};

class SigningKeyStore {
 public:
  // Loads DIR/signing_keys.tsv, creating it with one fresh key if missing. Throws
  // std::runtime_error on an unreadable or corrupt file (start-up only). An empty dir keeps
  // the keys in memory only (tests).
  explicit SigningKeyStore(std::string dir);

  // The key new tokens are signed with; null if every key is revoked.
  std::shared_ptr<const SigningKey> Current() const;
  // Any key by id, revoked ones included (the caller refuses those); null if unknown.
  std::shared_ptr<const SigningKey> Find(std::string_view id) const;
  // Adds a new key, which becomes current; returns its id.
  StatusOr<std::string> Rotate();
  // NOT_FOUND for an unknown id.
  Status Revoke(std::string_view id);
  // Every key, newest last, secrets blanked.
  std::vector<SigningKey> List() const;
  // Changes on every rotation and revocation: a verification made under an unchanged
  // generation still holds (connections cache verified tokens with it).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  Status PersistLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<const SigningKey> NewKeyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;  // empty: memory only
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<const SigningKey>> keys_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> generation_{0};
};

}  // namespace cellar::auth
