// Signing keys for tokens, kept in the metadata store (metadata/store.h) under `signing-keys/`:
// the local file of a single node (mode 0600), or etcd on a fleet, where a token minted on one
// node verifies on every other and a revocation reaches them all through the store's watch.
// The newest key that is not revoked signs new tokens; older keys still verify theirs until
// revoked, and a revoked key's tokens fail at once.
//
//   signing-keys/<id>   {"secret":"<64 hex digits>","created_ms":...,"revoked":false}
//
// Thread-safety: every method may be called from any thread (the view's mutex guards the list).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <absl/base/thread_annotations.h>

#include "common/status.h"
#include "metadata/store.h"
#include "metadata/view.h"

namespace cellar::auth {

struct SigningKey {
  std::string id;      // "k" + 16 hex digits; travels in the token header ("kid")
  std::string secret;  // 32 random bytes (HMAC-SHA256 key); never logged
  int64_t created_ms = 0;
  bool revoked = false;
};

class SigningKeyStore {
 public:
  // Reads the keys from the store and follows its changes, adding one fresh key if there is
  // none. Throws std::runtime_error if the store does not answer (start-up only).
  explicit SigningKeyStore(metadata::Store& store);
  // Keys in memory only (tests).
  SigningKeyStore();

  // The key new tokens are signed with; null if every key is revoked.
  std::shared_ptr<const SigningKey> Current() const;
  // Any key by id, revoked ones included (the caller refuses those); null if unknown.
  std::shared_ptr<const SigningKey> Find(std::string_view id) const;
  // Adds a new key, which becomes current; returns its id. revision (if given): the
  // commit's, for WhenSeen on the other nodes.
  StatusOr<std::string> Rotate(int64_t* revision = nullptr);
  // NOT_FOUND for an unknown id.
  Status Revoke(std::string_view id, int64_t* revision = nullptr);
  // Every key, newest last, secrets blanked.
  std::vector<SigningKey> List() const;
  // Changes on every rotation and revocation: a verification made under an unchanged
  // generation still holds (connections cache verified tokens with it).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // On a fleet (CacheRegistry has the same): done() once this node applied the keys as of
  // `revision` (another node's Rotate or Revoke); a read of the keys from the store, on the
  // view's thread; stopping that thread before the loops its callers post to go.
  void WhenSeen(int64_t revision, std::function<void()> done) {
    view_.WhenVisible(revision, std::move(done));
  }
  void RefreshAsync(std::function<void()> done) { view_.RefreshAsync(std::move(done)); }
  void StopRefreshing() { view_.StopRefreshing(); }
  ~SigningKeyStore() { view_.StopRefreshing(); }  // its refreshes apply to the members below

 private:
  void Init();
  void Apply();
  std::shared_ptr<const SigningKey> NewKey() const;

  std::unique_ptr<metadata::Store> own_store_;  // memory only: the default constructor's
  metadata::View view_;
  // Derived from view_.entries() (under view_.mutex()): oldest first.
  std::vector<std::shared_ptr<const SigningKey>> keys_;
  std::atomic<uint64_t> generation_{0};
};

// Moves the keys of DIR/signing_keys.tsv (before the metadata store) into the store, once:
// only when the store has none yet; the file is then renamed signing_keys.tsv.imported.
// Throws std::runtime_error on a corrupt file.
void ImportLegacySigningKeys(metadata::Store& store, const std::string& dir);

}  // namespace cellar::auth
